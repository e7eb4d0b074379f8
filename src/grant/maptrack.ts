/**
 * The mapping domain's maptrack: one handle per live mapping, so that a destroyed domain's
 * mappings can be found and released by the host (Xen's maptrack, and its bound
 * `max_maptrack_frames`: a domain cannot pin an unbounded number of foreign frames).
 */
import { DW, MACHINE_PAGE_SIZE, type DomainTable } from '../memory/index.js';
import { MAPTRACK_WORDS, MT_GEN, MT_GRANTER, MT_INUSE, MT_REF, MT_TID } from './layout.js';

export interface MaptrackEntry {
  readonly handle: number;
  readonly granter: number;
  readonly ref: number;
  readonly writable: boolean;
  readonly gen: number;
  /** The thread that made the mapping. */
  readonly tid: number;
}

export class Maptrack {
  private readonly words: Int32Array;
  readonly max: number;

  constructor(
    private readonly table: DomainTable,
    private readonly domid: number,
  ) {
    this.max = table.get(domid, DW.MAPTRACK_MAX);
    const at = table.get(domid, DW.R_MAPTRACK) * MACHINE_PAGE_SIZE;
    this.words = new Int32Array(table.machine.sab, at, this.max * MAPTRACK_WORDS);
  }

  /** Claim a free handle, or undefined when the domain has `max` live mappings. */
  claim(): number | undefined {
    if (this.table.add(this.domid, DW.MAPTRACK_USED, 1) >= this.max) {
      this.table.add(this.domid, DW.MAPTRACK_USED, -1);
      return undefined;
    }
    const start = this.table.get(this.domid, DW.MAPTRACK_HINT);
    for (let i = 0; i < this.max; i++) {
      const h = (start + i) % this.max;
      if (Atomics.compareExchange(this.words, h * MAPTRACK_WORDS + MT_INUSE, 0, 1) === 0) {
        this.table.set(this.domid, DW.MAPTRACK_HINT, (h + 1) % this.max);
        return h;
      }
    }
    // USED said there was room, so a racing claimer holds it only briefly; report full.
    this.table.add(this.domid, DW.MAPTRACK_USED, -1);
    return undefined;
  }

  /** Fill a claimed handle; it becomes visible to `live()` (state 2). */
  record(h: number, granter: number, ref: number, writable: boolean, gen: number, tid: number): void {
    const b = h * MAPTRACK_WORDS;
    const w = this.words;
    // Plain writes, published by the one atomic store of state 2: a reader that sees 2 with
    // Atomics.load also sees them (the store synchronizes with that load).
    w[b + MT_TID] = tid;
    w[b + MT_GRANTER] = granter | (writable ? 1 << 16 : 0);
    w[b + MT_REF] = ref;
    w[b + MT_GEN] = gen;
    Atomics.store(w, b + MT_INUSE, 2);
  }

  /** Give back a handle; returns false if it was already free (a double release). */
  free(h: number): boolean {
    const old = Atomics.exchange(this.words, h * MAPTRACK_WORDS + MT_INUSE, 0);
    if (old === 0) return false;
    this.table.add(this.domid, DW.MAPTRACK_USED, -1);
    return true;
  }

  /** Whether handle `h` holds a recorded mapping; the `*Of` readers below read its fields. */
  isLive(h: number): boolean {
    return Atomics.load(this.words, h * MAPTRACK_WORDS + MT_INUSE) === 2;
  }

  granterOf(h: number): number {
    return Atomics.load(this.words, h * MAPTRACK_WORDS + MT_GRANTER) & 0xffff;
  }

  writableOf(h: number): boolean {
    return (Atomics.load(this.words, h * MAPTRACK_WORDS + MT_GRANTER) & (1 << 16)) !== 0;
  }

  refOf(h: number): number {
    return Atomics.load(this.words, h * MAPTRACK_WORDS + MT_REF) >>> 0;
  }

  genOf(h: number): number {
    return Atomics.load(this.words, h * MAPTRACK_WORDS + MT_GEN);
  }

  entry(h: number): MaptrackEntry | undefined {
    const b = h * MAPTRACK_WORDS;
    if (Atomics.load(this.words, b + MT_INUSE) !== 2) return undefined;
    const g = Atomics.load(this.words, b + MT_GRANTER);
    return {
      handle: h,
      granter: g & 0xffff,
      ref: Atomics.load(this.words, b + MT_REF) >>> 0,
      writable: (g & (1 << 16)) !== 0,
      gen: Atomics.load(this.words, b + MT_GEN),
      tid: Atomics.load(this.words, b + MT_TID),
    };
  }

  /** Every recorded live mapping (host cleanup of a destroyed domain). */
  live(): MaptrackEntry[] {
    const out: MaptrackEntry[] = [];
    for (let h = 0; h < this.max; h++) {
      const e = this.entry(h);
      if (e !== undefined) out.push(e);
    }
    return out;
  }
}
