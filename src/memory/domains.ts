/**
 * The domain table: one row of shared Int32 words per domain id, readable by every thread.
 *
 * A row says whether the domain exists, where its memory and its hypervisor-private control
 * regions (shared_info, grant table, event channels...) sit in machine memory, and holds its
 * locks and counters. Rows are written by the host (create/destroy) and by hypercalls (locks,
 * counters); everything else reads them with atomics.
 *
 * Lifetime (Xen's RCU domain lock): a thread that touches another domain first `acquire`s it,
 * which bumps a reference count and re-checks the state. The host reclaims a destroyed
 * (DYING) domain's frames only when its references (`refs`) and FOREIGN_PINS (live grant pins
 * into it) are both zero, so no hypercall ever writes into frames that were handed to a new
 * domain.
 *
 * A thread the host may terminate (a vCPU, a backend thread: `bindRefSlot`) counts its
 * references in a slot of its own instead of the row's REFS word: terminated between taking a
 * reference and dropping it (mid-hypercall, where Xen's own code is never interrupted), it
 * leaves them in its slot, and the host drops exactly those (`clearRefSlot`). With one shared
 * counter a killed backend's reference kept the domain it was copying to from ever being
 * reclaimed.
 */
import { XenpvError, type DomId } from '../base/index.js';
import { MachineMemory, type MachineHandle } from './machine.js';

/** Row word indices. */
export const DW = {
  STATE: 0,
  GEN: 1,
  /** On its own cache line (word 48 = byte 192 of the row): every EVTCHNOP_send into the
   *  domain bumps it, and it must not bounce the line the vCPU's paused check reads. */
  REFS: 48,
  PAUSE: 3,
  SHUTDOWN_CODE: 4,
  KILL: 5,
  NR_VCPUS: 6,
  MEM_BASE: 7,
  NR_PAGES: 8,
  CTL_BASE: 9,
  CTL_FRAMES: 10,
  GNT_ENTRIES: 11,
  MAPTRACK_MAX: 12,
  EVTCHN_MAX: 13,
  GNT_LOCK: 14,
  EVT_LOCK: 15,
  MAPTRACK_USED: 16,
  FOREIGN_PINS: 17,
  GREF_HINT: 18,
  PAGE_HINT: 19,
  MAPTRACK_HINT: 20,
  PAGES_FREE: 21,
  /** Bumped on every pause/unpause/shutdown/kill, so a vCPU notices control changes. */
  CONTROL_SEQ: 22,
  R_SHARED_INFO: 24,
  R_GNT_TABLE: 25,
  R_GNT_ACTIVE: 26,
  R_GREF_BITMAP: 27,
  R_MAPTRACK: 28,
  R_PORTS: 29,
  R_LISTENERS: 30,
  R_VIRQS: 31,
  R_PAGE_BITMAP: 32,
  R_START_INFO: 33,
} as const;
export const ROW_WORDS = 64;

/** Domain states (DW.STATE). */
export const DomainState = {
  FREE: 0,
  /** Being built by the host; invisible to hypercalls. */
  CREATING: 1,
  ALIVE: 2,
  /** Shut down by itself (SCHEDOP_shutdown); still exists until the toolstack destroys it. */
  SHUTDOWN: 3,
  /** Destroyed; frames are reclaimed once REFS and FOREIGN_PINS reach zero. */
  DYING: 4,
} as const;

/** Threads that count their references apart (bindRefSlot); others share the row's REFS. */
export const REF_SLOTS = 256;

/** Header words before row 0. */
const H_MAX_DOMAINS = 0;
const H_NEXT_TID = 1;
const HEADER_WORDS = ROW_WORDS;

export interface HvHandle {
  readonly machine: MachineHandle;
  readonly table: SharedArrayBuffer;
}

/** Everything a thread needs to reach any domain: machine memory and the domain table. */
export class DomainTable {
  readonly machine: MachineMemory;
  readonly words: Int32Array;
  readonly maxDomains: number;
  /** Where the reference slots start: REF_SLOTS rows of maxDomains counters. */
  private readonly refBase: number;
  /** This thread's slot (bindRefSlot), or -1: its references go to the rows' REFS words. */
  private refSlot = -1;

  constructor(readonly handle: HvHandle) {
    this.machine = new MachineMemory(handle.machine);
    this.words = new Int32Array(handle.table);
    this.maxDomains = Atomics.load(this.words, H_MAX_DOMAINS);
    this.refBase = HEADER_WORDS + this.maxDomains * ROW_WORDS;
  }

  static create(maxDomains: number, maxMachineBytes: number): DomainTable {
    const machine = MachineMemory.create(maxMachineBytes);
    const table = new SharedArrayBuffer((HEADER_WORDS + maxDomains * ROW_WORDS + REF_SLOTS * maxDomains) * 4);
    const words = new Int32Array(table);
    words[H_MAX_DOMAINS] = maxDomains;
    words[H_NEXT_TID] = 1;
    return new DomainTable({ machine: machine.handle, table });
  }

  /** Word index of `field` in domain `domid`'s row. */
  at(domid: number, field: number): number {
    return HEADER_WORDS + domid * ROW_WORDS + field;
  }

  get(domid: number, field: number): number {
    return Atomics.load(this.words, this.at(domid, field));
  }

  set(domid: number, field: number, value: number): void {
    Atomics.store(this.words, this.at(domid, field), value);
  }

  add(domid: number, field: number, delta: number): number {
    return Atomics.add(this.words, this.at(domid, field), delta);
  }

  inRange(domid: number): boolean {
    return Number.isInteger(domid) && domid >= 0 && domid < this.maxDomains;
  }

  state(domid: number): number {
    return this.inRange(domid) ? this.get(domid, DW.STATE) : DomainState.FREE;
  }

  /** Count this thread's references in `slot` (the host's, for a thread it may terminate). */
  bindRefSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= REF_SLOTS) throw new XenpvError('EINVAL', `no reference slot ${slot}`);
    this.refSlot = slot;
  }

  /** The word this thread counts its references to `domid` in. */
  private refWord(domid: number): number {
    return this.refSlot < 0 ? HEADER_WORDS + domid * ROW_WORDS + DW.REFS : this.refBase + this.refSlot * this.maxDomains + domid;
  }

  /** References held on `domid`, by every thread. */
  refs(domid: number): number {
    let n = this.get(domid, DW.REFS);
    for (let s = 0; s < REF_SLOTS; s++) n += Atomics.load(this.words, this.refBase + s * this.maxDomains + domid);
    return n;
  }

  /**
   * Drop every reference counted in `slot`, whose thread is gone (terminated, or stopped
   * cleanly, when there are none); returns how many there were. The slot is then free for
   * another thread.
   */
  clearRefSlot(slot: number): number {
    let n = 0;
    const base = this.refBase + slot * this.maxDomains;
    for (let d = 0; d < this.maxDomains; d++) n += Atomics.exchange(this.words, base + d, 0);
    return n;
  }

  /** A fresh thread id (lock ownership); ids are never reused within one hypervisor. */
  newTid(): number {
    return Atomics.add(this.words, H_NEXT_TID, 1);
  }

  /**
   * Take a reference on a live (ALIVE or SHUTDOWN) domain, or undefined if there is none.
   * Release with `release`. A DYING domain is refused: it must gain no new mappings or
   * bindings (XSA-410: "refuse new allocations for dying domains").
   */
  acquire(domid: number): DomainRef | undefined {
    if (!this.inRange(domid)) return undefined;
    const gen = this.get(domid, DW.GEN);
    if (!isLive(this.get(domid, DW.STATE))) return undefined;
    const ref = this.refWord(domid);
    Atomics.add(this.words, ref, 1);
    if (!isLive(this.get(domid, DW.STATE)) || this.get(domid, DW.GEN) !== gen) {
      Atomics.sub(this.words, ref, 1);
      return undefined;
    }
    return new DomainRef(this, domid as DomId, gen);
  }

  /**
   * The allocation-free form of `acquire` for hot paths (EVTCHNOP_send): returns the
   * generation held, or -1; pair with `exit(domid)`.
   */
  enter(domid: number): number {
    if (!this.inRange(domid)) return -1;
    const w = this.words;
    const row = HEADER_WORDS + domid * ROW_WORDS;
    const gen = Atomics.load(w, row + DW.GEN);
    const ref = this.refWord(domid);
    Atomics.add(w, ref, 1);
    const s = Atomics.load(w, row + DW.STATE);
    if (!isLive(s) || Atomics.load(w, row + DW.GEN) !== gen) {
      Atomics.sub(w, ref, 1);
      return -1;
    }
    return gen;
  }

  exit(domid: number): void {
    Atomics.sub(this.words, this.refWord(domid), 1);
  }

  /** Like `acquire`, but throws XenpvError(code) when the domain does not exist. */
  require(domid: number, code = 'ESRCH'): DomainRef {
    const ref = this.acquire(domid);
    if (ref === undefined) throw new XenpvError(code, `no such domain ${domid}`, { domid });
    return ref;
  }
}

function isLive(state: number): boolean {
  return state === DomainState.ALIVE || state === DomainState.SHUTDOWN;
}

/** A counted reference to one generation of a domain. */
export class DomainRef {
  private released = false;
  constructor(
    readonly table: DomainTable,
    readonly domid: DomId,
    readonly gen: number,
  ) {}

  get(field: number): number {
    return this.table.get(this.domid, field);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.table.exit(this.domid);
  }
}
