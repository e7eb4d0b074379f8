/**
 * One netfront queue: its tx and rx rings (pages we grant), event channel(s), the transmit
 * pages and the posted receive buffers.
 *
 * Transmit: each data slot uses one of our granted pages (a frame is cut at page boundaries);
 * a slot's `id` is its page's index, so a response names the page to take back. A frame that
 * finds no room waits in a bounded backlog, then is dropped and counted.
 *
 * Receive: a posted buffer sits at a ring index; its response comes back in the same slot
 * (netif.h), so the slot, not the response's id, names the buffer. Responses are checked as
 * Linux netfront does (xennet_get_responses): negative status or offset + size past the page
 * drops the packet; more than maxRxSlots, a missing continuation or a bad extra drops it too.
 * A backend that breaks the ring itself (response producer overflow, an unknown tx id) puts
 * the device in a sticky error state (R5): nothing more is processed or sent.
 */
import {
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
  XEN_NETIF_EXTRA_FLAG_MORE,
} from '../../abi/io/netif.js';
import type { NetifRxRequest, NetifTxResponse } from '../../abi/io/netif-codec.js';
import { BoundedQueue, u32Add, type Disposable, type EvtchnPort } from '../../base/index.js';
import { PAGE_SIZE, type EvtchnBinding } from '../../hv/platform.js';
import { FrontRing } from '../../ring/index.js';
import { FrameSlab, OffloadInfos, type FrameInfo } from './bridge/index.js';
import { SpanCache, type GrantedPage } from './front-pages.js';
import { rxFrontCodec, txFrontCodec } from './front-codec.js';
import { concat, TransientCopy } from './front-copy.js';
import { RxBufferQueue } from './front-rx-buffers.js';
import type { FrontQueueContext, RxFrameInfo } from './front-queue-context.js';
import { gsoExtraInfo, gsoTypeOf, type RxSlot, type TxSlotOut } from './protocol.js';

interface Pending {
  readonly frame: Uint8Array;
  readonly info: FrameInfo;
}

export class FrontQueue implements Disposable {
  readonly txPage: GrantedPage;
  readonly rxPage: GrantedPage;
  readonly txEvt: EvtchnBinding;
  readonly rxEvt: EvtchnBinding;
  private readonly tx: FrontRing<TxSlotOut, NetifTxResponse>;
  private readonly rx: FrontRing<NetifRxRequest, RxSlot>;
  private readonly txBufs: GrantedPage[];
  private readonly rxBufs: GrantedPage[];
  /**
   * The grant refs of txBufs and rxBufs, side by side: each request names one, and reading it
   * from 256 scattered page objects in turn was a cache miss per packet.
   */
  private readonly txRefs: Uint32Array;
  private readonly rxRefs: Uint32Array;
  private readonly txFree: number[] = [];
  private readonly txInFlight: Uint8Array;
  /** Free rx buffers, and the grants suspended while a frame is read in place (front-rx-buffers.ts). */
  private readonly rxQueue: RxBufferQueue;
  /** Buffer posted at each ring slot (index & mask), -1 when none. */
  private readonly rxAt: Int32Array;
  private rxProd = 0;
  private rxCons = 0;
  private readonly backlog: BoundedQueue<Pending>;
  /** Private copies: received frames (out of our shared rx pages) and backlogged transmits. */
  private readonly slab = new FrameSlab();
  private scheduled = false;
  private kickPending = false;
  /** Inside a burst (beginBurst): requests are put but published once, at its end. */
  private inBurst = false;
  /** A free tx page lent for the next frame to be built in (txBuffer), -1 when none. */
  private lentId = -1;
  /** The view of the lent page txBuffer handed out last. */
  private lentView: Uint8Array = new Uint8Array(0);
  /** Views of the tx pages (txBuffer): a stream's frames have one length, its views are reused. */
  private readonly txSpans: SpanCache;
  /** RxFrameInfo of a frame without GSO or hash, by (csum_blank, data_validated). */
  private readonly plainInfo: OffloadInfos<RxFrameInfo>;
  /** The reused copy of a one-slot frame for a receiver that copies what it keeps, where grants cannot be suspended. */
  private readonly rxCopy: TransientCopy;
  /** The buffer (index in rxBufs) of the response nextRxSlot took last. */
  private rxTaken = 0;
  /** Views of the received spans of our rx buffers (receiveSingle). */
  private readonly rxSpans: SpanCache;
  /** The one-slot request, rewritten per frame (putRequest encodes it at once). */
  private readonly txReq = { gref: 0, offset: 0, flags: 0, id: 0, size: 0 };
  private readonly txReqSlot: TxSlotOut = { kind: 'req', req: this.txReq };
  /** The rx buffer request, rewritten per post (putRequest encodes it at once). */
  private readonly rxReq = { id: 0, gref: 0 };
  private serving = false;
  private dead = false;

  constructor(private readonly ctx: FrontQueueContext, readonly index: number, split: boolean) {
    this.plainInfo = new OffloadInfos<RxFrameInfo>((csumBlank, dataValidated) => ({ csumBlank, dataValidated, queue: index }));
    this.rxCopy = new TransientCopy(ctx.platform.memory);
    let pages: GrantedPage[];
    try {
      pages = ctx.pool.grant(2 + ctx.txBuffers + ctx.rxBuffers, false);
    } catch (err) {
      this.rxCopy.dispose();
      throw err;
    }
    [this.txPage, this.rxPage] = [pages[0]!, pages[1]!];
    this.txBufs = pages.slice(2, 2 + ctx.txBuffers);
    this.rxBufs = pages.slice(2 + ctx.txBuffers);
    this.rxSpans = new SpanCache(this.rxBufs);
    this.txSpans = new SpanCache(this.txBufs);
    this.txRefs = Uint32Array.from(this.txBufs, (p) => p.ref);
    this.rxRefs = Uint32Array.from(this.rxBufs, (p) => p.ref);
    const onBroken = (): void => ctx.broken(`queue ${index}: response producer overflow`);
    // Responses decode into one reused object per ring (front-codec.ts): read before the next.
    this.tx = FrontRing.init(this.txPage.bytes, txFrontCodec(), { onBroken });
    this.rx = FrontRing.init(this.rxPage.bytes, rxFrontCodec(), { onBroken });
    this.txInFlight = new Uint8Array(ctx.txBuffers);
    for (let i = ctx.txBuffers - 1; i >= 0; i--) this.txFree.push(i);
    this.rxQueue = new RxBufferQueue(this.rxRefs, ctx.platform.grants);
    this.rxAt = new Int32Array(this.rx.size).fill(-1);
    this.backlog = new BoundedQueue(ctx.txBacklog);
    try {
      const ev = ctx.platform.events;
      if (split) {
        this.txEvt = ev.allocUnbound(ctx.backend, () => this.onEvent());
        try {
          this.rxEvt = ev.allocUnbound(ctx.backend, () => this.onEvent());
        } catch (err) {
          this.txEvt.dispose();
          throw err;
        }
      } else {
        this.txEvt = this.rxEvt = ev.allocUnbound(ctx.backend, () => this.onEvent());
      }
    } catch (err) {
      ctx.pool.release(pages);
      this.rxCopy.dispose();
      throw err;
    }
    this.postRx();
  }

  get ports(): { tx: EvtchnPort; rx: EvtchnPort } {
    return { tx: this.txEvt.port, rx: this.rxEvt.port };
  }

  /** Send a frame; false when it was dropped (too big, or the backlog is full). */
  transmit(frame: Uint8Array, info: FrameInfo): boolean {
    if (this.dead) return false;
    const slots = Math.max(1, Math.ceil(frame.length / PAGE_SIZE));
    if (frame.length > 0xffff || (slots > 1 && !this.ctx.back.sg) || slots > this.ctx.txBuffers) {
      this.ctx.counters.txDropped++;
      return false;
    }
    // Completions come back without an event while nothing waits (armTxCompletions): take
    // what is there on each transmit, so the most recently freed (cache-warm) pages are used
    // again, and a frame is not backlogged for want of pages already given back. In a burst,
    // once at its start (beginBurst), then only when a frame finds no page or slot.
    if (!this.inBurst) this.reapTx();
    if (this.backlog.length === 0 && this.tryPut(frame, info)) return true;
    if (this.inBurst && this.backlog.length === 0) {
      this.reapTx();
      if (this.tryPut(frame, info)) return true;
    }
    const copy = this.slab.copy(frame);
    // A frame built in the lent page is in the backlog's copy now: the page is free again (kept
    // lent, it would be the very page the backlog waits for, with txBuffer refusing to lend),
    // and the backlog may go on at once: no completion would come to start it.
    const unlent = this.lentId >= 0 && frame === this.lentView;
    if (unlent) {
      this.txFree.push(this.lentId);
      this.lentId = -1;
    }
    const queued = this.backlog.push({ frame: copy, info });
    if (unlent) this.flushBacklog();
    if (queued) {
      this.armTxCompletions();
      return true;
    }
    this.ctx.counters.txDropped++;
    return false;
  }

  /**
   * tx completions only give pages back, so an event for them is asked for only while a frame
   * waits for pages or slots (or `reapTx` is polled, as flush does): a ping or a request does
   * not wake its sender a second time for its completion. Then half-way to what is
   * outstanding (Linux netfront's tx `rsp_event`), not for each batch the backend pushes.
   */
  private armTxCompletions(): void {
    if (this.dead) return;
    if (this.askTxCompletions()) this.later();
  }

  /** Ask for an event half-way to what is outstanding; true if completions already wait. */
  private askTxCompletions(): boolean {
    return this.tx.finalCheckForResponses(this.tx.outstanding() >>> 1);
  }

  /**
   * One-slot frames the ring and pages take now without the backlog (after taking the
   * completions already there): a sender that sends no more than this copies each frame
   * once, into its granted page, instead of into the backlog first.
   */
  txSpace(): number {
    if (this.dead || this.serving || this.backlog.length > 0) return 0;
    this.reapTx();
    return this.dead ? 0 : Math.min(this.tx.freeRequests(), this.txFree.length + (this.lentId >= 0 ? 1 : 0));
  }

  /**
   * The first `len` bytes of a free transmit page, for the next frame to be built in place, or
   * undefined (no page or ring slot now, a backlog waits, more than a page). `transmit` of this
   * very view puts the page on the ring as it is: the sender's write into it is the frame's one
   * copy, as Linux netfront grants the skb's own pages. The page stays lent (neither free nor in
   * flight, so a response naming it is refused) until that transmit; a later call lends it again.
   */
  txBuffer(len: number): Uint8Array | undefined {
    if (this.dead || this.backlog.length > 0 || len < 1 || len > PAGE_SIZE || this.tx.freeRequests() < 1) return undefined;
    if (this.lentId < 0) {
      const id = this.txFree.pop();
      if (id === undefined) return undefined;
      this.lentId = id;
    }
    this.lentView = this.txSpans.get(this.lentId, 0, len);
    return this.lentView;
  }

  /** Take the tx completions that came back without an event (flush polls this). */
  pollTx(): void {
    if (this.dead || this.serving) return;
    this.reapTx();
    if (this.backlog.length > 0) this.flushBacklog();
  }

  private gsoExtra(info: FrameInfo): TxSlotOut | undefined {
    const g = info.gso;
    if (g === undefined || !(g.type === 'tcpv4' ? this.ctx.back.gsoV4 : this.ctx.back.gsoV6)) return undefined;
    return { kind: 'extra', extra: gsoExtraInfo(g) };
  }

  /** Put one frame on the ring if slots and pages allow; publish and notify. */
  private tryPut(frame: Uint8Array, info: FrameInfo): boolean {
    if (frame.length <= PAGE_SIZE && info.gso === undefined) return this.tryPutOne(frame, info);
    const dataSlots = Math.max(1, Math.ceil(frame.length / PAGE_SIZE));
    const extra = this.gsoExtra(info);
    if (this.tx.freeRequests() < dataSlots + (extra ? 1 : 0) || this.txFree.length < dataSlots) return false;
    const csum = (info.csumBlank ? NETTXF_csum_blank : 0) | (info.dataValidated ? NETTXF_data_validated : 0);
    for (let i = 0; i < dataSlots; i++) {
      const id = this.txFree.pop()!;
      this.txInFlight[id] = 1;
      const page = this.txBufs[id]!;
      const chunk = frame.subarray(i * PAGE_SIZE, Math.min(frame.length, (i + 1) * PAGE_SIZE));
      page.bytes.set(chunk, 0);
      const more = i + 1 < dataSlots ? NETTXF_more_data : 0;
      const flags = i === 0 ? csum | more | (extra ? NETTXF_extra_info : 0) : more;
      // The first slot's size is the whole packet (netif.h "Guest transmit").
      this.tx.putRequest({ kind: 'req', req: { gref: page.ref, offset: 0, flags, id, size: i === 0 ? frame.length : chunk.length } });
      if (i === 0 && extra) this.tx.putRequest(extra);
    }
    if (!this.inBurst) this.push();
    this.ctx.counters.txPackets++;
    this.ctx.counters.txBytes += frame.length;
    return true;
  }

  /**
   * tryPut's common frame: one slot, no extra. The frame goes into its page whole (no view
   * of it), and the request is written through one reused slot object (putRequest encodes
   * it at once).
   */
  private tryPutOne(frame: Uint8Array, info: FrameInfo): boolean {
    const lent = this.lentId >= 0 && frame === this.lentView;
    if (this.tx.freeRequests() < 1 || (!lent && this.txFree.length < 1)) return false;
    let id: number;
    if (lent) {
      id = this.lentId; // built in its page already (txBuffer): no copy
      this.lentId = -1;
    } else {
      id = this.txFree.pop()!;
      this.txBufs[id]!.bytes.set(frame, 0);
    }
    this.txInFlight[id] = 1;
    const r = this.txReq;
    r.gref = this.txRefs[id]!;
    r.flags = (info.csumBlank ? NETTXF_csum_blank : 0) | (info.dataValidated ? NETTXF_data_validated : 0);
    r.id = id;
    r.size = frame.length;
    this.tx.putRequest(this.txReqSlot);
    if (!this.inBurst) this.push();
    this.ctx.counters.txPackets++;
    this.ctx.counters.txBytes += frame.length;
    return true;
  }

  /** Frames wait for ring slots or pages: a sender that respects back-pressure waits. */
  get txBacklogged(): boolean {
    return !this.dead && this.backlog.length > 0;
  }

  /** Nothing waits to be sent or answered. */
  get txIdle(): boolean {
    return this.dead || (this.backlog.length === 0 && this.tx.outstanding() === 0);
  }

  /** A raw slot sequence, for multicast control and for tests that play a hostile frontend. */
  putRaw(slots: readonly TxSlotOut[]): boolean {
    if (this.dead || this.tx.freeRequests() < slots.length) return false;
    for (const s of slots) this.tx.putRequest(s);
    if (this.tx.pushRequests()) this.kick(this.txEvt);
    this.armTxCompletions(); // the caller wants the verdicts (multicast control, tests)
    return true;
  }

  /** Borrow a transmit page for a raw slot (tests); undefined when none is free. */
  borrowTxPage(): { id: number; page: GrantedPage } | undefined {
    const id = this.txFree.pop();
    if (id === undefined) return undefined;
    this.txInFlight[id] = 1;
    return { id, page: this.txBufs[id]! };
  }

  /**
   * A burst of transmits (NetFront.txBurst), Linux's `xmit_more`: the frames put until
   * `endBurst` are published together, one RING_PUSH_REQUESTS_AND_CHECK_NOTIFY (one req_prod
   * store, one req_event read) for the burst instead of one per frame, as Linux netfront
   * pushes only when `!netdev_xmit_more()`.
   */
  beginBurst(): void {
    this.inBurst = true;
    if (!this.dead) this.reapTx();
  }

  endBurst(): void {
    this.inBurst = false;
    this.push();
  }

  /** Publish what was put; the kick, if ring.h asks for one, at the end of this turn (kickLater). */
  private push(): void {
    if (!this.dead && this.tx.pushRequests()) this.kickLater();
  }

  /**
   * Requests are published at once (or at the end of a burst), but the kick ring.h asks for is
   * sent once per turn of the event loop, as Linux defers it under `xmit_more`: a sender that
   * puts 64 frames in one go wakes the backend once, when all 64 are there, not for the first
   * one (then again each time the backend catches up). Late by the rest of this turn, never lost.
   */
  private kickLater(): void {
    if (this.kickPending) return;
    this.kickPending = true;
    queueMicrotask(() => {
      this.kickPending = false;
      if (!this.dead) this.kick(this.txEvt);
    });
  }

  private kick(evt: EvtchnBinding): void {
    this.ctx.counters.notifies++;
    evt.notify();
  }

  private onEvent(): void {
    if (this.dead) return;
    this.ctx.counters.events++;
    if (!this.scheduled) this.guarded();
  }

  /** A backend can never throw through us into the guest's event loop: a bug breaks the device. */
  private guarded(): void {
    try {
      this.serve();
    } catch (err) {
      this.ctx.broken(`queue ${this.index}: internal error: ${(err as Error).message}`);
    }
  }

  /** More work than one budget: continue after a yield to the event loop. */
  private later(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.guarded();
    });
  }

  private serve(): void {
    if (this.dead || this.serving) return;
    this.serving = true;
    try {
      this.reapTx();
      const more = this.receiveBatch();
      if (this.dead) return;
      const backlogged = this.backlog.length > 0;
      this.flushBacklog();
      if (backlogged && this.backlog.length === 0) this.ctx.txRoom();
      // tx completions: an event only while frames wait for pages (armTxCompletions).
      const txMore = this.backlog.length > 0 && this.askTxCompletions();
      if (more || txMore || this.rx.finalCheckForResponses()) this.later();
    } finally {
      this.serving = false;
    }
  }

  private reapTx(): void {
    for (let r = this.tx.nextResponse(); r !== undefined && !this.dead; r = this.tx.nextResponse()) {
      if (r.status === NETIF_RSP_NULL) continue; // the answer to an extra-info slot
      // "don't trust the backend response data blindly": the id must be one of ours, in flight.
      if (r.id >= this.txInFlight.length || this.txInFlight[r.id] !== 1) {
        this.ctx.broken(`queue ${this.index}: tx response for inactive request ${r.id}`);
        return;
      }
      this.txInFlight[r.id] = 0;
      this.txFree.push(r.id);
      if (r.status !== NETIF_RSP_OKAY) this.ctx.counters.txErrors++;
    }
  }

  private flushBacklog(): void {
    for (let p = this.backlog.peek(); p !== undefined && this.tryPut(p.frame, p.info); p = this.backlog.peek()) this.backlog.shift();
  }

  /** Post every free rx buffer. */
  private postRx(): void {
    let posted = false;
    while (this.rxQueue.available > 0 && !this.rx.isFull()) {
      const buf = this.rxQueue.take();
      const slot = this.rxProd & (this.rx.size - 1);
      this.rxAt[slot] = buf;
      const req = this.rxReq;
      req.id = slot;
      req.gref = this.rxRefs[buf]!;
      this.rx.putRequest(req);
      this.rxProd = u32Add(this.rxProd, 1);
      posted = true;
    }
    if (posted && this.rx.pushRequests()) this.kick(this.rxEvt);
  }

  /** Take the next response, returning its slot's buffer to the free list. */
  private nextRx(): { slot: RxSlot; buf: GrantedPage } | undefined {
    const slot = this.nextRxSlot();
    return slot === undefined ? undefined : { slot, buf: this.rxBufs[this.rxTaken]! };
  }

  /** `nextRx` without the pair object: the buffer is left in `rxTaken`. */
  private nextRxSlot(): RxSlot | undefined {
    const slot = this.rx.nextResponse();
    if (slot === undefined) return undefined;
    const at = this.rxCons & (this.rx.size - 1);
    this.rxCons = u32Add(this.rxCons, 1);
    const b = this.rxAt[at]!;
    this.rxAt[at] = -1;
    if (b < 0) return undefined; // cannot happen with a valid producer index: no request there
    this.rxQueue.put(b);
    this.rxTaken = b;
    return slot;
  }

  /** Up to a budget of packets; true if more responses are waiting. */
  private receiveBatch(): boolean {
    let n = 0;
    for (; n < this.ctx.rxBudget && !this.dead; n++) {
      const slot = this.nextRxSlot();
      if (slot === undefined) break;
      if ((slot.rsp.flags & (NETRXF_more_data | NETRXF_extra_info)) === 0) this.receiveSingle(slot.rsp, this.rxTaken);
      else this.receiveOne({ slot, buf: this.rxBufs[this.rxTaken]! });
    }
    this.postRx();
    return n === this.ctx.rxBudget;
  }

  /** A packet of more than one slot, or with extras (receiveBatch takes one-slot packets to receiveSingle). */
  private receiveOne(first: { slot: RxSlot; buf: GrantedPage }): void {
    const c = this.ctx.counters;
    const parts: Uint8Array[] = [];
    let error = false;
    let gso: FrameInfo['gso'];
    let hash: RxFrameInfo['hash'];
    let cur: { slot: RxSlot; buf: GrantedPage } | undefined = first;
    const flags0 = first.slot.rsp.flags;
    let extras = (flags0 & NETRXF_extra_info) !== 0;
    for (let slots = 1; cur !== undefined; slots++) {
      // The slot object is rewritten by the next nextRx (front-codec.ts): its fields first.
      const { status, offset, flags } = cur.slot.rsp;
      if (status < 0 || offset + status > PAGE_SIZE || slots > this.ctx.maxRxSlots) error = true;
      else parts.push(cur.buf.bytes.subarray(offset, offset + status)); // copied once below, after validation
      while (extras) {
        const e = this.nextRx();
        if (e === undefined) return void c.rxErrors++; // missing extra: the packet is lost
        const x = e.slot.extra();
        const gsoType = x.kind === 'gso' ? gsoTypeOf(x.type) : undefined;
        if (x.kind === 'gso' && gsoType !== undefined && x.size > 0) gso = { type: gsoType, size: x.size };
        else if (x.kind === 'hash') hash = { type: x.type, value: x.value };
        else if (x.kind === 'unknown') error = true;
        extras = (x.flags & XEN_NETIF_EXTRA_FLAG_MORE) !== 0;
      }
      if ((flags & NETRXF_more_data) === 0) break;
      cur = this.nextRx();
      if (cur === undefined) error = true; // "Need more slots"
    }
    if (error) return void c.rxErrors++;
    const frame = concat(parts, this.slab);
    c.rxPackets++;
    c.rxBytes += frame.length;
    const info: RxFrameInfo = {
      csumBlank: (flags0 & NETRXF_csum_blank) !== 0,
      dataValidated: (flags0 & NETRXF_data_validated) !== 0,
      ...(gso ? { gso } : {}),
      ...(hash ? { hash } : {}),
      queue: this.index,
    };
    this.ctx.receive(frame, info);
  }

  /**
   * The common frame, one slot without extras: the checks of the general path (status and
   * offset + size within the page), one private copy, offload flags from a shared table.
   */
  private receiveSingle(r: RxSlot['rsp'], buf: number): void {
    const c = this.ctx.counters;
    if (r.status < 0 || r.offset + r.status > PAGE_SIZE) return void c.rxErrors++;
    const src = this.rxSpans.get(buf, r.offset, r.status);
    let frame: Uint8Array;
    if (!this.ctx.rxTransient()) {
      frame = this.slab.copy(src);
    } else if (this.rxQueue.inPlace) {
      // Linux's way (xennet_get_responses ends the grant before the page goes up the stack):
      // with the backend's access ended, nobody can change the frame, so it is read where it
      // lies, once; postRx grants the page again. A backend still copying into a buffer it
      // has answered for is broken: the frame is dropped, the buffer reposted as it is.
      if (!this.rxQueue.suspend(buf)) return void c.rxErrors++;
      frame = src;
    } else {
      // A platform that cannot suspend a grant: one private copy, into a buffer the receiver does not keep.
      frame = this.rxCopy.of(src, r.offset);
    }
    c.rxPackets++;
    c.rxBytes += frame.length;
    this.ctx.receive(frame, this.plainInfo.get((r.flags & NETRXF_csum_blank) !== 0, (r.flags & NETRXF_data_validated) !== 0));
  }

  /** Stop everything; the rings and pages go back through the pool (deferred if still mapped). */
  dispose(): void {
    if (this.dead && this.txBufs.length === 0) return;
    this.dead = true;
    this.txEvt.dispose();
    if (this.rxEvt !== this.txEvt) this.rxEvt.dispose();
    this.ctx.pool.release([this.txPage, this.rxPage, ...this.txBufs, ...this.rxBufs]);
    this.txBufs.length = 0;
    this.rxCopy.dispose();
  }

  /** The sticky error state: no more processing (the owner disposes later). */
  halt(): void {
    this.dead = true;
  }
}
