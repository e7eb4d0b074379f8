/**
 * Pinning a granted frame for a grantee: the checks Xen makes in `map_grant_ref` /
 * `acquire_grant_for_copy`, and the release in `unmap_common_complete` / `release_grant_for_copy`.
 *
 * Callers hold the granter's GNT_LOCK (a per-domain lock, where Xen has a per-active-entry
 * one). Active entries are written with plain stores: only lock holders read them for a
 * decision, and the lock's release (an atomic exchange) publishes the writes. The shared entry belongs to the granting guest and may change at any moment: it is
 * read once per attempt (an aligned 32-bit read, which cannot tear), and changed only by a
 * compareExchange against the word that was checked, or by atomic and/or.
 */
import {
  GNTST_bad_gntref,
  GNTST_bad_page,
  GNTST_general_error,
  GNTST_okay,
  GNTST_permission_denied,
  GTF_permit_access,
  GTF_readonly,
  GTF_reading,
  GTF_type_mask,
  GTF_writing,
} from '../abi/grant_table.js';
import { BugError } from '../base/index.js';
import { DW, MACHINE_PAGE_SIZE, type DomainTable } from '../memory/index.js';
import { PIN_HSTR_INC, PIN_HSTR_MASK, PIN_HSTW_INC, PIN_HSTW_MASK, PIN_OVERFLOW } from './layout.js';

/** How often to retry the compareExchange before calling the entry unstable (Xen: 4). */
const SET_STATUS_RETRIES = 4;

/** Cached copy spans per granter view (a power of two: a netfront's 256 tx pages fit). */
const SPAN_CACHE = 512;

/** Views of one domain's grant table and active entries. */
export class GranterView {
  readonly shared: Int32Array;
  readonly active: Int32Array;
  readonly entries: number;
  readonly nrPages: number;
  readonly memBase: number;
  /** The granter's guest memory (frames [0, nrPages)), for copies without a view per op. */
  readonly mem: Uint8Array;
  /** Where `mem` starts in machine memory (a byte address, for MachineMemory.copy). */
  readonly memAddr: number;
  private readonly pages: (Uint8Array | undefined)[] = [];

  constructor(
    readonly table: DomainTable,
    readonly domid: number,
    readonly gen: number,
  ) {
    this.entries = table.get(domid, DW.GNT_ENTRIES);
    this.nrPages = table.get(domid, DW.NR_PAGES);
    this.memBase = table.get(domid, DW.MEM_BASE);
    const sab = table.machine.sab;
    this.shared = new Int32Array(sab, table.get(domid, DW.R_GNT_TABLE) * MACHINE_PAGE_SIZE, this.entries * 2);
    this.active = new Int32Array(sab, table.get(domid, DW.R_GNT_ACTIVE) * MACHINE_PAGE_SIZE, this.entries * 2);
    this.memAddr = this.memBase * MACHINE_PAGE_SIZE;
    this.mem = new Uint8Array(sab, this.memAddr, this.nrPages * MACHINE_PAGE_SIZE);
  }

  /**
   * The span views `span` made last, direct-mapped by frame: a copy out of a granted page
   * (netback's tx, blkback's writes) reuses its view while the same frame is copied at the same
   * offset and length, which a stream's pages are, instead of making one per op (a new view
   * of machine memory costs 20-40 ns, about what the memmove of a 1514-byte frame does).
   */
  private readonly spanAt = new Int32Array(SPAN_CACHE).fill(-1);
  private readonly spanLen = new Int32Array(SPAN_CACHE);
  private readonly spans: Uint8Array[] = new Array<Uint8Array>(SPAN_CACHE);

  /** `mem.subarray(at, at + len)` (inside one frame), cached as above. */
  span(at: number, len: number): Uint8Array {
    const i = (at >>> 12) & (SPAN_CACHE - 1);
    if (this.spanAt[i] === at && this.spanLen[i] === len) return this.spans[i]!;
    const v = this.mem.subarray(at, at + len);
    this.spanAt[i] = at;
    this.spanLen[i] = len;
    this.spans[i] = v;
    return v;
  }

  /** A view of the granter's page `frame` (< nrPages), made once per frame and then shared. */
  page(frame: number): Uint8Array {
    let v = this.pages[frame];
    if (v === undefined) {
      v = this.mem.subarray(frame * MACHINE_PAGE_SIZE, (frame + 1) * MACHINE_PAGE_SIZE);
      this.pages[frame] = v;
    }
    return v;
  }
}

/**
 * Pin `ref` of granter `g` for domain `self`, for writing if `write`. On success returns the
 * granter's frame (guest frame number, >= 0) to access; on failure a GNTST_* status (< 0)
 * and nothing changed.
 */
export function pinGrant(g: GranterView, ref: number, self: number, write: boolean): number {
  // The checks and GTF_* updates are GNTTABOP_copy's; a pin also records itself.
  const frame = beginCopyAccess(g, ref, self, write);
  if (frame < 0) return frame;
  const a = ref * 2;
  const pins = Atomics.load(g.active, a) & 0xffff;
  // Copy the frame once at the first pin; every later pin uses the copy (Xen's act->frame).
  if (pins === 0) g.active[a + 1] = frame;
  g.active[a] = (pins + (write ? PIN_HSTW_INC : PIN_HSTR_INC)) | (self << 16);
  g.table.add(g.domid, DW.FOREIGN_PINS, 1);
  return frame;
}

/**
 * Check the shared entry names `self` with GTF_permit_access (and not GTF_readonly for a
 * write), and set GTF_reading (| GTF_writing) in the same compareExchange. Returns the flags
 * this call added (>= 0), or a GNTST_* status (< 0).
 */
function setStatus(g: GranterView, ref: number, self: number, write: boolean): number {
  const a = ref * 2;
  for (let i = 0; i < SET_STATUS_RETRIES; i++) {
    // One read of the word per attempt (an aligned Int32Array read cannot tear); the
    // compareExchange below succeeds only if the word is still exactly what was checked.
    const word = g.shared[a]!;
    const flags = word & 0xffff;
    // grant_table.h: "GTF_permit_access: Allow @domid to map/access @frame."
    if ((flags & GTF_type_mask) !== GTF_permit_access || word >>> 16 !== self) return GNTST_permission_denied;
    // "GTF_readonly: Restrict @domid to read-only mappings and accesses."
    if (write && (flags & GTF_readonly) !== 0) return GNTST_permission_denied;
    const want = GTF_reading | (write ? GTF_writing : 0);
    if (Atomics.compareExchange(g.shared, a, word, word | want) === word) return want & ~flags;
  }
  // Xen: "Shared grant entry is unstable." The granter keeps rewriting it.
  return GNTST_general_error;
}

/** Drop one pin taken by `pinGrant(…, write)`; clears GTF_writing / GTF_reading at zero. */
export function unpinGrant(g: GranterView, ref: number, write: boolean): void {
  const a = ref * 2;
  const act = Atomics.load(g.active, a);
  let pins = act & 0xffff;
  const field = write ? pins & PIN_HSTW_MASK : pins & PIN_HSTR_MASK;
  if (field === 0) throw new BugError(`unpin of ref ${ref} of domain ${g.domid} that is not pinned`);
  pins -= write ? PIN_HSTW_INC : PIN_HSTR_INC;
  g.active[a] = pins === 0 ? 0 : pins | (act & ~0xffff);
  if ((pins & PIN_HSTW_MASK) === 0) Atomics.and(g.shared, a, ~GTF_writing);
  if (pins === 0) Atomics.and(g.shared, a, ~(GTF_reading | GTF_writing));
  g.table.add(g.domid, DW.FOREIGN_PINS, -1);
}

/**
 * GNTTABOP_copy's access to one grant side while the caller holds the granter's GNT_LOCK for
 * the whole copy: the checks, statuses and GTF_reading/GTF_writing updates of a pin (`pinGrant`
 * is this plus the active entry and FOREIGN_PINS), with `endCopyAccess` as the matching unpin.
 * Nobody can observe the pin count in between (every reader of the active entry holds the
 * same lock), and the caller's domain reference (DomainTable.enter) keeps the
 * granter's frames from being reclaimed. Returns the granter's frame (>= 0) or a GNTST_*
 * status (< 0) with nothing changed; after the copy call `endCopyAccess` with the same args.
 */
export function beginCopyAccess(g: GranterView, ref: number, self: number, write: boolean): number {
  // "Bad ref": the ref must lie inside the granter's table (Xen: ref >= nr_grant_entries).
  if (!Number.isInteger(ref) || ref < 0 || ref >= g.entries) return GNTST_bad_gntref;
  const a = ref * 2;
  // Plain reads of the active entry: only holders of the lock we hold write it.
  const act = g.active[a]!;
  const pins = act & 0xffff;
  if (pins === 0) {
    const added = setStatus(g, ref, self, write);
    if (added < 0) return added;
    // The frame is read after the flags are set, as at a first pin (Xen's act->frame): the
    // granter wrote it before the flags our compareExchange saw, so this read sees it.
    const frame = g.shared[a + 1]! >>> 0;
    if (frame >= g.nrPages) {
      if (added !== 0) Atomics.and(g.shared, a, ~added);
      return GNTST_bad_page;
    }
    return frame;
  }
  if (act >>> 16 !== self) return GNTST_permission_denied;
  const field = write ? (pins & PIN_HSTW_MASK) >> 8 : pins & PIN_HSTR_MASK;
  if (field + 1 >= PIN_OVERFLOW) return GNTST_general_error;
  if (write && (pins & PIN_HSTW_MASK) === 0) {
    const r = setStatus(g, ref, self, true);
    if (r < 0) return r;
  }
  return g.active[a + 1]! >>> 0;
}

/** Undo `beginCopyAccess` (same lock hold): clear what an unpin back to the entry's pins would. */
export function endCopyAccess(g: GranterView, ref: number, write: boolean): void {
  const a = ref * 2;
  const pins = g.active[a]! & 0xffff;
  if (pins === 0) Atomics.and(g.shared, a, ~(GTF_reading | GTF_writing));
  else if (write && (pins & PIN_HSTW_MASK) === 0) Atomics.and(g.shared, a, ~GTF_writing);
}
