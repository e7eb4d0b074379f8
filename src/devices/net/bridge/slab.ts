/**
 * Packet buffers carved from shared chunks, as Node's Buffer pool carves small Buffers.
 *
 * `new Uint8Array(1514)` costs ~0.86 µs on Node 20 (a malloc'd backing store, external
 * memory accounting that drives GC); a view into a 64 KiB chunk costs ~0.08 µs. Every packet
 * on the PV path needs one or two private buffers (netback's copy out of the guest, netfront's
 * copy out of its rx page, the stack's frame), so they come from here.
 *
 * Views are never reused: a chunk is dropped when full and freed by GC once its last view
 * dies, so ownership stays as simple as with `new Uint8Array` (whoever holds a view owns
 * those bytes). Chunks start zeroed; a view's bytes belong to it alone. Views share the
 * chunk's `.buffer`: code that walks `.buffer` must use `byteOffset`/`byteLength`.
 */
const CHUNK_BYTES = 64 * 1024;
/** Larger requests (GSO frames) get their own buffer: they would waste most of a chunk. */
const MAX_SLAB_ALLOC = 16 * 1024;

export class FrameSlab {
  private chunk = new ArrayBuffer(CHUNK_BYTES);
  private at = 0;

  /** A zeroed, private `len`-byte buffer (8-aligned in its chunk, so word-wise checksums line up). */
  alloc(len: number): Uint8Array {
    if (len > MAX_SLAB_ALLOC) return new Uint8Array(len);
    const need = (len + 7) & ~7;
    if (this.at + need > CHUNK_BYTES) {
      this.chunk = new ArrayBuffer(CHUNK_BYTES);
      this.at = 0;
    }
    const v = new Uint8Array(this.chunk, this.at, len);
    this.at += need;
    return v;
  }

  /** A private copy of `src` (e.g. out of a shared page: one read of each byte). */
  copy(src: Uint8Array): Uint8Array {
    const v = this.alloc(src.length);
    v.set(src);
    return v;
  }
}

/**
 * One reused buffer handed out as views of its first bytes, for a frame that is done with
 * before the next is made (unlike FrameSlab's, these bytes are not private). A stream's
 * frames have one size, so the view is made again only when the size changes.
 */
export class ScratchFrame {
  readonly bytes: Uint8Array;
  private view: Uint8Array;
  /** Where `view` starts in `bytes` (a field: a typed array's byteOffset getter checks for detachment). */
  private viewAt = 0;

  /** A new buffer of `size` bytes, or the given one. */
  constructor(size: number | Uint8Array) {
    this.bytes = typeof size === 'number' ? new Uint8Array(size) : size;
    this.view = this.bytes.subarray(0, 0);
  }

  /** The first `len` bytes (len <= bytes.length), as the view handed out last if it has that length. */
  frame(len: number): Uint8Array {
    return this.frameAt(0, len);
  }

  /** The view handed out last. */
  get current(): Uint8Array {
    return this.view;
  }

  /** `len` bytes from `at` (at + len <= bytes.length), as the view handed out last if it is that one. */
  frameAt(at: number, len: number): Uint8Array {
    if (this.view.length !== len || this.viewAt !== at) {
      this.view = this.bytes.subarray(at, at + len);
      this.viewAt = at;
    }
    return this.view;
  }
}

/**
 * Memory a FramePool may carve its buffers from: on the sim, dom0's own pages, which lie in
 * machine memory like the tx batch pages frames come from and the guest pages they go to, so
 * both copies of a queued frame are memmoves (memory/wasm-copy.ts). V8 copies to and from
 * shared memory with relaxed word loads and stores: a profile of bench net's dom0 had ~6 % of
 * its time in those two copies of the frames a receiver out of buffers made the bridge queue.
 */
export interface FrameMemory {
  /** A 4 KiB page of our own, or undefined when none can be spared (the pool then uses V8 buffers). */
  takePage(): Uint8Array | undefined;
  /** `dst.set(src, at)`: a memmove where both lie in machine memory (DomainMemory.copy). */
  copy(dst: Uint8Array, at: number, src: Uint8Array): void;
  /** Give back pages `takePage` gave. */
  releasePages(pages: readonly Uint8Array[]): void;
}

/**
 * Reused buffers for frame copies whose owner knows when the copy is done with: the queued
 * copies of borrowed frames of a bridge's ports (one pool per bridge, so its memory is bounded
 * however many ports there are), each given back once its port's sink (netback) has copied it
 * into its guest's buffers (PortSink.complete). FrameSlab's views are never reused, so each copy there
 * also costs its share of a zeroed 64 KiB chunk and of the GC that chunks drive; a stream
 * into a receiver that is often out of buffers queued 13% of its frames (bench net).
 * Each buffer is a ScratchFrame: a stream's frames have one size, so one view per buffer.
 *
 * With a FrameMemory, the first buffers are halves of its pages (at most `maxPages`), kept for
 * the pool's life and used first; the rest are V8 buffers, at most `maxFree` of them kept for reuse.
 */
export class FramePool {
  private readonly free: ScratchFrame[] = [];
  /** The buffers in the FrameMemory's pages, free ones (used first) and all (never left to GC). */
  private readonly freeOwned: ScratchFrame[] = [];
  private readonly owned = new Set<ScratchFrame>();
  private readonly pages: Uint8Array[] = [];

  /** Buffers of `bufBytes` (2048 at most with a FrameMemory: two to a page). */
  constructor(
    readonly bufBytes: number,
    readonly maxFree: number,
    private readonly memory?: FrameMemory,
    private readonly maxPages = 0,
  ) {}

  /**
   * A buffer holding a copy of `src` (its `current` view), or undefined if `src` is larger than a
   * buffer. The copy starts at `src`'s address mod 8 where it fits: V8 copies to or from shared
   * memory word by word only between addresses equal mod 8, byte by byte otherwise
   * (tx-batch.ts), and rx-batch.ts keeps that offset for the copy into the guest's buffer.
   */
  copy(src: Uint8Array): ScratchFrame | undefined {
    const len = src.length;
    if (len > this.bufBytes) return undefined;
    const b = this.freeOwned.pop() ?? this.free.pop() ?? this.newBuffer();
    const at = src.byteOffset & 7;
    const view = b.frameAt(at + len <= b.bytes.length ? at : 0, len);
    if (this.memory !== undefined) this.memory.copy(view, 0, src);
    else view.set(src);
    return b;
  }

  private newBuffer(): ScratchFrame {
    const size = this.bufBytes;
    if (this.memory !== undefined && this.pages.length < this.maxPages && size * 2 <= 4096) {
      const page = this.memory.takePage();
      if (page !== undefined) {
        this.pages.push(page);
        const [first, second] = [new ScratchFrame(page.subarray(0, size)), new ScratchFrame(page.subarray(size, 2 * size))];
        this.owned.add(first).add(second);
        this.freeOwned.push(second);
        return first;
      }
    }
    return new ScratchFrame(this.bufBytes);
  }

  /** Take back a buffer nobody reads any more. */
  give(b: ScratchFrame): void {
    if (this.owned.has(b)) this.freeOwned.push(b);
    else if (this.free.length < this.maxFree) this.free.push(b);
  }

  get freeCount(): number {
    return this.freeOwned.length + this.free.length;
  }

  /** Pages taken from the FrameMemory. */
  get pageCount(): number {
    return this.pages.length;
  }

  /** Give the FrameMemory's pages back; the pool must not be used afterwards. */
  dispose(): void {
    this.free.length = 0;
    this.freeOwned.length = 0;
    this.owned.clear();
    if (this.pages.length > 0) this.memory?.releasePages(this.pages.splice(0));
  }
}
