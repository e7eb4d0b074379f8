/**
 * Grant operations for one calling domain on one thread (`GrantOps` of hv/platform.ts):
 * the granting side (gnttab_grant_foreign_access / end_foreign_access, writing the domain's
 * own shared entries as Linux's gnttab does) and the grantee side (GNTTABOP_map_grant_ref,
 * unmap_grant_ref and copy, with the checks the hypervisor makes).
 */
import {
  GNTST_bad_copy_arg,
  GNTST_bad_domain,
  GNTST_no_space,
  GNTST_okay,
  GNTTAB_NR_RESERVED_ENTRIES,
  GTF_permit_access,
  GTF_readonly,
  GTF_reading,
  GTF_writing,
  gntstMessage,
  gntstName,
} from '../abi/grant_table.js';
import {
  BugError,
  XenpvError,
  isU32,
  toDomId,
  trackResource,
  type DomId,
  type Frame,
  type GrantRef,
} from '../base/index.js';
import { DomainState, DW, MACHINE_PAGE_SIZE, lockWord, unlockWord, withLock, type DomainTable } from '../memory/index.js';
import { Maptrack } from './maptrack.js';
import { GranterView, pinGrant, unpinGrant } from './pin.js';
import type { CopyPtr, GrantCopyOp, GrantMapping } from './types.js';

const PAGE = MACHINE_PAGE_SIZE;

export class SimGrantOps {
  private readonly views = new Map<number, GranterView>();
  private readonly own: GranterView;
  private readonly refBits: Int32Array;
  readonly maptrack: Maptrack;
  private readonly accessLeaks = new Map<number, () => void>();
  /** Our domain's generation: once it changes, our regions belong to someone else. */
  readonly ownGen: number;

  constructor(
    readonly table: DomainTable,
    readonly self: DomId,
    readonly tid: number,
  ) {
    this.ownGen = table.get(self, DW.GEN);
    this.own = this.view(self);
    const at = table.get(self, DW.R_GREF_BITMAP) * PAGE;
    this.refBits = new Int32Array(table.machine.sab, at, Math.ceil(this.own.entries / 32));
    this.maptrack = new Maptrack(table, self);
  }

  /** A (cached) view of domain `domid`'s grant table, for its current generation. */
  view(domid: number): GranterView {
    const gen = this.table.get(domid, DW.GEN);
    let v = this.views.get(domid);
    if (v === undefined || v.gen !== gen) {
      v = new GranterView(this.table, domid, gen);
      this.views.set(domid, v);
    }
    return v;
  }

  // --- granting side (our own table) ---------------------------------------------------

  grantAccess(remote: DomId, frame: Frame, readonly: boolean): GrantRef {
    if (toDomId(remote) === undefined) throw new XenpvError('EINVAL', `bad domid ${remote}`, { remote });
    if (!isU32(frame)) throw new XenpvError('EINVAL', `bad frame ${frame}`, { frame });
    const ref = this.allocRef();
    const a = ref * 2;
    // Linux's order: frame and domid first, then (after a barrier) the flags that make the
    // entry valid. One atomic store of flags|domid publishes both.
    Atomics.store(this.own.shared, a + 1, frame);
    Atomics.store(this.own.shared, a, GTF_permit_access | (readonly ? GTF_readonly : 0) | (remote << 16));
    this.accessLeaks.set(ref, trackResource('grant-access', `dom${this.self} ref ${ref} -> dom${remote}`));
    return ref as GrantRef;
  }

  /**
   * grant_table.h, "Invalidating an unused GTF_permit_access entry": observe that
   * !(flags & (GTF_reading|GTF_writing)), then compareExchange the flags to 0. Fails, changing
   * nothing, while the grantee has it mapped (reliability.md R8).
   */
  endAccess(ref: GrantRef): boolean {
    if (!Number.isInteger(ref) || ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= this.own.entries) {
      throw new XenpvError('EINVAL', `bad grant ref ${ref}`, { ref });
    }
    const a = ref * 2;
    for (;;) {
      const word = Atomics.load(this.own.shared, a);
      if ((word & (GTF_reading | GTF_writing)) !== 0) return false;
      if (Atomics.compareExchange(this.own.shared, a, word, word & ~0xffff) === word) break;
    }
    this.freeRef(ref);
    this.accessLeaks.get(ref)?.();
    this.accessLeaks.delete(ref);
    return true;
  }

  private allocRef(): number {
    const n = this.own.entries;
    const first = GNTTAB_NR_RESERVED_ENTRIES;
    const span = n - first;
    const start = Math.max(first, this.table.get(this.self, DW.GREF_HINT));
    for (let i = 0; i < span; i++) {
      const ref = first + ((start - first + i) % span);
      const bit = 1 << (ref & 31);
      if ((Atomics.or(this.refBits, ref >>> 5, bit) & bit) === 0) {
        this.table.set(this.self, DW.GREF_HINT, ref + 1 >= n ? first : ref + 1);
        return ref;
      }
    }
    throw new XenpvError('ENOSPC', `domain ${this.self}: no free grant refs`, { entries: n });
  }

  private freeRef(ref: number): void {
    Atomics.and(this.refBits, ref >>> 5, ~(1 << (ref & 31)));
  }

  // --- grantee side ----------------------------------------------------------------------

  map(remote: DomId, refs: readonly GrantRef[], writable: boolean): GrantMapping {
    const handles: number[] = [];
    const pages: Uint8Array[] = [];
    for (const ref of refs) {
      const r = this.mapOne(remote, ref, writable);
      if (typeof r === 'number') {
        for (const h of handles) this.unmapHandle(h);
        const name = gntstName(r);
        throw new XenpvError(name, `map of dom${remote} ref ${ref}: ${gntstMessage(r)}`, { remote, ref, status: r });
      }
      handles.push(r.handle);
      pages.push(r.page);
    }
    return new SimGrantMapping(this, remote, refs, writable, pages, handles);
  }

  private mapOne(remote: number, ref: number, writable: boolean): { handle: number; page: Uint8Array } | number {
    const rd = this.table.acquire(remote);
    if (rd === undefined) return GNTST_bad_domain;
    try {
      const h = this.maptrack.claim();
      if (h === undefined) return GNTST_no_space;
      const g = this.view(remote);
      const res = this.locked(remote, () => pinGrant(g, ref, this.self, writable));
      if (res.frame === undefined) {
        this.maptrack.free(h);
        return res.status;
      }
      this.maptrack.record(h, remote, ref, writable, rd.gen, this.tid);
      return { handle: h, page: this.table.machine.bytes(g.memBase + res.frame) };
    } finally {
      rd.release();
    }
  }

  /** GNTTABOP_unmap_grant_ref of one maptrack handle. Safe on a DYING granter (pins hold it). */
  unmapHandle(h: number): void {
    // Our domain was destroyed: the host already released every mapping it held.
    if (this.alive()) this.release(h);
  }

  private release(h: number): void {
    const e = this.maptrack.entry(h);
    if (e === undefined) return;
    const g = this.view(e.granter);
    if (g.gen !== e.gen) throw new BugError(`dom${e.granter} reclaimed while dom${this.self} maps ref ${e.ref}`);
    this.locked(e.granter, () => unpinGrant(g, e.ref, e.writable));
    this.maptrack.free(h);
  }

  /** Our domain still exists (alive or shut down, not destroyed). */
  alive(): boolean {
    const s = this.table.get(this.self, DW.STATE);
    return this.table.get(this.self, DW.GEN) === this.ownGen && (s === DomainState.ALIVE || s === DomainState.SHUTDOWN);
  }

  /**
   * Forget the grants this thread made, without touching the table: for when our domain was
   * destroyed (its grant table went with it).
   */
  forgetAll(): void {
    for (const untrack of this.accessLeaks.values()) untrack();
    this.accessLeaks.clear();
  }

  /**
   * Release every mapping this domain holds (host cleanup when it is destroyed), or only
   * those thread `tid` made (host cleanup after a backend thread died).
   */
  unmapAll(tid?: number): number {
    const live = this.maptrack.live().filter((e) => tid === undefined || e.tid === tid);
    for (const e of live) this.release(e.handle);
    return live.length;
  }

  copy(ops: readonly GrantCopyOp[]): number[] {
    const out = new Array<number>(ops.length);
    for (let i = 0; i < ops.length; i++) out[i] = this.copyOne(ops[i]!);
    return out;
  }

  /**
   * One GNTTABOP_copy op. The hot path of netback and blkback (one or two per packet), so it
   * takes no closures or per-op objects: pin each grant side (source read, destination write),
   * copy, unpin in reverse order.
   */
  private copyOne(op: GrantCopyOp): number {
    const len = op.len;
    const s = op.source;
    const d = op.dest;
    if (!Number.isInteger(len) || len < 0 || !inBounds(s, len) || !inBounds(d, len)) {
      return GNTST_bad_copy_arg;
    }
    const sFrame = s.kind === 'grant' ? this.pinSide(s.domid, s.ref, false) : 0;
    if (sFrame < 0) return sFrame;
    const dFrame = d.kind === 'grant' ? this.pinSide(d.domid, d.ref, true) : 0;
    if (dFrame < 0) {
      if (s.kind === 'grant') this.unpinSide(s.domid, s.ref, false);
      return dFrame;
    }
    const src = s.kind === 'grant' ? this.frameBytes(s.domid, sFrame) : s.buf;
    const dst = d.kind === 'grant' ? this.frameBytes(d.domid, dFrame) : d.buf;
    dst.set(src.subarray(s.offset, s.offset + len), d.offset);
    if (d.kind === 'grant') this.unpinSide(d.domid, d.ref, true);
    if (s.kind === 'grant') this.unpinSide(s.domid, s.ref, false);
    return GNTST_okay;
  }

  /**
   * Hold a reference on live domain `domid` and pin its `ref` under its grant lock: the
   * granter's frame, or a GNTST_* status (< 0) with nothing held. Undo with `unpinSide`.
   */
  private pinSide(domid: number, ref: number, write: boolean): number {
    if (this.table.enter(domid) < 0) return GNTST_bad_domain;
    const g = this.view(domid);
    const lock = this.table.at(domid, DW.GNT_LOCK);
    lockWord(this.table.words, lock, this.tid);
    let res: ReturnType<typeof pinGrant>;
    try {
      res = pinGrant(g, ref, this.self, write);
    } finally {
      unlockWord(this.table.words, lock);
    }
    if (res.frame === undefined) {
      this.table.exit(domid);
      return res.status;
    }
    return res.frame;
  }

  private unpinSide(domid: number, ref: number, write: boolean): void {
    const g = this.view(domid);
    const lock = this.table.at(domid, DW.GNT_LOCK);
    lockWord(this.table.words, lock, this.tid);
    try {
      unpinGrant(g, ref, write);
    } finally {
      unlockWord(this.table.words, lock);
    }
    this.table.exit(domid);
  }

  private frameBytes(domid: number, frame: number): Uint8Array {
    return this.table.machine.bytes(this.view(domid).memBase + frame);
  }

  private locked<T>(domid: number, fn: () => T): T {
    return withLock(this.table.words, this.table.at(domid, DW.GNT_LOCK), this.tid, fn);
  }
}

/** "copy arguments cross page boundary": a grant side must stay inside its 4 KiB page. */
function inBounds(p: CopyPtr, len: number): boolean {
  if (!Number.isInteger(p.offset) || p.offset < 0) return false;
  const limit = p.kind === 'grant' ? PAGE : p.buf.length;
  return p.offset + len <= limit;
}

class SimGrantMapping implements GrantMapping {
  private disposed = false;
  private readonly untrack: () => void;

  constructor(
    private readonly ops: SimGrantOps,
    readonly domid: DomId,
    refs: readonly GrantRef[],
    readonly writable: boolean,
    readonly pages: readonly Uint8Array[],
    private readonly handles: readonly number[],
  ) {
    this.refs = [...refs];
    this.untrack = trackResource('grant-mapping', `dom${ops.self} maps dom${domid} refs [${refs.join(',')}]`);
  }

  readonly refs: readonly GrantRef[];

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const h of this.handles) this.ops.unmapHandle(h);
    this.untrack();
  }
}
