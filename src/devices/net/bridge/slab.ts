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
 * Reused buffers for frame copies whose owner knows when the copy is done with: the queued
 * copies of borrowed frames of a bridge's ports (one pool per bridge, so its memory is bounded
 * however many ports there are), each given back once its port's sink (netback) has copied it
 * into its guest's buffers (PortSink.complete). FrameSlab's views are never reused, so each copy there
 * also costs its share of a zeroed 64 KiB chunk and of the GC that chunks drive; a stream
 * into a receiver that is often out of buffers queued 13% of its frames (bench net).
 * Each buffer is a ScratchFrame: a stream's frames have one size, so one view per buffer.
 */
export class FramePool {
  private readonly free: ScratchFrame[] = [];

  /** Buffers of `bufBytes`; at most `maxFree` kept for reuse (the rest are left to GC). */
  constructor(readonly bufBytes: number, readonly maxFree: number) {}

  /** A buffer holding a copy of `src` (its `frame(src.length)`), or undefined if `src` is larger than a buffer. */
  copy(src: Uint8Array): ScratchFrame | undefined {
    if (src.length > this.bufBytes) return undefined;
    const b = this.free.pop() ?? new ScratchFrame(this.bufBytes);
    b.frame(src.length).set(src);
    return b;
  }

  /** Take back a buffer nobody reads any more. */
  give(b: ScratchFrame): void {
    if (this.free.length < this.maxFree) this.free.push(b);
  }

  get freeCount(): number {
    return this.free.length;
  }
}
