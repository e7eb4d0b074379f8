/**
 * A bridge port: what a vif (netback), the guest-side test harness or a TAP uplink plugs
 * into a Bridge.
 *
 * Two directions, named from the port's side as `ip -s link show vif1.0` names them in
 * dom0: **rx** is what the port's owner hands to the bridge with `input()` (for a vif: what
 * the guest sent), **tx** is what the bridge hands to the owner through `sink.deliver()`
 * (for a vif: what the guest will receive).
 *
 * Egress is a bounded queue per port (item and byte caps, R7): `deliver` returning false
 * means "no room now" (netback has no RX slots posted); the frame stays queued and the port
 * stops delivering until its owner calls `wake()`. A receiver that never drains fills its
 * own queue and then loses frames with `txDropped` counted; no other port notices.
 */
import { BoundedQueue } from '../../../base/index.js';
import { macKey } from './mac.js';
import { FrameSlab, type FramePool, type ScratchFrame } from './slab.js';

/** The GSO types netif.h has in use (XEN_NETIF_GSO_TYPE_TCPV4/TCPV6). */
export type GsoType = 'tcpv4' | 'tcpv6';

/** A GSO super-frame's type and MSS (netif's GSO extra info). */
export interface GsoInfo {
  readonly type: GsoType;
  readonly size: number;
}

/** Offload state that travels with a frame (netif TX flags / extra info → RX flags). */
export interface FrameInfo {
  /** TCP/UDP checksum left blank for the receiver to fill (NETTXF_csum_blank / NETRXF_csum_blank). */
  readonly csumBlank: boolean;
  /** The sender vouches for the payload checksum (NETTXF_data_validated / NETRXF_data_validated). */
  readonly dataValidated: boolean;
  /** A GSO super-frame larger than the MTU, to be cut into `size`-byte TCP segments (netif GSO extra). */
  readonly gso?: GsoInfo;
}

const NO_CANCEL = (): void => {};

export const PLAIN_FRAME: FrameInfo = Object.freeze({ csumBlank: false, dataValidated: false });

/**
 * One shared, read-only info object per offload state (csum_blank, data_validated): per-frame
 * code picks one instead of making an object per frame.
 */
export class OffloadInfos<T> {
  private readonly infos: readonly T[];

  constructor(make: (csumBlank: boolean, dataValidated: boolean) => T) {
    this.infos = [false, true].flatMap((csumBlank) => [false, true].map((dataValidated) => Object.freeze(make(csumBlank, dataValidated))));
  }

  get(csumBlank: boolean, dataValidated: boolean): T {
    return this.infos[(csumBlank ? 2 : 0) + (dataValidated ? 1 : 0)]!;
  }
}

export interface PortSink {
  /**
   * Take one frame. The bytes are shared with other ports and must not be modified.
   * Return false when there is no room now: the bridge keeps the frame and waits for `wake()`.
   * `stable`: the bytes stay as they are until the bridge calls `complete()`, so a sink that
   * has `complete` may take the frame now (its ring slots) and copy it then, with the other
   * frames of the burst in one batch (Linux netback's rx grant-copy batch). Otherwise
   * deliver() copies what it keeps before it returns.
   */
  deliver(frame: Uint8Array, info: FrameInfo, stable?: boolean): boolean;
  /** Finish what deliver() took from stable frames (see `deliver`). */
  complete?(): void;
  /**
   * deliver() copies whatever it keeps before it returns (netback: into the guest's posted
   * buffers), so the bridge may hand it a frame its sender reuses afterwards, without a copy
   * of its own, when nothing is queued before it.
   */
  readonly copiesFrame?: boolean;
}

export interface PortOptions {
  /** Largest L3 payload of a non-GSO frame (the vif's MTU, xenstore `mtu`, default 1500). */
  readonly mtu?: number;
  /**
   * The receiver takes GSO super-frames (the frontend negotiated feature-gso-tcpv4/6): true
   * for both types, or per type. A super-frame of a type it does not take is segmented.
   */
  readonly gso?: boolean | { readonly tcpv4: boolean; readonly tcpv6: boolean };
  /** The receiver takes checksum-blank frames; if false the bridge fills the checksum first. */
  readonly csumOffload?: boolean;
  readonly queueFrames?: number;
  readonly queueBytes?: number;
  /**
   * Anti-spoofing: only frames from this source MAC enter the bridge (the vif's `mac=`),
   * as the ebtables rules of Xen's vif scripts enforce. Others are dropped and counted.
   */
  readonly lockedMac?: Uint8Array;
}

export const DEFAULT_MTU = 1500;
export const DEFAULT_QUEUE_FRAMES = 256;
/** Enough for the item cap of full-size frames, and for a few dozen 64 KiB GSO frames. */
export const DEFAULT_QUEUE_BYTES = 2 * 1024 * 1024;
/** 802.1Q tag: Linux's is_skb_forwardable allows mtu + hard header + VLAN_HLEN. */
const VLAN_HLEN = 4;

export interface PortStats {
  rxPackets: number;
  rxBytes: number;
  rxErrors: number;
  rxDropped: number;
  txPackets: number;
  txBytes: number;
  txErrors: number;
  txDropped: number;
  /** Details of the errors and drops above. */
  rxRunts: number;
  rxOversize: number;
  rxBadSource: number;
  rxBadGso: number;
  rxSpoofed: number;
  txQueueFull: number;
  txTooBig: number;
}

function zeroStats(): PortStats {
  return {
    rxPackets: 0, rxBytes: 0, rxErrors: 0, rxDropped: 0,
    txPackets: 0, txBytes: 0, txErrors: 0, txDropped: 0,
    rxRunts: 0, rxOversize: 0, rxBadSource: 0, rxBadGso: 0, rxSpoofed: 0, txQueueFull: 0, txTooBig: 0,
  };
}

interface Queued {
  readonly frame: Uint8Array;
  readonly info: FrameInfo;
  /** The pool buffer `frame` lies in, if it is a pooled copy (given back once the sink completes it). */
  readonly pooled: ScratchFrame | undefined;
}

/** The bridge's side of a port. */
export interface PortHost {
  /** Where `input()` goes; `held`: the frame stays unchanged until the open burst ends. */
  ingress(port: BridgePort, frame: Uint8Array, info: FrameInfo, owned: boolean, held: boolean): boolean;
  /** A burst is open (`beginBurst`): completions wait for its end. */
  inBurst(): boolean;
  beginBurst(): void;
  endBurst(): void;
  /** Call `port.completeStaged()` when the open burst ends. */
  completeAtBurstEnd(port: BridgePort): void;
  /** The bridge's reused buffers for queued copies (one pool for all its ports: bounded memory). */
  readonly pool: FramePool | undefined;
}

export class BridgePort {
  /** Counters; read them with `stats()` for a snapshot. */
  readonly counters: PortStats = zeroStats();
  readonly mtu: number;
  /** Takes GSO super-frames of at least one type (see `takesGso`). */
  readonly gso: boolean;
  private readonly gsoTypes: { readonly tcpv4: boolean; readonly tcpv6: boolean };
  readonly csumOffload: boolean;
  /** macKey of the only source address allowed in, if locked. */
  readonly lockedMac: number | undefined;
  private readonly queue: BoundedQueue<Queued>;
  /** Copies of borrowed frames that have to wait (a slab view, not an ArrayBuffer each: ~10x cheaper). */
  private readonly slab = new FrameSlab();
  /**
   * Reused buffers for those copies, when the sink copies a stable frame at complete() and
   * keeps nothing (netback): given back after the complete() that follows their delivery.
   */
  private readonly pool: FramePool | undefined;
  /** Pool buffers delivered to the sink since its last complete(). */
  private inSink: ScratchFrame[] = [];
  private readonly queueBytesMax: number;
  private queuedBytes = 0;
  private flushing = false;
  private stalled = false;
  private attached = true;
  private drainWaiters = new Set<() => void>();
  /** The sink was handed stable frames it has not been told to complete yet. */
  private staged = false;
  /** This port waits in its bridge's list for the end of the open burst. */
  private awaitingBurstEnd = false;
  /**
   * Set by the bridge on every `input()`: the known-unicast destination port of that frame
   * when its egress queue is now congested, else undefined. An owner that can hold off (netback
   * stops taking the guest's tx ring, so the guest's own queue fills and its sender waits)
   * waits with `whenDrained` instead of overflowing the destination.
   */
  backPressure: BridgePort | undefined;

  constructor(
    readonly name: string,
    private readonly sink: PortSink,
    private readonly host: PortHost,
    opts: PortOptions = {},
  ) {
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    const g = opts.gso ?? false;
    this.gsoTypes = typeof g === 'boolean' ? { tcpv4: g, tcpv6: g } : { tcpv4: g.tcpv4, tcpv6: g.tcpv6 };
    this.gso = this.gsoTypes.tcpv4 || this.gsoTypes.tcpv6;
    this.csumOffload = opts.csumOffload ?? true;
    this.lockedMac = opts.lockedMac === undefined ? undefined : macKey(opts.lockedMac);
    this.queue = new BoundedQueue<Queued>(opts.queueFrames ?? DEFAULT_QUEUE_FRAMES);
    this.queueBytesMax = opts.queueBytes ?? DEFAULT_QUEUE_BYTES;
    this.pool = sink.copiesFrame === true && sink.complete !== undefined ? host.pool : undefined;
  }

  /**
   * The owner hands a frame to the bridge. The bridge copies it (the caller may reuse its
   * buffer) unless `owned` says the caller gives the buffer away. Returns false if the frame
   * was dropped at ingress (invalid, or the port is detached). Never throws.
   */
  input(frame: Uint8Array, info: FrameInfo = PLAIN_FRAME, owned = false): boolean {
    if (!this.attached) {
      this.counters.rxDropped++;
      return false;
    }
    return this.host.ingress(this, frame, info, owned, false);
  }

  /**
   * `input` of a frame its owner leaves unchanged until the burst around this call ends
   * (`beginBurst`/`endBurst`: netback's tx batch, whose private pages live until then), so a
   * sink may copy it at the burst's end, batched. Outside a burst, a plain borrowed input.
   */
  inputHeld(frame: Uint8Array, info: FrameInfo): boolean {
    if (!this.attached) {
      this.counters.rxDropped++;
      return false;
    }
    return this.host.ingress(this, frame, info, false, this.host.inBurst());
  }

  /** Open a burst of `inputHeld` frames; every beginBurst is matched by one endBurst. */
  beginBurst(): void {
    this.host.beginBurst();
  }

  /** Close it: sinks complete what they took from held frames (when no other burst is open). */
  endBurst(): void {
    this.host.endBurst();
  }

  /** The receiver has room again: deliver what is queued. */
  wake(): void {
    this.stalled = false;
    this.flush();
  }

  get isAttached(): boolean {
    return this.attached;
  }

  get queueLength(): number {
    return this.queue.length;
  }

  get queueBytes(): number {
    return this.queuedBytes;
  }

  stats(): Readonly<PortStats> {
    return { ...this.counters };
  }

  /**
   * Flow control, an 802.3x PAUSE analogue between ports (Linux's bridge has none: a stream
   * faster than its receiver loses frames at the egress queue): the queue is half full.
   */
  get congested(): boolean {
    return this.attached && (this.queue.length * 2 >= this.queue.capacity || this.queuedBytes * 2 >= this.queueBytesMax);
  }

  /** Below a quarter again: senders held off for this port may go on. */
  private get drained(): boolean {
    return this.queue.length * 4 <= this.queue.capacity && this.queuedBytes * 4 <= this.queueBytesMax;
  }

  /**
   * Call `cb` once, when the queue has drained to a quarter or the port left the bridge.
   * Returns the cancel: a waiter that gave up (a sender's pause timed out) must not stay
   * registered, or a port that never drains would collect one per pause without bound.
   */
  whenDrained(cb: () => void): () => void {
    if (!this.attached || this.drained) {
      queueMicrotask(cb);
      return NO_CANCEL;
    }
    const once = (): void => cb(); // its own identity: the same cb may wait twice
    this.drainWaiters.add(once);
    return () => void this.drainWaiters.delete(once);
  }

  private releaseWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = new Set();
    for (const cb of waiters) cb();
  }

  /** The receiver negotiated GSO of this type. */
  takesGso(type: GsoType): boolean {
    return this.gsoTypes[type];
  }

  /** Largest frame this port takes without GSO: MTU + Ethernet header + one VLAN tag. */
  get maxPlainFrame(): number {
    return this.mtu + 14 + VLAN_HLEN;
  }

  /**
   * Bridge-internal: queue a frame for this port and try to deliver. `owned` false: the
   * sender reuses `frame` once this returns; what has to wait in the queue is copied first.
   */
  enqueue(frame: Uint8Array, info: FrameInfo, owned = true, held = false): void {
    if (!this.attached) return;
    if (frame.length > this.maxPlainFrame && !(info.gso !== undefined && this.gsoTypes[info.gso.type])) {
      this.counters.txDropped++;
      this.counters.txTooBig++;
      return;
    }
    if (this.queue.full || this.queuedBytes + frame.length > this.queueBytesMax) {
      this.counters.txDropped++;
      this.counters.txQueueFull++;
      return;
    }
    let pooled: ScratchFrame | undefined;
    if (!owned) {
      if (this.cutThrough(frame, info, held)) return;
      pooled = this.pool?.copy(frame);
      frame = pooled !== undefined ? pooled.current : this.slab.copy(frame);
    }
    this.queue.push({ frame, info, pooled });
    this.queuedBytes += frame.length;
    if (!this.stalled) this.flush();
  }

  /**
   * A borrowed frame straight to a sink that copies (`copiesFrame`) when nothing waits before
   * it: true when delivered (or lost to a throwing sink, counted). False: the caller queues a
   * copy. Nested enqueues from inside the sink only queue (as in flush), delivered after it.
   */
  private cutThrough(frame: Uint8Array, info: FrameInfo, held: boolean): boolean {
    if (this.sink.copiesFrame !== true || this.stalled || this.flushing || this.queue.length > 0) return false;
    this.flushing = true;
    let taken: boolean;
    try {
      taken = this.deliverOne(frame, info, held);
    } finally {
      this.flushing = false;
    }
    this.settle();
    if (!this.attached) return true; // the sink removed its own port: nothing to queue into
    if (!taken) {
      this.stalled = true;
      return false;
    }
    if (this.queue.length > 0) this.flush();
    return true;
  }

  private flush(): void {
    // A sink may answer synchronously (a guest stack replying to a ping) and so re-enter
    // the bridge; the flag makes a nested enqueue only queue, and this loop delivers it.
    if (this.flushing || !this.attached) return;
    this.flushing = true;
    try {
      for (let item = this.queue.peek(); item !== undefined && !this.stalled; item = this.queue.peek()) {
        // A queued frame is the bridge's own (owned): stable until the sink completes it.
        if (!this.deliverOne(item.frame, item.info, true)) {
          this.stalled = true;
          break;
        }
        if (!this.attached) break; // the sink removed its own port: the queue is gone
        this.queue.shift();
        this.queuedBytes -= item.frame.length;
        if (item.pooled !== undefined) this.inSink.push(item.pooled);
      }
    } finally {
      this.flushing = false;
    }
    this.settle();
    if (this.drainWaiters.size > 0 && this.drained) this.releaseWaiters();
  }

  /** After a delivery run: have the sink complete stable frames now, or at the burst's end. */
  private settle(): void {
    if (!this.staged) return;
    if (!this.host.inBurst()) return this.completeStaged();
    if (this.awaitingBurstEnd) return;
    this.awaitingBurstEnd = true;
    this.host.completeAtBurstEnd(this);
  }

  /** Bridge-internal: the sink copies what it took from stable frames (a throwing sink is counted). */
  completeStaged(): void {
    this.awaitingBurstEnd = false;
    if (!this.staged) return;
    this.staged = false;
    // Only the buffers delivered before this call are freed by it: one a re-entered delivery
    // stages from inside complete() waits for the complete() that follows it.
    const done = this.inSink;
    const n = done.length;
    if (n > 0) this.inSink = [];
    try {
      this.sink.complete!();
    } catch {
      this.counters.txErrors++;
      // It may still hold some of them: never hand those buffers to another port's frames.
      this.inSink = [];
      return;
    }
    // The sink has copied (or dropped) every stable frame it took before: their buffers are free.
    for (let i = 0; i < n; i++) this.pool!.give(done[i]!);
  }

  /** False only when the sink said "no room"; a throwing sink loses the frame, counted. */
  private deliverOne(frame: Uint8Array, info: FrameInfo, stable: boolean): boolean {
    let accepted: boolean;
    const staging = stable && this.sink.complete !== undefined;
    // Staged before the call: a sink that throws after taking the frame still completes it.
    const wasStaged = this.staged;
    if (staging) this.staged = true;
    try {
      accepted = this.sink.deliver(frame, info, staging);
    } catch {
      this.counters.txErrors++;
      return true;
    }
    if (!accepted) this.staged = wasStaged; // "no room": it took nothing
    if (accepted) {
      this.counters.txPackets++;
      this.counters.txBytes += frame.length;
    }
    return accepted;
  }

  /** Bridge-internal: the port left the bridge; queued frames are dropped and counted. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    // Detached from inside deliver(): the head frame is in the sink's hands, not dropped.
    this.counters.txDropped += this.queue.length - (this.flushing ? 1 : 0);
    // Queued copies never reached the sink: their pool buffers go back (a pool's page buffers
    // are not GC's, and a guest destroyed mid-stream would take them out of use for good).
    // Not the head while flushing: flush shifts it only after deliver(), so it is in the sink's hands.
    let head = this.flushing;
    for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
      if (item.pooled !== undefined && !head) this.pool?.give(item.pooled);
      head = false;
    }
    this.queue.clear();
    this.queuedBytes = 0;
    this.releaseWaiters();
  }
}
