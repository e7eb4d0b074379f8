/**
 * I/O buffers for BlkFront.
 *
 * A guest program may pass a plain `Uint8Array` (always copied through frontend-owned
 * granted pages), or a `BlkBuffer`: pages of the guest's own memory allocated by the
 * frontend (`BlkFront.allocBuffer`). With a trusted backend and no persistent grants, a
 * BlkBuffer's pages are granted directly for the request (zero copy, as Linux blkfront grants
 * bio pages). With `trusted = 0` they are never granted: data is bounced through separate
 * zeroed pages (Linux's XSA-403 behaviour), so a backend only ever sees request payload.
 *
 * A `persistent` BlkBuffer (io_uring's registered buffers, for blkif): with feature-persistent
 * and a trusted backend, each page is granted read-write the first time I/O uses it and stays
 * granted while the buffer lives, so the backend keeps it mapped like a page of the
 * frontend's persistent pool. I/O on it then needs neither a copy (the pool's way) nor a map
 * per request (zero copy's way). The grants end when the buffer is freed; a page the backend
 * still maps is freed only once it lets go (R8, through the frontend's reclaimer). The cost:
 * the backend may read and write those pages for as long as they are granted, which is why
 * only a trusted backend gets them.
 *
 * R8: a page whose grant could not be ended (the backend still maps it) must not be reused.
 * A BlkBuffer with such a page is "held" until the reclaimer ends the grant; I/O on a held
 * buffer is refused with EBUSY rather than exposing new data to the backend.
 */
import { XenpvError, type DomId, type Frame, type GrantRef } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import type { BorrowedPage, GrantedPage, GrantReclaimer } from './front-grants.js';

/** What the queue needs from a caller's buffer. */
export interface IoBuffer {
  readonly byteLength: number;
  /** Copy `dst.length` bytes from `offset` of the buffer into `dst`. */
  copyOut(offset: number, dst: Uint8Array): void;
  /** Copy `src` into the buffer at `offset`. */
  copyIn(offset: number, src: Uint8Array): void;
}

export class ArrayIoBuffer implements IoBuffer {
  constructor(readonly bytes: Uint8Array) {}

  get byteLength(): number {
    return this.bytes.byteLength;
  }

  copyOut(offset: number, dst: Uint8Array): void {
    dst.set(this.bytes.subarray(offset, offset + dst.byteLength));
  }

  copyIn(offset: number, src: Uint8Array): void {
    this.bytes.set(src, offset);
  }
}

export class BlkBuffer implements IoBuffer {
  readonly frames: readonly Frame[];
  /** One live 4 KiB view per page, in order. */
  readonly pages: readonly Uint8Array[];
  /** Pages whose grant the backend has not let go of yet (R8). */
  held = 0;
  private freed = false;
  private framesFreed = false;
  /** Kept grants handed to the reclaimer and not ended yet, of any backend (endKept). */
  private ending = 0;
  /** A persistent buffer's grants, page by page as I/O first used them, and to whom. */
  private kept: { readonly remote: DomId; readonly pages: (GrantedPage | undefined)[]; readonly refs: Uint32Array; granted: number } | undefined;

  /**
   * `byteLength` bytes (whole 512-byte sectors) in ceil(byteLength / 4096) fresh zeroed pages.
   * `keep` makes a persistent buffer: the reclaimer that ends its grants when it is freed, and
   * what to call once it is.
   */
  constructor(
    private readonly platform: Platform,
    readonly byteLength: number,
    private readonly keep?: { readonly reclaimer: GrantReclaimer; readonly freed: () => void },
  ) {
    if (!Number.isInteger(byteLength) || byteLength <= 0 || byteLength % 512 !== 0) {
      throw new XenpvError('EINVAL', `a buffer of ${byteLength} bytes (whole sectors needed)`);
    }
    this.frames = platform.memory.allocPages(Math.ceil(byteLength / 4096));
    this.pages = this.frames.map((f) => platform.memory.page(f));
  }

  get persistent(): boolean {
    return this.keep !== undefined;
  }

  /**
   * Page `index` granted read-write to `remote` for as long as the buffer lives (a persistent
   * buffer only). Grants made to another domain (a backend that moved) are ended first.
   */
  keptPage(remote: DomId, index: number): GrantedPage {
    if (this.kept?.remote !== remote) {
      this.endKept();
      this.kept = { remote, pages: new Array<GrantedPage | undefined>(this.frames.length), refs: new Uint32Array(this.frames.length), granted: 0 };
    }
    const have = this.kept.pages[index];
    if (have !== undefined) return have;
    return this.grantKept(remote, index);
  }

  /**
   * The grant refs of every page, with pages `first..first+n` granted to `remote` as keptPage
   * grants them: one check of the backend for all of them, and none per page once every page
   * is granted (a 1 MiB chunk is 256 pages; keptPage's per-call checks, and a page object per
   * segment, were a good part of the guest's CPU on 1 MiB reads). Valid while the buffer keeps
   * its grants to `remote`.
   */
  keptRefs(remote: DomId, first: number, n: number): Uint32Array {
    if (this.kept?.remote !== remote) this.keptPage(remote, first);
    const kept = this.kept!;
    if (kept.granted < kept.pages.length) {
      for (let i = first; i < first + n; i++) if (kept.pages[i] === undefined) this.grantKept(remote, i);
    }
    return kept.refs;
  }

  private grantKept(remote: DomId, index: number): GrantedPage {
    const kept = this.kept!;
    const frame = this.frames[index]!;
    const ref: GrantRef = this.platform.grants.grantAccess(remote, frame, false);
    const page: GrantedPage = { frame, ref, bytes: this.pages[index]!, readonly: false, kept: true };
    kept.pages[index] = page;
    kept.refs[index] = ref;
    kept.granted++;
    return page;
  }

  get isFreed(): boolean {
    return this.freed;
  }

  copyOut(offset: number, dst: Uint8Array): void {
    const page = this.onePage(offset, dst.byteLength);
    if (page !== undefined) dst.set(page.byteLength === dst.byteLength ? page : page.subarray(0, dst.byteLength));
    else this.walk(offset, dst.byteLength, (p, at, n, done) => dst.set(p.subarray(at, at + n), done));
  }

  copyIn(offset: number, src: Uint8Array): void {
    const page = this.onePage(offset, src.byteLength);
    if (page !== undefined) page.set(src);
    else this.walk(offset, src.byteLength, (p, at, n, done) => p.set(src.subarray(done, done + n), at));
  }

  /** The page holding [offset, +length) when it starts a page and fits in it (the frontend's per-segment copies). */
  private onePage(offset: number, length: number): Uint8Array | undefined {
    if ((offset & 4095) !== 0 || length > 4096 || offset < 0 || offset + length > this.byteLength) return undefined;
    return this.pages[offset >>> 12];
  }

  /** The buffer's bytes as one new array (a copy). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.byteLength);
    this.copyOut(0, out);
    return out;
  }

  private walk(offset: number, length: number, fn: (page: Uint8Array, at: number, n: number, done: number) => void): void {
    if (offset < 0 || offset + length > this.byteLength) throw new RangeError(`[${offset}, +${length}) outside a ${this.byteLength}-byte buffer`);
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const at = pos & 4095;
      const n = Math.min(length - done, 4096 - at);
      fn(this.pages[pos >>> 12]!, at, n, done);
      done += n;
    }
  }

  /**
   * Give the pages back to the domain. Refused while a backend still maps a page lent for a
   * request, or a kept page of a backend this buffer has moved away from (R8). A persistent
   * buffer's grants are ended here; its frames go back once every one of its grants has
   * ended (at once, unless the backend still maps a page).
   */
  free(): void {
    if (this.freed) return;
    if (this.held > 0) throw new XenpvError('EBUSY', `${this.held} page(s) still mapped by the backend`);
    this.freed = true;
    this.endKept();
    this.keep?.freed();
    this.framesBack();
  }

  /**
   * End the kept grants through the reclaimer. One the backend still maps holds the buffer
   * (`held`, as a page lent for a request does) until it lets go: a buffer that moved to
   * another backend must not show the old one new data (R8).
   */
  private endKept(): void {
    const kept = this.kept;
    this.kept = undefined;
    if (kept === undefined) return;
    for (const p of kept.pages) {
      if (p === undefined) continue;
      this.ending++;
      const borrowed = this.lend(() => {
        this.ending--;
        this.framesBack();
      });
      this.keep!.reclaimer.release({ ref: p.ref, frame: p.frame, borrowed });
    }
  }

  /**
   * The reclaimer's handle for a page of this buffer whose grant is to end: while the backend
   * still maps it the buffer is held (I/O and free() refused, R8); `returned` runs once the
   * grant has ended.
   */
  lend(returned?: () => void): BorrowedPage {
    let deferred = false;
    return {
      deferred: () => {
        deferred = true;
        this.held++;
      },
      returned: () => {
        if (deferred) this.held--;
        returned?.();
      },
    };
  }

  /** Free the frames once the buffer is freed and none of its grants is left (endKept). */
  private framesBack(): void {
    if (this.freed && this.ending === 0 && !this.framesFreed) {
      this.framesFreed = true;
      this.platform.memory.freePages(this.frames);
    }
  }
}
