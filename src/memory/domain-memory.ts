/**
 * A domain's own memory (`DomainMemory` of hv/platform.ts): guest frames 0..N-1, backed by a
 * contiguous run of machine frames, with a page allocator every thread of the domain shares
 * (a bitmap in the domain's control region, claimed bit by bit with compareExchange).
 */
import { XenpvError, type DomId, type Frame } from '../base/index.js';
import { DW, type DomainTable } from './domains.js';
import { MACHINE_PAGE_SIZE } from './machine.js';
import { ViewAddresses } from './view-addresses.js';

export class SimDomainMemory {
  readonly pageCount: number;
  private readonly base: number;
  private readonly bitmap: Int32Array;
  private readonly dstAt: ViewAddresses;
  private readonly srcAt: ViewAddresses;

  constructor(
    private readonly table: DomainTable,
    readonly domid: DomId,
  ) {
    this.base = table.get(domid, DW.MEM_BASE);
    this.pageCount = table.get(domid, DW.NR_PAGES);
    const words = Math.ceil(this.pageCount / 32);
    this.bitmap = new Int32Array(table.machine.sab, table.get(domid, DW.R_PAGE_BITMAP) * MACHINE_PAGE_SIZE, words);
    this.dstAt = new ViewAddresses(table.machine, 1);
    this.srcAt = new ViewAddresses(table.machine, 1);
  }

  page(frame: Frame): Uint8Array {
    if (!Number.isInteger(frame) || frame < 0 || frame >= this.pageCount) {
      throw new RangeError(`frame ${frame} out of range (domain ${this.domid} has ${this.pageCount} pages)`);
    }
    return this.table.machine.bytes(this.base + frame);
  }

  /** Machine frame of one of our frames (for the grant table's p2m lookups). */
  machineFrame(frame: number): number {
    return this.base + frame;
  }

  allocPages(count: number): Frame[] {
    if (!Number.isInteger(count) || count < 0) throw new XenpvError('EINVAL', 'bad page count', { count });
    const got: Frame[] = [];
    const start = this.table.get(this.domid, DW.PAGE_HINT) % Math.max(1, this.pageCount);
    for (let i = 0; i < this.pageCount && got.length < count; i++) {
      const frame = (start + i) % this.pageCount;
      if (this.claim(frame)) got.push(frame as Frame);
    }
    if (got.length < count) {
      for (const f of got) Atomics.and(this.bitmap, f >>> 5, ~(1 << (f & 31)));
      throw new XenpvError('ENOMEM', `domain ${this.domid}: out of pages`, { count, pageCount: this.pageCount });
    }
    this.table.set(this.domid, DW.PAGE_HINT, ((got[got.length - 1] ?? start) + 1) % Math.max(1, this.pageCount));
    this.table.add(this.domid, DW.PAGES_FREE, -count);
    for (const f of got) this.page(f).fill(0);
    return got;
  }

  freePages(frames: readonly Frame[]): void {
    for (const f of frames) {
      if (!Number.isInteger(f) || f < 0 || f >= this.pageCount) {
        throw new XenpvError('EINVAL', `free of frame ${f} out of range`, { frame: f });
      }
      const bit = 1 << (f & 31);
      const old = Atomics.and(this.bitmap, f >>> 5, ~bit);
      if ((old & bit) === 0) throw new XenpvError('EINVAL', `double free of frame ${f}`, { frame: f });
      this.table.add(this.domid, DW.PAGES_FREE, 1);
    }
  }

  /**
   * DomainMemory.copy: a memmove when both views lie in machine memory and `src` fits at `at`,
   * else `dst.set`. Each side remembers its last view's address (view-addresses.ts): a
   * receiver copies into one buffer, a sender out of one payload.
   */
  copy(dst: Uint8Array, at: number, src: Uint8Array): void {
    const len = src.length;
    if (at >= 0 && at + len <= dst.length) {
      const d = this.dstAt.at(0, dst);
      const s = d < 0 ? -1 : this.srcAt.at(0, src);
      if (s >= 0) return this.table.machine.copy(d + at, s, len);
    }
    dst.set(src, at);
  }

  /** Frames not allocated. */
  get freeCount(): number {
    return this.table.get(this.domid, DW.PAGES_FREE);
  }

  private claim(frame: number): boolean {
    const bit = 1 << (frame & 31);
    const old = Atomics.or(this.bitmap, frame >>> 5, bit);
    return (old & bit) === 0;
  }
}
