/**
 * The back end of a request/response ring (`io/ring.h` BACK_RING_*): it consumes requests
 * and produces responses. It only attaches: the front initialised the page (SHARED_RING_INIT),
 * and requests may already be waiting on it.
 *
 * The peer's `req_prod` is read once per batch and checked with RING_REQUEST_PROD_OVERFLOW; a
 * frontend that claims more requests than the ring holds is broken, and the ring stops
 * consuming (blkback: "Frontend provided bogus ring requests ... Halting ring processing").
 */
import { BugError } from '../base/index.js';
import { toRingMemory, type RingMemoryInput } from './memory.js';
import { RingSlots } from './slots.js';
import {
  pushAndCheckNotify,
  SRING_REQ_EVENT,
  SRING_REQ_PROD,
  SRING_RSP_EVENT,
  SRING_RSP_PROD,
  type RingBroken,
  type RingCodec,
  type RingOptions,
} from './sring.js';

export class BackRing<Req, Rsp> {
  private readonly slots: RingSlots<Req, Rsp>;
  private reqCons: number;
  private rspProdPvt: number;
  /** The rsp_prod we last published: `old` of the notify rule. */
  private rspPushed: number;
  /** The peer's req_prod as last read and validated. */
  private reqProdSeen: number;
  private brokenBy: RingBroken | undefined;

  private constructor(
    mem: RingMemoryInput,
    codec: RingCodec<Req, Rsp>,
    start: number,
    private readonly options: RingOptions,
  ) {
    this.slots = new RingSlots(toRingMemory(mem), codec);
    this.reqCons = this.rspProdPvt = this.rspPushed = this.reqProdSeen = start >>> 0;
  }

  /**
   * BACK_RING_ATTACH at `start` (BACK_RING_INIT is `start = 0`): the shared page is left
   * exactly as the front wrote it.
   */
  static attach<Req, Rsp>(
    mem: RingMemoryInput,
    codec: RingCodec<Req, Rsp>,
    start = 0,
    options: RingOptions = {},
  ): BackRing<Req, Rsp> {
    return new BackRing(mem, codec, start, options);
  }

  get size(): number {
    return this.slots.size;
  }

  get broken(): RingBroken | undefined {
    return this.brokenBy;
  }

  /** Requests consumed but not yet answered. */
  pendingResponses(): number {
    return (this.reqCons - this.rspProdPvt) >>> 0;
  }

  /**
   * XEN_RING_NR_UNCONSUMED_REQUESTS: requests waiting, bounded by the response slots left
   * (a request we take must have a slot for its answer).
   */
  unconsumedRequests(): number {
    if (!this.refresh()) return 0;
    const req = (this.reqProdSeen - this.reqCons) >>> 0;
    const rsp = this.slots.size - this.pendingResponses();
    return req < rsp ? req : rsp;
  }

  /** The next request, decoded from a private copy; undefined when none, no slot, or broken. */
  nextRequest(): Req | undefined {
    if (this.brokenBy !== undefined) return undefined;
    // RING_REQUEST_CONS_OVERFLOW: taking another request would leave it no response slot.
    if (this.pendingResponses() >= this.slots.size) return undefined;
    if (this.reqCons === this.reqProdSeen) {
      if (!this.refresh() || this.reqCons === this.reqProdSeen) return undefined;
    }
    const req = this.slots.readRequest(this.reqCons);
    this.reqCons = (this.reqCons + 1) >>> 0;
    return req;
  }

  /** Encode a response into the next private slot. Answering more than was taken is a bug. */
  putResponse(rsp: Rsp): boolean {
    if (this.brokenBy !== undefined) return false;
    if (this.pendingResponses() === 0) {
      throw new BugError('ring: a response with no request consumed to answer');
    }
    this.slots.writeResponse(this.rspProdPvt, rsp);
    this.rspProdPvt = (this.rspProdPvt + 1) >>> 0;
    return true;
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publish rsp_prod; true when the front must be notified. */
  pushResponses(): boolean {
    if (this.brokenBy !== undefined || this.rspProdPvt === this.rspPushed) return false;
    const oldProd = this.rspPushed;
    this.rspPushed = this.rspProdPvt;
    return pushAndCheckNotify(this.slots.mem, SRING_RSP_PROD, SRING_RSP_EVENT, oldProd, this.rspPushed);
  }

  /**
   * RING_FINAL_CHECK_FOR_REQUESTS: `req_event = req_cons + 1`, then look again. True means
   * there is work: do not sleep.
   */
  finalCheckForRequests(): boolean {
    if (this.unconsumedRequests() > 0) return true;
    if (this.brokenBy !== undefined) return false;
    this.slots.mem.store32(SRING_REQ_EVENT, (this.reqCons + 1) >>> 0);
    return this.unconsumedRequests() > 0;
  }

  private refresh(): boolean {
    if (this.brokenBy !== undefined) return false;
    const prod = this.slots.mem.load32(SRING_REQ_PROD);
    // RING_REQUEST_PROD_OVERFLOW: "Ill-behaved frontend determination: Can there be this
    // many requests?" Stricter than ring.h, a req_prod behind a value we already read is
    // also refused: the front's producer never moves backwards.
    const ahead = (prod - this.rspProdPvt) >>> 0;
    if (ahead > this.slots.size || ahead < ((this.reqProdSeen - this.rspProdPvt) >>> 0)) {
      this.markBroken({ reason: 'request-prod-overflow', prod, against: this.rspProdPvt, size: this.slots.size });
      return false;
    }
    this.reqProdSeen = prod;
    return true;
  }

  private markBroken(broken: RingBroken): void {
    this.brokenBy = broken;
    this.options.onBroken?.(broken);
  }
}
