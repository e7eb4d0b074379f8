/**
 * One netback queue: a tx ring (guest → bridge), an rx ring (bridge → guest), one or two
 * event channels, and the queue's transmit credit (Linux keeps `rate` per queue too).
 *
 * Transmit: per event, at most `txBudget` packets are taken, copied out of the guest's pages
 * with GNTTABOP_copy into a private frame (so the guest cannot change it afterwards), answered,
 * and handed to the bridge; then the queue yields (setImmediate) and continues. A packet over
 * the credit is held privately (its first slot already copied) until the credit timer.
 *
 * Receive (rx-copy): a frame is written into buffers the frontend posted, one page per data
 * slot, each response in the slot of the request it answers (netif.h: Linux netfront ignores
 * `id`). Without enough posted buffers the frame is refused (`false`) and the bridge queues it;
 * the frontend's next post wakes the port.
 */
import {
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
  XEN_NETIF_EXTRA_FLAG_MORE,
} from '../../abi/io/netif.js';
import type { NetifExtraInfo, NetifRxRequest, NetifTxResponse } from '../../abi/io/netif-codec.js';
import { u32Add, u32Sub, type Disposable, type DomId, type EvtchnPort, type GrantRef } from '../../base/index.js';
import { PAGE_SIZE, type CopyPtr, type EvtchnBinding, type GrantCopyOp, type GrantMapping, type Platform } from '../../hv/platform.js';
import type { BackRing } from '../../ring/index.js';
import { FrameSlab, OffloadInfos, ScratchFrame, type BridgePort, type FrameInfo } from './bridge/index.js';
import { CreditLimiter } from './rate-limit.js';
import { RxBatch } from './rx-batch.js';
import { TxBatch, takeBatchPages } from './tx-batch.js';
import { attachRxBackRing, attachTxBackRing, gsoExtraInfo, type RxSlotOut, type TxSlot } from './protocol.js';
import { isSingleSlot, parseTxPacket, singleSlotFault, type TxAnswer, type TxPacket, type TxParseLimits, type TxSlotSource } from './tx-parse.js';

/**
 * The longest a queue holds off for a congested destination that delivers nothing meanwhile.
 * A live receiver on a loaded 2-core machine can be off-CPU for tens of ms (20 ms still let
 * 1% of a stream be dropped in bench net); a dead one costs its senders this much once.
 */
const MAX_PAUSE_MS = 100;
/**
 * rx kick coalescing (rxKickLater): a burst smaller than RX_KICK_MIN frames is kicked at once;
 * a larger one waits while it grows, up to RX_KICK_BATCH frames or RX_KICK_LOW posted buffers left.
 */
const RX_KICK_MIN = 32;
const RX_KICK_BATCH = 192;
const RX_KICK_LOW = 64;

/** What a queue needs from its vif (NetBack). */
export interface VifContext {
  readonly platform: Platform;
  readonly frontDomid: DomId;
  readonly limits: TxParseLimits & { readonly txBudget: number; readonly eventAllowance: number; readonly eventWindowMs: number };
  readonly clock: () => number;
  /** The frontend's receive features. */
  readonly rx: { readonly sg: boolean; readonly gsoV4: boolean; readonly gsoV6: boolean };
  /** The vif was disabled (a fatal frontend error). A method: an object literal with a getter is a dictionary, every load from it a generic IC. */
  disabled(): boolean;
  /**
   * Hand a frame to the bridge; returns the destination port if it is congested (back-pressure).
   * `owned` false: the bridge copies what it keeps, the queue reuses `frame` afterwards.
   * `held`: not before the burst opened with `beginBurst` ends (BridgePort.inputHeld).
   */
  input(frame: Uint8Array, info: FrameInfo, owned: boolean, held?: boolean): BridgePort | undefined;
  /** Open a burst on the vif's port (the one to end it on), if it has one. */
  beginBurst(): BridgePort | undefined;
  mcast(op: 'add' | 'del', addr: Uint8Array): boolean;
  /** A frontend violation that disables the vif (xenvif_fatal_tx_err). */
  fatal(reason: string): void;
  /** Buffers were posted on some queue's rx ring. */
  rxPosted(): void;
  readonly counters: BackCounters;
}

export interface BackCounters {
  /** Guest → bridge packets refused by netback (parse drops, copy failures). */
  txErrors: number;
  txDropReasons: Record<string, number>;
  /** Bridge → guest frames lost by netback (copy failures, too big without sg, multicast filter). */
  rxErrors: number;
  rxFiltered: number;
  rateDeferrals: number;
  events: number;
  eventsDeferred: number;
  /** Event-channel notifications sent to the frontend (kicks after ring.h's suppression). */
  notifies: number;
}

export interface QueueConfig {
  readonly txRef: GrantRef;
  readonly rxRef: GrantRef;
  /** One port, or tx/rx ports with split event channels. */
  readonly ports: { readonly tx: EvtchnPort; readonly rx: EvtchnPort };
  readonly rate?: { readonly creditBytes: number; readonly creditUsecs: number };
}

export interface RxExtras {
  readonly gso?: FrameInfo['gso'];
  readonly hash?: { readonly typeBit: number; readonly value: number };
}

export class BackQueue implements Disposable {
  private readonly owned: Disposable[] = [];
  private readonly txRing: BackRing<TxSlot, NetifTxResponse>;
  private readonly rxRing: BackRing<NetifRxRequest, RxSlotOut>;
  private readonly txEvt: EvtchnBinding;
  private readonly rxEvt: EvtchnBinding;
  private readonly limiter: CreditLimiter;
  /** Private frames copied out of the guest's pages (handed to the bridge, never reused). */
  private readonly slab = new FrameSlab();
  /**
   * The private copy of a frame of one page or less: reused, since the bridge copies only what
   * has to wait (BridgePort.enqueue), and the receiving netback copies straight from here into
   * its guest's buffer. Still one private copy of the guest's bytes, read once.
   */
  private readonly txScratch = new ScratchFrame(PAGE_SIZE);
  /** One-slot packets staged for one grant-copy call (tx-batch.ts). */
  private readonly batch: TxBatch;
  /** One-slot frames for the guest staged for one grant-copy call (rx-batch.ts). */
  private readonly rxBatch: RxBatch;
  /** Responses are encoded at once (putResponse): one mutable object each, not one per packet. */
  private readonly txRsp: { id: number; status: number } = { id: 0, status: 0 };
  private readonly rxRsp: { id: number; offset: number; flags: number; status: number } = { id: 0, offset: 0, flags: 0, status: 0 };
  private readonly rxRspSlot: RxSlotOut = { kind: 'rsp', rsp: this.rxRsp };
  private pendingFirst: TxSlot | undefined;
  private txScheduled = false;
  private rxKickPending = false;
  private txKickPending = false;
  /** Frames written to the rx ring (mod 2^32); that count before the owed kick, and when last looked. */
  private rxPushed = 0;
  private rxKickFrom = 0;
  private rxKickSeen = 0;
  /** Posted rx requests known to be there and not yet taken (a lower bound: see `takeRxRequest`). */
  private rxKnown = 0;
  /** The tx ring as the chain parser reads it (one object for the queue's life). */
  private readonly txSource: TxSlotSource = {
    available: () => this.txRing.unconsumedRequests(),
    take: () => this.txRing.nextRequest()!,
  };
  /** Back-pressure: a congested destination port we stopped taking the tx ring for. */
  private pausedOn: BridgePort | undefined;
  private pauseTimer: NodeJS.Timeout | undefined;
  /** Withdraws the pause's drain waiter from its peer (on timeout, on dispose). */
  private cancelDrainWait: (() => void) | undefined;
  /** A destination that did not drain while we waited: not waited for again until it drains. */
  private deaf: BridgePort | undefined;
  private serving = false;
  private timer: NodeJS.Timeout | undefined;
  private windowStart = 0;
  private windowEvents = 0;
  private disposed = false;

  constructor(private readonly vif: VifContext, readonly index: number, cfg: QueueConfig) {
    const p = vif.platform;
    this.batch = new TxBatch(vif.frontDomid, this.own(takeBatchPages(p)).pages);
    this.rxBatch = new RxBatch(vif.frontDomid, this.txScratch.bytes);
    const onBroken = (): void => vif.fatal(`queue ${index}: impossible number of requests`);
    try {
      const txMap = this.own(p.grants.map(vif.frontDomid, [cfg.txRef], true));
      const rxMap = this.own(p.grants.map(vif.frontDomid, [cfg.rxRef], true));
      this.txRing = attachTxBackRing(pageOf(txMap), { onBroken });
      this.rxRing = attachRxBackRing(pageOf(rxMap), { onBroken });
      if (cfg.ports.tx === cfg.ports.rx) {
        this.txEvt = this.rxEvt = this.own(p.events.bindInterdomain(vif.frontDomid, cfg.ports.tx, () => this.onEvent(true, true)));
      } else {
        this.txEvt = this.own(p.events.bindInterdomain(vif.frontDomid, cfg.ports.tx, () => this.onEvent(true, false)));
        this.rxEvt = this.own(p.events.bindInterdomain(vif.frontDomid, cfg.ports.rx, () => this.onEvent(false, true)));
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
    this.limiter = cfg.rate === undefined ? CreditLimiter.unlimited(vif.clock) : new CreditLimiter({ ...cfg.rate, clock: vif.clock });
    this.kickTx();
  }

  private own<T extends Disposable>(d: T): T {
    this.owned.push(d);
    return d;
  }

  private kick(evt: EvtchnBinding): void {
    this.vif.counters.notifies++;
    evt.notify();
  }

  /** An event: a hint. Counted, rate-bounded (R6), and turned into at most one scheduled run. */
  private onEvent(tx: boolean, rx: boolean): void {
    if (this.disposed) return;
    this.vif.counters.events++;
    const now = this.vif.clock();
    if (now - this.windowStart >= this.vif.limits.eventWindowMs) {
      this.windowStart = now;
      this.windowEvents = 0;
    }
    if (++this.windowEvents > this.vif.limits.eventAllowance) {
      // Over the allowance: the work waits for the window's end, like a deferred EOI.
      this.vif.counters.eventsDeferred++;
      this.deferTo(this.windowStart + this.vif.limits.eventWindowMs);
      return;
    }
    // A budget of work right here (the event is the NAPI poll), the rest after a yield.
    this.guard(() => {
      if (tx && !this.txScheduled && !this.serving) this.serveTx();
      if (rx) this.vif.rxPosted();
    });
  }

  /**
   * Nothing a frontend does may throw out of an event handler into dom0's event loop: an
   * unexpected exception (a bug) disables this vif, as a fatal protocol error would.
   */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.vif.fatal(`queue ${this.index}: internal error: ${(err as Error).message}`);
    }
  }

  private deferTo(at: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kickTx();
      this.guard(() => this.vif.rxPosted());
    }, Math.max(0, at - this.vif.clock()));
  }

  kickTx(): void {
    if (this.txScheduled || this.disposed) return;
    this.txScheduled = true;
    setImmediate(() => {
      this.txScheduled = false;
      this.guard(() => this.serveTx());
    });
  }

  /** Take up to a budget of packets; reschedule if more are waiting (the cond_resched analogue). */
  serveTx(): void {
    if (this.disposed || this.vif.disabled() || this.serving || this.pausedOn !== undefined) return;
    this.serving = true;
    try {
      this.serveBudget();
    } finally {
      this.serving = false;
    }
  }

  private serveBudget(): void {
    let done = 0;
    while (done < this.vif.limits.txBudget && !this.vif.disabled() && this.pausedOn === undefined) {
      const first = this.pendingFirst ?? this.txRing.nextRequest();
      if (first === undefined) break;
      if (!this.limiter.tryConsume(first.req.size)) {
        this.pendingFirst = first;
        this.vif.counters.rateDeferrals++;
        this.deferTo(this.limiter.retryAt() ?? this.vif.clock());
        break;
      }
      this.pendingFirst = undefined;
      done++;
      const req = first.req;
      if (isSingleSlot(req) && singleSlotFault(req) === undefined) {
        this.batch.stage(req);
        if (this.batch.full) this.flushBatch();
      } else {
        this.flushBatch(); // responses in ring order: the staged packets came first
        this.txOne(first);
      }
    }
    this.flushBatch();
    // A fatal verdict tore the queue down: no response, no notification (Linux: vif->disabled).
    if (this.disposed || this.vif.disabled()) return;
    // The completion kick after the rx kicks of this task's frames (microtasks queued first):
    // the receiver of a ping is woken before its sender hears its frame was taken.
    if (this.txRing.pushResponses()) this.txKickLater();
    if (this.pendingFirst !== undefined) return;
    if (this.pausedOn !== undefined) return this.pause(this.pausedOn);
    if (done === this.vif.limits.txBudget || this.txRing.finalCheckForRequests()) this.kickTx();
  }

  /**
   * Copy the staged one-slot packets with one grant-copy call, answer each, and hand each
   * private frame to the bridge. A destination that becomes congested stops the next batch
   * (serveBudget), not the rest of this one: they were taken off the ring already.
   */
  private flushBatch(): void {
    const b = this.batch;
    const n = b.size;
    if (n === 0) return;
    const status = b.copy(this.vif.platform.grants);
    for (let i = 0; i < n; i++) this.putTxResponse(b.id(i), status[i] === 0 ? NETIF_RSP_OKAY : NETIF_RSP_ERROR);
    // The batch's pages stay as they are until clear(): receivers may copy them at the burst's end.
    const port = this.vif.beginBurst();
    try {
      for (let i = 0; i < n && !this.vif.disabled(); i++) {
        if (status[i] !== 0) {
          this.countTxDrop('grant copy failed');
          continue;
        }
        const f = b.flags(i);
        this.forward(b.frame(i), frameInfo((f & NETTXF_csum_blank) !== 0, (f & NETTXF_data_validated) !== 0), false, true);
      }
    } finally {
      port?.endBurst();
    }
    b.clear();
  }

  /**
   * A packet the batch does not take: more than one slot, extras, or a refused one-slot packet
   * (parseTxPacket gives it the verdict singleSlotFault gave in serveBudget).
   */
  private txOne(first: TxSlot): void {
    const v = parseTxPacket(first, this.txSource, this.vif.limits);
    switch (v.kind) {
      case 'fatal':
        this.vif.fatal(`queue ${this.index}: ${v.reason}`);
        return;
      case 'drop':
        this.countTxDrop(v.reason);
        this.answer(v.answers, NETIF_RSP_ERROR);
        return;
      case 'mcast':
        this.answer(v.answers, this.vif.mcast(v.op, v.addr) ? NETIF_RSP_OKAY : NETIF_RSP_ERROR);
        return;
      case 'packet':
        this.txPacket(v);
        return;
    }
  }

  private countTxDrop(reason: string): void {
    const c = this.vif.counters;
    c.txErrors++;
    const key = reason.split(' ').slice(0, 2).join(' ');
    c.txDropReasons[key] = (c.txDropReasons[key] ?? 0) + 1;
  }

  /** Copy the packet into a private frame, answer it, and give the frame to the bridge. */
  private txPacket(p: TxPacket): void {
    const owned = p.size > PAGE_SIZE;
    const frame = owned ? this.slab.alloc(p.size) : this.txScratch.frame(p.size);
    const ok = this.copyFrags(p.frags, frame);
    this.answer(p.answers, ok ? NETIF_RSP_OKAY : NETIF_RSP_ERROR);
    if (!ok) {
      this.countTxDrop('grant copy failed');
      return;
    }
    const info = p.gso !== undefined ? { csumBlank: p.csumBlank, dataValidated: p.dataValidated, gso: p.gso } : frameInfo(p.csumBlank, p.dataValidated);
    this.forward(frame, info, owned);
  }

  /** Hand a private frame to the bridge; hold off if its destination is congested. */
  private forward(frame: Uint8Array, info: FrameInfo, owned: boolean, held = false): void {
    const congested = this.vif.input(frame, info, owned, held);
    if (congested !== undefined && congested !== this.deaf) this.pausedOn = congested;
  }

  /**
   * The packet's fragments into `frame`, one grant-copy call. The common packet (one slot, no
   * extras) never comes here: it goes through the tx batch's reused ops (flushBatch).
   */
  private copyFrags(frags: TxPacket['frags'], frame: Uint8Array): boolean {
    const ops: GrantCopyOp[] = [];
    let at = 0;
    for (const f of frags) {
      const source: CopyPtr = { kind: 'grant', domid: this.vif.frontDomid, ref: f.gref as GrantRef, offset: f.offset };
      ops.push({ source, dest: { kind: 'local', buf: frame, offset: at }, len: f.len });
      at += f.len;
    }
    return this.vif.platform.grants.copy(ops).every((s) => s === 0);
  }

  /**
   * Stop taking the tx ring until `peer` drains: the guest's ring and then its netfront
   * backlog fill, and its sender waits, instead of the bridge dropping at `peer`. A peer that
   * delivers nothing within MAX_PAUSE_MS (a receiver that posts no buffers) is not waited for
   * again until it drains, so it can cost its senders at most one pause; other traffic of
   * this vif then flows, and frames to it are dropped at its queue as before.
   */
  private pause(peer: BridgePort): void {
    const delivered = peer.counters.txPackets;
    let resumed = false;
    const resume = (): void => {
      if (resumed) return;
      resumed = true;
      clearTimeout(this.pauseTimer);
      this.pauseTimer = undefined;
      this.cancelDrainWait?.();
      this.cancelDrainWait = undefined;
      if (this.pausedOn === peer) this.pausedOn = undefined;
      this.kickTx();
    };
    this.pauseTimer = setTimeout(() => {
      if (peer.counters.txPackets === delivered) {
        this.deaf = peer;
        peer.whenDrained(() => {
          if (this.deaf === peer) this.deaf = undefined;
        });
      }
      resume();
    }, MAX_PAUSE_MS);
    this.cancelDrainWait = peer.whenDrained(resume);
  }

  /** One response per consumed slot, in ring order: data slots get `status`, extras NULL. */
  private answer(answers: readonly TxAnswer[], status: number): void {
    for (const a of answers) {
      if (a.kind === 'data') this.putTxResponse(a.id, status);
      else this.putTxResponse(0, NETIF_RSP_NULL);
    }
  }

  private putTxResponse(id: number, status: number): void {
    const r = this.txRsp;
    r.id = id;
    r.status = status;
    this.txRing.putResponse(r);
  }

  /** Slots a frame needs on the rx ring: its data pages plus one per extra. */
  rxSlotsNeeded(len: number, extras: RxExtras): number {
    return Math.max(1, Math.ceil(len / PAGE_SIZE)) + (extras.gso !== undefined ? 1 : 0) + (extras.hash !== undefined ? 1 : 0);
  }

  /** Can `needed` slots be taken now? If not, ask for an event on the frontend's next post. */
  rxRoom(needed: number): boolean {
    // A ring broken since the count was taken yields no more requests (nextRequest answers
    // undefined): the count no longer stands.
    if (this.rxKnown >= needed && this.rxRing.broken === undefined) return true;
    let n = this.rxRing.unconsumedRequests();
    if (n < needed) {
      this.rxRing.finalCheckForRequests();
      n = this.rxRing.unconsumedRequests();
    }
    this.rxKnown = n;
    return n >= needed;
  }

  /**
   * The next posted rx request (the caller made sure with `rxRoom`). The count `rxRoom` saw
   * stays a lower bound of what the ring holds while we take from it (the frontend only adds
   * requests, and every request we take also takes its response slot), so frames within it
   * need not re-read the shared producer index.
   */
  private takeRxRequest(): NetifRxRequest {
    this.rxKnown--;
    return this.rxRing.nextRequest()!;
  }

  /**
   * Write a frame into posted buffers (the caller checked `rxRoom`). `stable`: its bytes stay
   * until `completeRx` (PortSink.complete), so a one-slot frame only takes its request now.
   */
  rxDeliver(frame: Uint8Array, info: FrameInfo, extras: RxExtras, stable = false): void {
    const dataSlots = Math.max(1, Math.ceil(frame.length / PAGE_SIZE));
    const plain = dataSlots === 1 && extras.gso === undefined && extras.hash === undefined;
    if (plain) {
      this.stageRx(frame, info);
      // A borrowed frame is copied before this returns, with the frames staged before it.
      if (!stable) this.completeRx();
      return;
    }
    this.completeRx(); // responses in ring order: the staged frames took their requests first
    const extraList = rxExtraList(extras);
    const reqs: NetifRxRequest[] = [];
    for (let i = 0; i < dataSlots + extraList.length; i++) reqs.push(this.takeRxRequest());
    const data = [reqs[0]!, ...reqs.slice(1 + extraList.length)];
    const ops: GrantCopyOp[] = data.map((r, i) => ({
      source: { kind: 'local', buf: frame, offset: i * PAGE_SIZE },
      dest: { kind: 'grant', domid: this.vif.frontDomid, ref: r.gref as GrantRef, offset: 0 },
      len: Math.min(PAGE_SIZE, frame.length - i * PAGE_SIZE),
    }));
    const status = this.vif.platform.grants.copy(ops);
    if (status.some((s) => s !== 0)) this.vif.counters.rxErrors++;
    const csum = rxCsumFlags(info);
    data.forEach((r, i) => {
      const more = i + 1 < data.length ? NETRXF_more_data : 0;
      const first = i === 0 ? csum | (extraList.length > 0 ? NETRXF_extra_info : 0) : 0;
      const st = status[i] === 0 ? ops[i]!.len : NETIF_RSP_ERROR;
      this.rxRing.putResponse({ kind: 'rsp', rsp: { id: r.id, offset: 0, flags: more | first, status: st } });
      if (i === 0) for (const e of extraList) this.rxRing.putResponse({ kind: 'extra', extra: e });
    });
    this.rxPushed = u32Add(this.rxPushed, 1);
    if (this.rxRing.pushResponses()) this.rxKickLater();
  }

  private stageRx(frame: Uint8Array, info: FrameInfo): void {
    const r = this.takeRxRequest();
    this.rxBatch.stage(frame, r.gref, r.id, rxCsumFlags(info));
    if (this.rxBatch.full) this.completeRx();
  }

  /** Copy the staged frames with one grant-copy call, then answer each in ring order. */
  completeRx(): void {
    const b = this.rxBatch;
    const n = b.size;
    if (n === 0) return;
    if (this.disposed || this.vif.disabled()) return b.clear(); // the rings are going away
    const status = b.copy(this.vif.platform.grants);
    const rsp = this.rxRsp;
    for (let i = 0; i < n; i++) {
      const ok = status[i] === 0;
      if (!ok) this.vif.counters.rxErrors++;
      rsp.id = b.id(i);
      rsp.offset = b.offset(i);
      rsp.flags = b.flags(i);
      rsp.status = ok ? b.len(i) : NETIF_RSP_ERROR;
      this.rxRing.putResponse(this.rxRspSlot);
    }
    b.clear();
    this.rxPushed = u32Add(this.rxPushed, n);
    if (this.rxRing.pushResponses()) this.rxKickLater(n);
  }

  /** The tx completion kick, at the end of this task (after the rx kicks queued before it). */
  private txKickLater(): void {
    if (this.txKickPending) return;
    this.txKickPending = true;
    queueMicrotask(() => {
      this.txKickPending = false;
      if (!this.disposed && !this.vif.disabled()) this.kick(this.txEvt);
    });
  }

  /**
   * rx responses are published at once; the kick they call for goes out at the end of this
   * task (a microtask) for a single frame or a short burst (a ping, a request, a window of a
   * few GSO frames: no added latency), but a stream's burst waits while it is still growing,
   * so a stream wakes the frontend once per burst of up to RX_KICK_BATCH frames rather than
   * once per tx budget of the sender's vif (Linux netback kicks once per rx batch). A burst's kick goes out on the first event-loop turn that
   * delivered nothing more, at RX_KICK_BATCH frames, or when fewer than RX_KICK_LOW posted
   * buffers are left: late by at most a few turns, never lost.
   */
  private rxKickLater(pushed = 1): void {
    if (this.rxKickPending) return;
    this.rxKickPending = true;
    // The `pushed` frames that asked for this kick were counted just before.
    this.rxKickFrom = this.rxKickSeen = u32Sub(this.rxPushed, pushed);
    queueMicrotask(this.rxKickCheck);
  }

  private readonly rxKickCheck = (): void => {
    if (this.disposed) return;
    const owed = u32Sub(this.rxPushed, this.rxKickFrom);
    const growing = owed >= RX_KICK_MIN && this.rxPushed !== this.rxKickSeen;
    if (growing && owed < RX_KICK_BATCH && this.rxRing.unconsumedRequests() >= RX_KICK_LOW) {
      this.rxKickSeen = this.rxPushed;
      setImmediate(this.rxKickCheck);
      return;
    }
    this.rxKickPending = false;
    this.kick(this.rxEvt);
  };

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.rxBatch.release();
    if (this.timer !== undefined) clearTimeout(this.timer);
    clearTimeout(this.pauseTimer);
    this.cancelDrainWait?.();
    for (const d of this.owned.reverse()) d.dispose();
    this.owned.length = 0;
  }
}

/** The four offload states of a plain frame, shared (FrameInfo is read-only). */
const FRAME_INFOS = new OffloadInfos<FrameInfo>((csumBlank, dataValidated) => ({ csumBlank, dataValidated }));

/** NETRXF_* checksum flags of a frame: a blank checksum also says data_validated, as Linux netback sets them. */
function rxCsumFlags(info: FrameInfo): number {
  return info.csumBlank ? NETRXF_csum_blank | NETRXF_data_validated : info.dataValidated ? NETRXF_data_validated : 0;
}

function frameInfo(csumBlank: boolean, dataValidated: boolean): FrameInfo {
  return FRAME_INFOS.get(csumBlank, dataValidated);
}

function pageOf(m: GrantMapping): Uint8Array {
  return m.pages[0]!;
}

/** The extra-info slots after a packet's first rx slot: GSO, then hash (Linux's order). */
function rxExtraList(extras: RxExtras): NetifExtraInfo[] {
  const list: NetifExtraInfo[] = [];
  if (extras.gso !== undefined) list.push(gsoExtraInfo(extras.gso));
  if (extras.hash !== undefined) {
    list.push({ kind: 'hash', flags: 0, type: extras.hash.typeBit, algorithm: XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ, value: extras.hash.value });
  }
  // Every extra but the last says another follows.
  return list.map((e, i) => (i + 1 < list.length ? { ...e, flags: XEN_NETIF_EXTRA_FLAG_MORE } : e));
}
