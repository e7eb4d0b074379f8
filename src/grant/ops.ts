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
import { DomainState, DW, MACHINE_PAGE_SIZE, ViewAddresses, lockWord, unlockWord, type DomainTable } from '../memory/index.js';
import { Maptrack } from './maptrack.js';
import { beginCopyAccess, endCopyAccess, GranterView, pinGrant, unpinGrant } from './pin.js';
import type { CopyPtr, GrantCopyOp, GrantMapping } from './types.js';

type GrantSide = Extract<CopyPtr, { kind: 'grant' }>;

const PAGE = MACHINE_PAGE_SIZE;

export class SimGrantOps {
  private readonly views = new Map<number, GranterView>();
  /** The view used last: netback and blkback copy to and from one peer at a time. */
  private lastView: GranterView | undefined;
  private readonly own: GranterView;
  private readonly refBits: Int32Array;
  readonly maptrack: Maptrack;
  private readonly accessLeaks = new Map<number, () => void>();
  /** Where a run's local buffers lie in machine memory, by position in the run (view-addresses.ts). */
  private readonly localAt: ViewAddresses;
  /** Our domain's generation: once it changes, our regions belong to someone else. */
  readonly ownGen: number;

  constructor(
    readonly table: DomainTable,
    readonly self: DomId,
    readonly tid: number,
  ) {
    this.ownGen = table.get(self, DW.GEN);
    this.localAt = new ViewAddresses(table.machine, MAX_RUN);
    this.own = this.view(self);
    const at = table.get(self, DW.R_GREF_BITMAP) * PAGE;
    this.refBits = new Int32Array(table.machine.sab, at, Math.ceil(this.own.entries / 32));
    this.maptrack = new Maptrack(table, self);
  }

  /** A (cached) view of domain `domid`'s grant table, for its current generation. */
  view(domid: number): GranterView {
    return this.viewAt(domid, this.table.get(domid, DW.GEN));
  }

  /** `view` for a generation the caller already read (DomainTable.enter's). */
  private viewAt(domid: number, gen: number): GranterView {
    const last = this.lastView;
    if (last !== undefined && last.domid === domid && last.gen === gen) return last;
    let v = this.views.get(domid);
    if (v === undefined || v.gen !== gen) {
      v = new GranterView(this.table, domid, gen);
      this.views.set(domid, v);
    }
    this.lastView = v;
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
    if (!this.suspendAccess(ref)) return false;
    this.freeRef(ref);
    this.accessLeaks.get(ref)?.();
    this.accessLeaks.delete(ref);
    return true;
  }

  /**
   * Linux's gnttab_end_foreign_access_ref without freeing the ref: observe that
   * !(flags & (GTF_reading|GTF_writing)), then compareExchange the flags to 0 (false, changing
   * nothing, while the grantee maps or copies the page), keeping the ref, its domid and its
   * frame for `resumeAccess` (`endAccess` frees the ref after it). A frontend reads what the
   * backend wrote into the page with no one able to change it, then grants it again.
   */
  suspendAccess(ref: GrantRef): boolean {
    const a = this.ownEntry(ref);
    for (;;) {
      const word = Atomics.load(this.own.shared, a);
      if ((word & (GTF_reading | GTF_writing)) !== 0) return false;
      if (Atomics.compareExchange(this.own.shared, a, word, word & ~0xffff) === word) return true;
    }
  }

  /** Grant a ref that `suspendAccess` ended to the same domain and frame again (gnttab_grant_foreign_access_ref). */
  resumeAccess(ref: GrantRef, readonly: boolean): void {
    const a = this.ownEntry(ref);
    const word = Atomics.load(this.own.shared, a);
    // Only we write our entries' flags while no access is granted: a live or never-granted
    // entry here is our own bug, not the grantee's doing.
    const allocated = (Atomics.load(this.refBits, ref >>> 5) & (1 << (ref & 31))) !== 0;
    if ((word & 0xffff) !== 0 || !allocated) throw new BugError(`grant ref ${ref} resumed while not suspended (flags ${word & 0xffff}, allocated ${allocated})`);
    Atomics.store(this.own.shared, a, (word & ~0xffff) | GTF_permit_access | (readonly ? GTF_readonly : 0));
  }

  /** The index of `ref`'s flags word in our shared entries; EINVAL outside the table. */
  private ownEntry(ref: GrantRef): number {
    if (!Number.isInteger(ref) || ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= this.own.entries) {
      throw new XenpvError('EINVAL', `bad grant ref ${ref}`, { ref });
    }
    return ref * 2;
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
    const n = refs.length;
    const handles = new Array<number>(n);
    const pages = new Array<Uint8Array>(n);
    for (let i = 0; i < n; i++) {
      const ref = refs[i]!;
      const h = this.mapOne(remote, ref, writable, pages, i);
      if (h < 0) {
        for (let k = 0; k < i; k++) this.unmapHandle(handles[k]!);
        throw new XenpvError(gntstName(h), `map of dom${remote} ref ${ref}: ${gntstMessage(h)}`, { remote, ref, status: h });
      }
      handles[i] = h;
    }
    return new SimGrantMapping(this, remote, refs, writable, pages, handles);
  }

  /** Map one ref: its maptrack handle (>= 0, its page in `pages[i]`) or a GNTST_* status (< 0). */
  private mapOne(remote: number, ref: number, writable: boolean, pages: Uint8Array[], i: number): number {
    const gen = this.table.enter(remote);
    if (gen < 0) return GNTST_bad_domain;
    try {
      const h = this.maptrack.claim();
      if (h === undefined) return GNTST_no_space;
      const g = this.viewAt(remote, gen);
      const frame = this.pinLocked(g, ref, writable);
      if (frame < 0) {
        this.maptrack.free(h);
        return frame;
      }
      this.maptrack.record(h, remote, ref, writable, gen, this.tid);
      pages[i] = g.page(frame);
      return h;
    } finally {
      this.table.exit(remote);
    }
  }

  /** GNTTABOP_unmap_grant_ref of one maptrack handle. Safe on a DYING granter (pins hold it). */
  unmapHandle(h: number): void {
    // Our domain was destroyed: the host already released every mapping it held.
    if (this.alive()) this.release(h);
  }

  private release(h: number): void {
    const mt = this.maptrack;
    if (!mt.isLive(h)) return;
    const granter = mt.granterOf(h);
    const ref = mt.refOf(h);
    const g = this.view(granter);
    if (g.gen !== mt.genOf(h)) throw new BugError(`dom${granter} reclaimed while dom${this.self} maps ref ${ref}`);
    this.unpinLocked(g, ref, mt.writableOf(h));
    mt.free(h);
  }

  /** `pinGrant` under the granter's grant lock (no closure: map and copy are hot paths). */
  private pinLocked(g: GranterView, ref: number, write: boolean): number {
    const lock = this.table.at(g.domid, DW.GNT_LOCK);
    lockWord(this.table.words, lock, this.tid);
    try {
      return pinGrant(g, ref, this.self, write);
    } finally {
      unlockWord(this.table.words, lock);
    }
  }

  /** `unpinGrant` under the granter's grant lock. */
  private unpinLocked(g: GranterView, ref: number, write: boolean): void {
    const lock = this.table.at(g.domid, DW.GNT_LOCK);
    lockWord(this.table.words, lock, this.tid);
    try {
      unpinGrant(g, ref, write);
    } finally {
      unlockWord(this.table.words, lock);
    }
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

  copy(ops: readonly GrantCopyOp[], count = ops.length, status?: number[]): number[] {
    const n = Math.min(count, ops.length);
    const out = status ?? new Array<number>(n);
    for (let i = 0; i < n; ) {
      const op = ops[i]!;
      const side = grantSideOf(op);
      if (side !== undefined) {
        // A run always takes its first op: grantSideOf admits exactly the shapes copyRun
        // copies, and a domid DomainTable.enter accepts is an integer (equal to itself).
        i = this.copyRun(ops, i, n, side.domid, out);
      } else {
        out[i] = this.copyOther(op);
        i++;
      }
    }
    return out;
  }

  /**
   * The hot path of netback and blkback: consecutive ops from `at` with one grant side each,
   * all of granter `domid` (one op, a netback tx or rx batch, a blkback request's segments),
   * as Xen's gnttab_copy keeps the source and destination it used last. One domain reference
   * and one hold of the granter's grant lock for the run (at most MAX_RUN ops), across each
   * op's check, copy and release (no active-entry or FOREIGN_PINS writes: nobody can observe
   * the pin meanwhile); per op the same checks, GTF_reading/GTF_writing updates and status
   * as alone. The run ends at the first op of another granter or kind, found while copying
   * (one pass, no closures or per-op objects). Returns the index after the run.
   */
  private copyRun(ops: readonly GrantCopyOp[], at: number, n: number, domid: number, out: number[]): number {
    const end = Math.min(n, at + MAX_RUN);
    const gen = this.table.enter(domid);
    if (gen < 0) return refuseRun(ops, at, end, domid, out);
    const g = this.viewAt(domid, gen);
    const self = this.self;
    const words = this.table.words;
    const lock = this.table.at(domid, DW.GNT_LOCK);
    let i = at;
    lockWord(words, lock, this.tid);
    try {
      for (; i < end; i++) {
        const op = ops[i]!;
        const s = op.source;
        const d = op.dest;
        if (d.kind === 'grant') {
          if (s.kind !== 'local' || d.domid !== domid) break;
          out[i] = copyToGrant(g, self, s, d, op.len, this.localAt.at(i - at, s.buf));
        } else {
          if (s.kind !== 'grant' || d.kind !== 'local' || s.domid !== domid) break;
          out[i] = copyFromGrant(g, self, s, d, op.len, this.localAt.at(i - at, d.buf));
        }
      }
    } finally {
      unlockWord(words, lock);
      this.table.exit(domid);
    }
    return i;
  }

  /**
   * An op without exactly one grant side: local to local (a plain copy), or grant to grant,
   * each side pinned under its own lock in turn (never both locks at once), copied, and
   * unpinned in reverse order. A pointer of no known kind is refused, not skipped.
   */
  private copyOther(op: GrantCopyOp): number {
    const s = op.source;
    const d = op.dest;
    if (s.kind === 'grant' && d.kind === 'grant') return argsOk(op) ? this.copyGrantToGrant(s, d, op.len) : GNTST_bad_copy_arg;
    if (s.kind !== 'local' || d.kind !== 'local' || !argsOk(op)) return GNTST_bad_copy_arg;
    d.buf.set(s.buf.subarray(s.offset, s.offset + op.len), d.offset);
    return GNTST_okay;
  }

  private copyGrantToGrant(s: GrantSide, d: GrantSide, len: number): number {
    const sFrame = this.pinSide(s.domid, s.ref, false);
    if (sFrame < 0) return sFrame;
    const dFrame = this.pinSide(d.domid, d.ref, true);
    if (dFrame < 0) {
      this.unpinSide(s.domid, s.ref, false);
      return dFrame;
    }
    this.table.machine.copy(this.view(d.domid).memAddr + dFrame * PAGE + d.offset, this.view(s.domid).memAddr + sFrame * PAGE + s.offset, len);
    this.unpinSide(d.domid, d.ref, true);
    this.unpinSide(s.domid, s.ref, false);
    return GNTST_okay;
  }

  /**
   * Hold a reference on live domain `domid` and pin its `ref` under its grant lock: the
   * granter's frame, or a GNTST_* status (< 0) with nothing held. Undo with `unpinSide`.
   */
  private pinSide(domid: number, ref: number, write: boolean): number {
    const gen = this.table.enter(domid);
    if (gen < 0) return GNTST_bad_domain;
    const frame = this.pinLocked(this.viewAt(domid, gen), ref, write);
    if (frame < 0) this.table.exit(domid);
    return frame;
  }

  private unpinSide(domid: number, ref: number, write: boolean): void {
    this.unpinLocked(this.view(domid), ref, write);
    this.table.exit(domid);
  }
}

/** The longest run `copyRun` takes under one lock hold (bounds how long other threads wait). */
const MAX_RUN = 64;

type LocalSide = Extract<CopyPtr, { kind: 'local' }>;

/** The op's grant side when it has exactly one (grant to local, local to grant), else undefined. */
function grantSideOf(op: GrantCopyOp): GrantSide | undefined {
  const s = op.source;
  const d = op.dest;
  if (s.kind === 'grant') return d.kind === 'local' ? s : undefined;
  return d.kind === 'grant' && s.kind === 'local' ? d : undefined;
}

/** A run whose granter is gone: GNTST_bad_domain per op (bad_copy_arg first, as alone); the index after it. */
function refuseRun(ops: readonly GrantCopyOp[], at: number, end: number, domid: number, out: number[]): number {
  let i = at;
  for (; i < end; i++) {
    const op = ops[i]!;
    // The first op is the run's whatever its domid compares as (a NaN domid must still advance).
    if (i > at && grantSideOf(op)?.domid !== domid) break;
    out[i] = argsOk(op) ? GNTST_bad_domain : GNTST_bad_copy_arg;
  }
  return i;
}

/**
 * A count or offset: an integer in [0, 2^32). One compare (`>>> 0` maps anything else,
 * NaN, fractions, negatives, non-numbers, to a different value); bounds are checked after.
 */
function isCount(x: number): boolean {
  return x >>> 0 === x;
}

/**
 * One local-to-grant op of a run (netback's rx copy into a posted buffer), under the
 * granter's lock and the domain reference `copyRun` holds: argsOk's checks written out for
 * this shape, then GTF_writing for the copy (beginCopyAccess/endCopyAccess).
 */
function copyToGrant(g: GranterView, self: number, s: LocalSide, d: GrantSide, len: number, bufAt: number): number {
  const buf = s.buf;
  const sOff = s.offset;
  const dOff = d.offset;
  // "copy arguments cross page boundary": the grant side stays inside its 4 KiB page.
  if (!isCount(len) || !isCount(sOff) || !isCount(dOff) || sOff + len > buf.length || dOff + len > PAGE) return GNTST_bad_copy_arg;
  const ref = d.ref;
  const frame = beginCopyAccess(g, ref, self, true);
  if (frame < 0) return frame;
  // A source in machine memory (netback's tx batch pages, at bufAt) is copied with memory.copy (machine.ts).
  if (bufAt >= 0) g.table.machine.copy(g.memAddr + frame * PAGE + dOff, bufAt + sOff, len);
  else g.mem.set(sOff === 0 && len === buf.length ? buf : buf.subarray(sOff, sOff + len), frame * PAGE + dOff);
  endCopyAccess(g, ref, true);
  return GNTST_okay;
}

/** One grant-to-local op of a run (netback's tx copy, blkback's writes): as `copyToGrant`, reading. */
function copyFromGrant(g: GranterView, self: number, s: GrantSide, d: LocalSide, len: number, bufAt: number): number {
  const buf = d.buf;
  const sOff = s.offset;
  const dOff = d.offset;
  if (!isCount(len) || !isCount(sOff) || !isCount(dOff) || sOff + len > PAGE || dOff + len > buf.length) return GNTST_bad_copy_arg;
  const ref = s.ref;
  const frame = beginCopyAccess(g, ref, self, false);
  if (frame < 0) return frame;
  if (bufAt >= 0) g.table.machine.copy(bufAt + dOff, g.memAddr + frame * PAGE + sOff, len);
  else buf.set(g.span(frame * PAGE + sOff, len), dOff);
  endCopyAccess(g, ref, false);
  return GNTST_okay;
}

/** The length is a count and both sides lie inside their page or buffer. */
function argsOk(op: GrantCopyOp): boolean {
  const len = op.len;
  return isCount(len) && inBounds(op.source, len) && inBounds(op.dest, len);
}

/** "copy arguments cross page boundary": a grant side must stay inside its 4 KiB page. */
function inBounds(p: CopyPtr, len: number): boolean {
  if (!isCount(p.offset)) return false;
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
    this.refs = refs.slice();
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
