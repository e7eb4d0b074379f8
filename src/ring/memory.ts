/**
 * The shared memory a ring lives in, as the ring code sees it.
 *
 * A ring spans one page or, for multi-page rings (`ring-page-order`), up to 2^4 pages that
 * are NOT contiguous: each is a separate 4 KiB view (a granted page of the peer, mapped one
 * by one). `PagedMemory` turns a list of page views into one linear byte range for the ring,
 * and copies ranges that straddle a page boundary in pieces.
 *
 * Index words go through `Atomics` (sequentially consistent in JS), which gives ring.h's
 * barriers for free: a store publishes every plain write before it, a load sees every write
 * the peer made before its store. Entry bytes are copied with plain reads and writes.
 *
 * Ring code reaches shared bytes only through this interface, so a test can put a hostile
 * page under it (one that rewrites bytes between reads, `ring/adversarial.test.ts`).
 */
import { BugError } from '../base/index.js';

export const RING_PAGE_SIZE = 4096;
const PAGE_SHIFT = 12;
const PAGE_MASK = RING_PAGE_SIZE - 1;

export interface RingMemory {
  readonly byteLength: number;
  /** Atomics.load of the u32 at a 4-aligned offset (an acquire: see the peer's prior writes). */
  load32(offset: number): number;
  /** Atomics.store of a u32 at a 4-aligned offset (a release: publish our prior writes). */
  store32(offset: number, value: number): void;
  /** Copy `length` bytes at `offset` into `dst[dstOffset..]`; each shared byte is read once. */
  copyOut(offset: number, dst: Uint8Array, dstOffset: number, length: number): void;
  /** Copy `src[srcOffset..srcOffset+length]` to `offset`. */
  copyIn(offset: number, src: Uint8Array, srcOffset: number, length: number): void;
}

/** Either a ready RingMemory or the page views to build one from. */
export type RingMemoryInput = RingMemory | Uint8Array | readonly Uint8Array[];

export function toRingMemory(input: RingMemoryInput): RingMemory {
  if (input instanceof Uint8Array) return new PagedMemory([input]);
  if (Array.isArray(input)) return new PagedMemory(input as readonly Uint8Array[]);
  return input as RingMemory;
}

/** One or more 4 KiB page views, not necessarily adjacent, as one linear range. */
export class PagedMemory implements RingMemory {
  readonly byteLength: number;
  private readonly pages: readonly Uint8Array[];
  private readonly words: readonly Int32Array[];
  // Word views of the caller's private buffer, kept for the last buffer seen: rings pass the
  // same scratch buffer every time, and an aligned slot then copies as u32 words with no
  // allocation (the hot path of every request and response).
  private lastBuf: Uint8Array | undefined;
  private lastBufWords: Int32Array | undefined;

  constructor(pages: readonly Uint8Array[]) {
    if (pages.length === 0 || pages.length > 16) {
      throw new BugError(`a ring spans 1..16 pages, not ${pages.length}`);
    }
    for (const p of pages) {
      if (p.byteLength !== RING_PAGE_SIZE || p.byteOffset % 4 !== 0) {
        throw new BugError('ring pages must be 4 KiB views at a 4-aligned offset');
      }
    }
    this.pages = pages;
    this.words = pages.map((p) => new Int32Array(p.buffer, p.byteOffset, RING_PAGE_SIZE / 4));
    this.byteLength = pages.length * RING_PAGE_SIZE;
  }

  /** The 4 KiB view of page `n` (for fast paths that copy whole aligned slots). */
  page(n: number): Uint8Array {
    const p = this.pages[n];
    if (p === undefined) throw new BugError(`page ${n} out of range`);
    return p;
  }

  /** The Int32 view of page `n`, same memory as `page(n)`. */
  pageWords(n: number): Int32Array {
    const w = this.words[n];
    if (w === undefined) throw new BugError(`page ${n} out of range`);
    return w;
  }

  load32(offset: number): number {
    return Atomics.load(this.words[offset >>> PAGE_SHIFT]!, (offset & PAGE_MASK) >>> 2) >>> 0;
  }

  store32(offset: number, value: number): void {
    Atomics.store(this.words[offset >>> PAGE_SHIFT]!, (offset & PAGE_MASK) >>> 2, value | 0);
  }

  copyOut(offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    this.checkRange(offset, length);
    const words = this.alignedWords(offset, dst, dstOffset, length);
    if (words !== undefined) {
      const from = this.words[offset >>> PAGE_SHIFT]!;
      const base = (offset & PAGE_MASK) >>> 2;
      const to = (dstOffset >>> 2);
      for (let i = 0, n = length >>> 2; i < n; i++) words[to + i] = from[base + i]!;
      return;
    }
    this.eachPiece(offset, length, (page, inPage, done, n) => dst.set(page.subarray(inPage, inPage + n), dstOffset + done));
  }

  copyIn(offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    this.checkRange(offset, length);
    const words = this.alignedWords(offset, src, srcOffset, length);
    if (words !== undefined) {
      const to = this.words[offset >>> PAGE_SHIFT]!;
      const base = (offset & PAGE_MASK) >>> 2;
      const from = srcOffset >>> 2;
      for (let i = 0, n = length >>> 2; i < n; i++) to[base + i] = words[from + i]!;
      return;
    }
    this.eachPiece(offset, length, (page, inPage, done, n) => page.set(src.subarray(srcOffset + done, srcOffset + done + n), inPage));
  }

  /**
   * Split [offset, offset+length) at page boundaries (the pages are not adjacent): `fn` gets
   * each piece's page, its start in that page, how much came before it, and its length.
   */
  private eachPiece(offset: number, length: number, fn: (page: Uint8Array, inPage: number, done: number, n: number) => void): void {
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const inPage = at & PAGE_MASK;
      const n = Math.min(length - done, RING_PAGE_SIZE - inPage);
      fn(this.pages[at >>> PAGE_SHIFT]!, inPage, done, n);
      done += n;
    }
  }

  /** Word view of `buf` when the copy is 4-aligned on both sides, small, and inside one page. */
  private alignedWords(offset: number, buf: Uint8Array, bufOffset: number, length: number): Int32Array | undefined {
    if (((offset | bufOffset | length | buf.byteOffset) & 3) !== 0 || length > 256) return undefined;
    if ((offset & PAGE_MASK) + length > RING_PAGE_SIZE) return undefined;
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      this.lastBufWords = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
    }
    return this.lastBufWords;
  }

  private checkRange(offset: number, length: number): void {
    // Offsets come from masked indices, so this only fires on a bug in ring code.
    if (offset < 0 || length < 0 || offset + length > this.byteLength) {
      throw new BugError(`ring access [${offset}, +${length}) outside ${this.byteLength} bytes`);
    }
  }
}
