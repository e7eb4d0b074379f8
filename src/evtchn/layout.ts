/**
 * Event-channel state of one domain in machine memory, and the 2-level delivery path.
 *
 * - shared_info (the real x86_64 layout, abi/xen.ts): evtchn_pending and evtchn_mask are 64
 *   u64 words, little endian, so port p is bit p%32 of u32 word p>>5 of either array. Each
 *   vcpu_info has evtchn_upcall_pending (u8) and evtchn_pending_sel (u64: bit p>>6).
 * - Port table (hypervisor-private, Xen's `struct evtchn`): 2 words per port. Word 0 packs
 *   state (EVTCHNSTAT_*, 4 bits) | remote port or VIRQ (12 bits) << 4 | remote domid << 16,
 *   so a sender reads a consistent snapshot with one atomic load. Word 1 is the listener
 *   (the thread that bound the port; 0xff = none) | notify vCPU << 8.
 * - Listeners: the threads of this domain that receive events. A domain can have several
 *   (dom0's main thread and its backend workers, as several processes open /dev/xen/evtchn);
 *   each has a wake word it waits on and its own 64-bit selector of which pending words to
 *   scan, so one thread never swallows another's selector bit.
 * - VIRQ table: which port each VIRQ is bound to (0 = none).
 */
import { EVTCHN_2L_NR_CHANNELS } from '../abi/event_channel.js';
import { NR_VIRQS, SHARED_INFO, VCPU_INFO } from '../abi/xen.js';
import { DW, MACHINE_PAGE_SIZE, type DomainTable } from '../memory/index.js';

export const NR_PORTS = EVTCHN_2L_NR_CHANNELS;
export const PORT_WORDS = 2;
/** Listener slots per domain; 0xff in a port's listener byte means "none", so at most 255. */
export const MAX_LISTENERS = 255;
export const LISTENER_WORDS = 4;
export const L_OWNER = 0;
export const L_WAKE = 1;
export const L_SEL_LO = 2;
export const L_SEL_HI = 3;
export const NO_LISTENER = 0xff;
/** Port 0 is never handed out (Xen: ECS_RESERVED). */
export const STATE_RESERVED = 15;

const SI = SHARED_INFO.layouts.x86_64.fields;
const VI = VCPU_INFO.layouts.x86_64;
const PENDING_WORD0 = (SI.evtchn_pending ?? 2048) / 4;
const MASK_WORD0 = (SI.evtchn_mask ?? 2560) / 4;

export function portsFrames(): number {
  return (NR_PORTS * PORT_WORDS * 4) / MACHINE_PAGE_SIZE;
}
export function listenersFrames(): number {
  return Math.ceil((MAX_LISTENERS * LISTENER_WORDS * 4) / MACHINE_PAGE_SIZE);
}
export function virqFrames(): number {
  return 1;
}

export function packPort(state: number, remotePort: number, remoteDom: number): number {
  return (state & 0xf) | ((remotePort & 0xfff) << 4) | (remoteDom << 16);
}
export function portState(w: number): number {
  return w & 0xf;
}
export function portRemotePort(w: number): number {
  return (w >>> 4) & 0xfff;
}
export function portRemoteDom(w: number): number {
  return w >>> 16;
}

/** Typed views of one domain's event-channel regions. */
export class EvtchnView {
  readonly si: Int32Array;
  readonly siBytes: Uint8Array;
  readonly ports: Int32Array;
  readonly listeners: Int32Array;
  readonly virqs: Int32Array;
  /** Ports below this may be allocated (max_event_channels). */
  readonly maxPorts: number;

  constructor(
    readonly table: DomainTable,
    readonly domid: number,
    readonly gen: number,
  ) {
    const sab = table.machine.sab;
    const at = (f: number): number => table.get(domid, f) * MACHINE_PAGE_SIZE;
    this.si = new Int32Array(sab, at(DW.R_SHARED_INFO), MACHINE_PAGE_SIZE / 4);
    this.siBytes = new Uint8Array(sab, at(DW.R_SHARED_INFO), MACHINE_PAGE_SIZE);
    this.ports = new Int32Array(sab, at(DW.R_PORTS), NR_PORTS * PORT_WORDS);
    this.listeners = new Int32Array(sab, at(DW.R_LISTENERS), MAX_LISTENERS * LISTENER_WORDS);
    this.virqs = new Int32Array(sab, at(DW.R_VIRQS), NR_VIRQS);
    this.maxPorts = Math.min(NR_PORTS, table.get(domid, DW.EVTCHN_MAX));
  }

  port(p: number): number {
    return Atomics.load(this.ports, p * PORT_WORDS);
  }
  setPort(p: number, w: number): void {
    Atomics.store(this.ports, p * PORT_WORDS, w);
  }
  listenerOf(p: number): number {
    return Atomics.load(this.ports, p * PORT_WORDS + 1) & 0xff;
  }
  setListener(p: number, l: number): void {
    Atomics.store(this.ports, p * PORT_WORDS + 1, l & 0xff);
  }

  isPending(p: number): boolean {
    return (Atomics.load(this.si, PENDING_WORD0 + (p >>> 5)) & (1 << (p & 31))) !== 0;
  }
  isMasked(p: number): boolean {
    return (Atomics.load(this.si, MASK_WORD0 + (p >>> 5)) & (1 << (p & 31))) !== 0;
  }
  /** Atomically clear the pending bit; true if it was set. */
  testAndClearPending(p: number): boolean {
    const bit = 1 << (p & 31);
    return (Atomics.and(this.si, PENDING_WORD0 + (p >>> 5), ~bit) & bit) !== 0;
  }
  setMask(p: number): void {
    Atomics.or(this.si, MASK_WORD0 + (p >>> 5), 1 << (p & 31));
  }
  /** Clear the mask bit; true if it was set. */
  testAndClearMask(p: number): boolean {
    const bit = 1 << (p & 31);
    return (Atomics.and(this.si, MASK_WORD0 + (p >>> 5), ~bit) & bit) !== 0;
  }
  /** Pending and unmasked bits of u32 word `i` of the bitmaps. */
  deliverable(i: number): number {
    return Atomics.load(this.si, PENDING_WORD0 + i) & ~Atomics.load(this.si, MASK_WORD0 + i);
  }

  /**
   * The 2-level `set_pending`: set the pending bit; if it was clear and the port is not
   * masked, set the selector bit and evtchn_upcall_pending of the notify vCPU, then wake the
   * listener that owns the port.
   */
  setPending(p: number): void {
    const bit = 1 << (p & 31);
    if ((Atomics.or(this.si, PENDING_WORD0 + (p >>> 5), bit) & bit) !== 0) return;
    if (this.isMasked(p)) return;
    this.raise(p);
  }

  /**
   * Selector + upcall + wake for a pending, unmasked port. vcpu_info is kept as Xen keeps
   * it (test-and-set of the selector bit; upcall_pending set when the bit was new), for a
   * guest that scans shared_info itself. xenpv's own dispatch uses per-listener selectors
   * and leaves vcpu_info alone, so on the hot path this is one load of a line no one writes.
   */
  raise(p: number): void {
    const vcpu = (Atomics.load(this.ports, p * PORT_WORDS + 1) >>> 8) & 0xff;
    const vi = vcpu * VI.size;
    const sel = p >>> 6;
    const selWord = (vi + (VI.fields.evtchn_pending_sel ?? 8)) / 4 + (sel >>> 5);
    const selBit = 1 << (sel & 31);
    if ((Atomics.load(this.si, selWord) & selBit) === 0 && (Atomics.or(this.si, selWord, selBit) & selBit) === 0) {
      Atomics.store(this.siBytes, vi + (VI.fields.evtchn_upcall_pending ?? 0), 1);
    }
    const l = this.listenerOf(p);
    if (l === NO_LISTENER) return;
    const b = l * LISTENER_WORDS;
    Atomics.or(this.listeners, b + (sel < 32 ? L_SEL_LO : L_SEL_HI), 1 << (sel & 31));
    this.wake(l);
  }

  wake(l: number): void {
    const b = l * LISTENER_WORDS;
    Atomics.add(this.listeners, b + L_WAKE, 1);
    Atomics.notify(this.listeners, b + L_WAKE);
  }

  /** Wake every listener of the domain (a control change: pause, unpause, kill). */
  wakeAll(): void {
    for (let l = 0; l < MAX_LISTENERS; l++) {
      if (Atomics.load(this.listeners, l * LISTENER_WORDS + L_OWNER) !== 0) this.wake(l);
    }
  }

  /** What a guest's upcall handler does first: clear evtchn_upcall_pending and take the selector. */
  takeVcpuSelector(vcpu: number): bigint {
    const vi = vcpu * VI.size;
    Atomics.store(this.siBytes, vi + (VI.fields.evtchn_upcall_pending ?? 0), 0);
    const w = (vi + (VI.fields.evtchn_pending_sel ?? 8)) / 4;
    const lo = Atomics.exchange(this.si, w, 0) >>> 0;
    const hi = Atomics.exchange(this.si, w + 1, 0) >>> 0;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
}
