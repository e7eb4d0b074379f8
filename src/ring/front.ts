/**
 * The front end of a request/response ring (`io/ring.h` FRONT_RING_*): it produces requests
 * and consumes responses.
 *
 * Private state mirrors `struct __name##_front_ring`: `req_prod_pvt` and `rsp_cons` live here,
 * never re-read from the page (a peer can scribble on the shared copy). The peer's `rsp_prod`
 * is read once per batch and checked with RING_RESPONSE_PROD_OVERFLOW; a backend that claims
 * more responses than the ring holds is broken, and the ring stops (blkfront's "disabled for
 * further use", reliability.md R1).
 */
import { toRingMemory, type RingMemoryInput } from './memory.js';
import { RingSlots } from './slots.js';
import {
  initSharedRing,
  pushAndCheckNotify,
  SRING_REQ_EVENT,
  SRING_REQ_PROD,
  SRING_RSP_EVENT,
  SRING_RSP_PROD,
  type RingBroken,
  type RingCodec,
  type RingOptions,
} from './sring.js';

export class FrontRing<Req, Rsp> {
  private readonly slots: RingSlots<Req, Rsp>;
  private reqProdPvt: number;
  private rspCons: number;
  /** The req_prod we last published: `old` of the notify rule, kept privately. */
  private reqPushed: number;
  /** The peer's rsp_prod as last read and validated: the end of the current batch. */
  private rspProdSeen: number;
  private brokenBy: RingBroken | undefined;

  private constructor(
    mem: RingMemoryInput,
    codec: RingCodec<Req, Rsp>,
    start: number,
    private readonly options: RingOptions,
  ) {
    this.slots = new RingSlots(toRingMemory(mem), codec);
    this.reqProdPvt = this.rspCons = this.reqPushed = this.rspProdSeen = start >>> 0;
  }

  /** XEN_FRONT_RING_INIT: SHARED_RING_INIT on the page, then attach at index 0. */
  static init<Req, Rsp>(mem: RingMemoryInput, codec: RingCodec<Req, Rsp>, options: RingOptions = {}): FrontRing<Req, Rsp> {
    const ring = new FrontRing(mem, codec, 0, options);
    initSharedRing(ring.slots.mem);
    return ring;
  }

  /** FRONT_RING_ATTACH: take over a live ring whose indices all stand at `start` (resume). */
  static attach<Req, Rsp>(
    mem: RingMemoryInput,
    codec: RingCodec<Req, Rsp>,
    start: number,
    options: RingOptions = {},
  ): FrontRing<Req, Rsp> {
    return new FrontRing(mem, codec, start, options);
  }

  /** RING_SIZE. */
  get size(): number {
    return this.slots.size;
  }

  get broken(): RingBroken | undefined {
    return this.brokenBy;
  }

  /** RING_FREE_REQUESTS: slots we may still fill before responses come back. */
  freeRequests(): number {
    return this.slots.size - ((this.reqProdPvt - this.rspCons) >>> 0);
  }

  /** RING_FULL. */
  isFull(): boolean {
    return this.freeRequests() === 0;
  }

  /** Requests put but not yet answered (pushed or not). */
  outstanding(): number {
    return (this.reqProdPvt - this.rspCons) >>> 0;
  }

  /**
   * Where the ring stands, private and shared indices (diagnostics: a stalled ring says which
   * side is waiting for which). The shared ones are the peer's word and only reported.
   */
  snapshot(): { reqProdPvt: number; reqPushed: number; rspCons: number; reqProd: number; reqEvent: number; rspProd: number; rspEvent: number } {
    const m = this.slots.mem;
    return {
      reqProdPvt: this.reqProdPvt,
      reqPushed: this.reqPushed,
      rspCons: this.rspCons,
      reqProd: m.load32(SRING_REQ_PROD),
      reqEvent: m.load32(SRING_REQ_EVENT),
      rspProd: m.load32(SRING_RSP_PROD),
      rspEvent: m.load32(SRING_RSP_EVENT),
    };
  }

  /** Encode `req` into the next private slot; false (nothing written) when full or broken. */
  putRequest(req: Req): boolean {
    if (this.brokenBy !== undefined || this.isFull()) return false;
    this.slots.writeRequest(this.reqProdPvt, req);
    this.reqProdPvt = (this.reqProdPvt + 1) >>> 0;
    return true;
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish req_prod; true when the back must be notified. */
  pushRequests(): boolean {
    if (this.brokenBy !== undefined || this.reqProdPvt === this.reqPushed) return false;
    const oldProd = this.reqPushed;
    this.reqPushed = this.reqProdPvt;
    return pushAndCheckNotify(this.slots.mem, SRING_REQ_PROD, SRING_REQ_EVENT, oldProd, this.reqPushed);
  }

  /** RING_HAS_UNCONSUMED_RESPONSES, reading rsp_prod once and validating it. */
  unconsumedResponses(): number {
    if (!this.refresh()) return 0;
    return (this.rspProdSeen - this.rspCons) >>> 0;
  }

  /** The next response, decoded from a private copy; undefined when none (or broken). */
  nextResponse(): Rsp | undefined {
    if (this.brokenBy !== undefined) return undefined;
    if (this.rspCons === this.rspProdSeen) {
      if (!this.refresh() || this.rspCons === this.rspProdSeen) return undefined;
    }
    const rsp = this.slots.readResponse(this.rspCons);
    this.rspCons = (this.rspCons + 1) >>> 0;
    return rsp;
  }

  /**
   * RING_FINAL_CHECK_FOR_RESPONSES: before sleeping, ask for a notification on the very next
   * response (`rsp_event = rsp_cons + 1`), then look again so a response that raced the
   * store is not slept through. True means: do not sleep, there is work.
   *
   * `ahead` > 1 moderates: the notification comes only after that many more responses (a
   * consumer that just frees buffers, like Linux netfront's tx ring once set `rsp_event`
   * half-way to the outstanding requests). The caller keeps `ahead` ≤ outstanding requests,
   * or it may sleep through the last of them.
   */
  finalCheckForResponses(ahead = 1): boolean {
    if (this.unconsumedResponses() > 0) return true;
    if (this.brokenBy !== undefined) return false;
    this.slots.mem.store32(SRING_RSP_EVENT, (this.rspCons + Math.max(1, ahead)) >>> 0);
    return this.unconsumedResponses() > 0;
  }

  /** Read and validate the peer's rsp_prod; false when the ring is (or just became) broken. */
  private refresh(): boolean {
    if (this.brokenBy !== undefined) return false;
    const prod = this.slots.mem.load32(SRING_RSP_PROD);
    // RING_RESPONSE_PROD_OVERFLOW: "Ill-behaved backend determination: Can there be this
    // many responses?" Stricter than ring.h, whose bound is the ring size: there can be no
    // more responses than requests we published (each request gets exactly one), and the
    // producer never moves back behind a value we already read.
    const ahead = (prod - this.rspCons) >>> 0;
    if (ahead > ((this.reqPushed - this.rspCons) >>> 0) || ahead < ((this.rspProdSeen - this.rspCons) >>> 0)) {
      this.markBroken({ reason: 'response-prod-overflow', prod, against: this.rspCons, size: this.slots.size });
      return false;
    }
    this.rspProdSeen = prod;
    return true;
  }

  private markBroken(broken: RingBroken): void {
    this.brokenBy = broken;
    this.options.onBroken?.(broken);
  }
}

