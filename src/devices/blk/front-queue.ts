/**
 * One blkfront queue: its ring pages (granted), event channel, shadow table and data pages.
 *
 * A request's id is its shadow slot (0..ring size-1), as Linux blkfront does. A response is
 * accepted only if (R5, Linux `blkif_interrupt`): its id names a slot in use, and its operation
 * is the one sent. Anything else — an unknown or duplicate id, a wrong operation, an
 * overflowed rsp_prod (FrontRing) — is a hostile backend: the queue reports it and stops; the
 * device fails pending I/O upward and never uses the connection again. Nothing throws.
 *
 * Data is copied into pages the frontend owns and grants (bounce buffers; with
 * `feature-persistent` from a pool granted once), except a trusted backend's BlkBuffer I/O
 * without persistent grants, which grants the caller's BlkBuffer pages in place (zero copy).
 */
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
} from '../../abi/io/blkif.js';
import { u64FromWords, type BlkifResponseWords, type BlkifRwOp } from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import { microtask, type DomId, type EvtchnPort, type GrantRef } from '../../base/index.js';
import type { EvtchnBinding, Platform } from '../../hv/platform.js';
import { FrontRing } from '../../ring/index.js';
import { BlkBuffer, type IoBuffer } from './blk-buffer.js';
import { GrantReclaimer, grantNewPage, PersistentPool, type GrantedPage } from './front-grants.js';
import { frontRingCodec, Slot, writeSegmentList } from './front-slot.js';
import { indirectPages } from './request.js';

/** One ring request's worth of a guest operation. */
export interface Chunk {
  readonly kind: 'read' | 'write' | 'flush' | 'barrier' | 'discard';
  readonly sector: number;
  /** Data sectors (0 for a flush); for a discard, the sectors to discard. */
  readonly sectors: number;
  /** The caller's buffer and where this chunk's bytes are in it (page-aligned). */
  readonly buf?: IoBuffer;
  readonly offset: number;
  readonly secure?: boolean;
  /** Issue order, for replay after reconnect. */
  readonly seq: number;
  /** The device's operation this chunk belongs to (BlkFront's bookkeeping; the queue never looks). */
  op?: unknown;
  /** Put back after its ring went (BlkFront.requeue): counted in `replayed` when it is issued again. */
  replay?: boolean;
}

export interface QueueFeatures {
  readonly abi: AbiName;
  readonly order: number;
  readonly persistent: boolean;
  /** Negotiated indirect segment limit; 0 = no indirect requests. */
  readonly indirectSegments: number;
  readonly trusted: boolean;
}

/** Status for a request that could not be built (no memory or grant refs left): never sent. */
export const LOCAL_ENOMEM = -1000;

export interface QueueOwner {
  completed(chunk: Chunk, status: number): void;
  /** The backend broke the protocol (R5): stop using the device. */
  hostile(why: string): void;
}

/** In-flight requests from which completion events are moderated (wakeAfter). */
const MODERATE_FROM = 8;
/** The longest a response waits for the event moderation saved (a libuv timer's resolution). */
const MODERATION_MS = 1;
/** Responses taken in one wake-up that turn moderation back on (blkback publishes in fours). */
const MODERATE_BURST = 4;
/**
 * Requests of one burst pushed together before the burst ends, so a backend that is awake
 * starts on them while the guest drains and resubmits the rest (the two threads overlap),
 * as blkback publishes its answers in fours (back-queue.ts PUBLISH_EVERY). bench block
 * randread QD32 (a drain resubmits ~16), alternating pairs in one process against pushing at
 * the burst's end only: IOPS higher in 5/5 (+6 %) and 6/8 (+3.6 %) pairs, a third run
 * inconclusive (2/6, three runs disturbed at ~270k); as builds (bqx), 5/6 pairs, +5.5 %, back
 * 1.94 -> 1.90 us/op, guest the same (1.27 -> 1.29).
 * Every 2 measured the same as every 4; every 8 lost in one run of 5 pairs. Only one-request
 * operations count (submit's `early`): with the chunks of 1 MiB reads pushed in fours too,
 * 1 MiB sequential reads lost 4/5 and 4/6 alternating pairs in one process (mean IOPS -15 %,
 * -12 %) against never pushing early and against pushing only one-request operations early
 * (blkback joins a 1 MiB read's adjacent chunks into one transfer when it finds them together);
 * one run as separate builds went the other way (1/5), in noise of 2x between runs.
 */
const PUBLISH_EVERY = 4;

export class FrontQueue {
  readonly ring: FrontRing<Slot, BlkifResponseWords>;
  readonly ringPages: GrantedPage[] = [];
  readonly evtchn: EvtchnBinding;
  /** The shadow table: slot i is request id i (front-slot.ts), in flight while it has a chunk. */
  private readonly slots: Slot[] = [];
  private readonly freeIds: number[];
  private readonly pool: PersistentPool | undefined;
  private closed = false;
  private scheduled = false;
  /** The moderation's time bound (boundModeration). */
  private moderation: NodeJS.Timeout | undefined;
  /** Whether completion events are moderated now (off after the bound expired: moderationExpired). */
  private moderating = true;
  private publishPending = false;
  /** One-request operations put on the ring since the last push. */
  private unpublished = 0;
  /** The microtasks of schedulePublish and kick, made once (not a closure per burst). */
  private readonly publishTask = (): void => this.publish();
  private readonly drainTask = (): void => {
    this.scheduled = false;
    this.drain();
  };

  constructor(
    private readonly platform: Platform,
    private readonly backend: DomId,
    readonly index: number,
    readonly features: QueueFeatures,
    private readonly reclaimer: GrantReclaimer,
    private readonly owner: QueueOwner,
  ) {
    try {
      for (let i = 0; i < 1 << features.order; i++) this.ringPages.push(grantNewPage(platform, backend, false));
      this.ring = FrontRing.init(this.ringPages.map((p) => p.bytes), frontRingCodec(features.abi), {
        onBroken: (b) => this.owner.hostile(`queue ${index}: ${b.reason} (rsp_prod ${b.prod})`),
      });
      this.evtchn = platform.events.allocUnbound(backend, () => this.kick());
    } catch (err) {
      for (const p of this.ringPages) reclaimer.release(p);
      throw err;
    }
    for (let i = 0; i < this.ring.size; i++) this.slots.push(new Slot(i));
    this.freeIds = Array.from({ length: this.ring.size }, (_, i) => this.ring.size - 1 - i);
    const poolMax = this.ring.size * Math.max(BLKIF_MAX_SEGMENTS_PER_REQUEST, features.indirectSegments + indirectPages(features.indirectSegments));
    this.pool = features.persistent ? new PersistentPool(platform, backend, poolMax, !features.trusted) : undefined;
  }

  get port(): EvtchnPort {
    return this.evtchn.port;
  }

  get ringRefs(): GrantRef[] {
    return this.ringPages.map((p) => p.ref);
  }

  get inFlight(): number {
    return this.ring.size - this.freeIds.length;
  }

  /** One line on where this queue stands (diagnostics: a stalled device says what it waits for). */
  describe(): string {
    const r = this.ring.snapshot();
    const flags = `${this.closed ? ' closed' : ''}${this.ring.broken !== undefined ? ' broken' : ''}${this.scheduled ? ' drain-scheduled' : ''}${this.publishPending ? ' publish-pending' : ''}`;
    return `queue ${this.index} port ${this.evtchn.port}: ${this.inFlight} in flight, moderating ${this.moderating}${flags}; ` +
      `private req ${r.reqProdPvt} pushed ${r.reqPushed} rsp_cons ${r.rspCons}; shared req_prod ${r.reqProd} req_event ${r.reqEvent} rsp_prod ${r.rspProd} rsp_event ${r.rspEvent}`;
  }

  get hasRoom(): boolean {
    return !this.closed && this.freeIds.length > 0 && this.ring.broken === undefined;
  }

  /**
   * Put one chunk on the ring. The caller checked `hasRoom`. `early`: the chunk is a whole
   * operation of its own (a 4 KiB I/O), counted for the push every PUBLISH_EVERY; the
   * chunks of a larger operation wait for the burst's end, so blkback finds them together
   * and joins them into one transfer.
   */
  submit(chunk: Chunk, early: boolean): void {
    const slot = this.slots[this.freeIds.pop()!]!;
    try {
      this.build(slot, chunk);
    } catch {
      // Out of guest memory or grant refs: nothing went on the ring; fail this chunk locally,
      // after this call (BlkFront.submit promises never to complete inside the submit).
      this.releasePages(slot);
      this.freeIds.push(slot.id);
      queueMicrotask(() => this.owner.completed(chunk, LOCAL_ENOMEM));
      return;
    }
    this.ring.putRequest(slot);
    if (early && ++this.unpublished >= PUBLISH_EVERY) this.push();
    this.schedulePublish();
  }

  /**
   * Publish the requests put since the last push once the current burst of submissions is
   * over (a microtask: the guest's completions resubmit in the drain, or in the microtasks
   * that follow it), with one RING_PUSH_REQUESTS_AND_CHECK_NOTIFY and at most one notify for
   * all; every PUBLISH_EVERY requests of a long burst are pushed at once (submit).
   */
  private schedulePublish(): void {
    if (this.publishPending) return;
    this.publishPending = true;
    microtask(this.publishTask);
  }

  private publish(): void {
    this.publishPending = false;
    this.push();
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: notify only when the backend asked to be woken. */
  private push(): void {
    this.unpublished = 0;
    if (!this.closed && this.ring.pushRequests()) this.evtchn.notify();
  }

  /** Fill `slot` for `chunk`: its pages (a write's data copied in) and, past 11 segments, the indirect pages. */
  private build(slot: Slot, chunk: Chunk): void {
    if (chunk.kind === 'discard') {
      // A discard carries no data pages: the request names only the range (and SECURE).
      slot.begin(chunk, BLKIF_OP_DISCARD);
      return;
    }
    // An indirect request's response names the indirect_op (Linux blkback does; Linux blkfront insists).
    slot.begin(chunk, opOf(chunk.kind));
    this.segments(slot, chunk);
    if (slot.indirect) this.indirectPages(slot);
  }

  /**
   * One segment per 4 KiB of the chunk, each on a page the backend may use: the caller's own
   * (zero-copy), a persistent one or a fresh grant; a write's data is copied in here.
   */
  private segments(slot: Slot, chunk: Chunk): void {
    const nseg = Math.ceil(chunk.sectors / 8);
    const kept = this.keptBuffer(chunk);
    // A persistent buffer's own pages, all at once (no copy, no pool: nothing else to do per page).
    if (kept !== undefined) return slot.addKept(kept, this.backend, chunk.offset >>> 12, nseg);
    const inPlace = this.zeroCopy(chunk);
    const read = chunk.kind === 'read';
    for (let i = 0; i < nseg; i++) {
      const index = (chunk.offset >>> 12) + i;
      if (inPlace !== undefined) slot.addPage(this.borrowPage(inPlace, index, read), false);
      else this.dataPage(slot, read);
      slot.segments++;
      if (read || inPlace !== undefined) continue;
      const page = slot.pages[i]!;
      const sectors = Math.min(8, chunk.sectors - i * 8);
      chunk.buf!.copyOut(chunk.offset + i * 4096, sectors === 8 ? page.bytes : page.bytes.subarray(0, sectors * 512));
    }
  }

  /** A persistent BlkBuffer whose own pages serve as persistent grants: feature-persistent with a trusted backend. */
  private keptBuffer(chunk: Chunk): BlkBuffer | undefined {
    if (!(chunk.buf instanceof BlkBuffer) || !chunk.buf.persistent || !this.features.trusted || this.pool === undefined) return undefined;
    return chunk.buf;
  }

  /** A page for `slot`: from the persistent pool, else freshly granted (read-only for writes). */
  private dataPage(slot: Slot, backendWrites: boolean): GrantedPage {
    const p = this.pool?.take();
    const page = p ?? grantNewPage(this.platform, this.backend, !backendWrites);
    slot.addPage(page, p !== undefined);
    return page;
  }

  /**
   * The BlkBuffer whose pages this chunk may grant in place: only for a trusted backend and
   * without persistent grants (those copy into the pool by design).
   */
  private zeroCopy(chunk: Chunk): BlkBuffer | undefined {
    if (!(chunk.buf instanceof BlkBuffer) || !this.features.trusted || this.pool !== undefined) return undefined;
    return chunk.buf;
  }

  /** Grant one page of the caller's buffer (writable only when the backend fills it). */
  private borrowPage(buf: BlkBuffer, index: number, backendWrites: boolean): GrantedPage {
    const frame = buf.frames[index]!;
    const ref = this.platform.grants.grantAccess(this.backend, frame, !backendWrites);
    return { frame, ref, bytes: buf.pages[index]!, readonly: !backendWrites, borrowed: buf.lend() };
  }

  /** The segment list of an indirect request, in pages after the data pages (the backend only reads them). */
  private indirectPages(slot: Slot): void {
    for (let first = 0; first < slot.segments; first += BLKIF_SEGMENTS_PER_INDIRECT_PAGE) {
      const page = this.dataPage(slot, false);
      writeSegmentList(page.bytes, slot, first, Math.min(slot.segments, first + BLKIF_SEGMENTS_PER_INDIRECT_PAGE));
    }
  }

  /** Event handler: drain responses right after the upcall (never inside it). */
  kick(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    microtask(this.drainTask);
  }

  private drain(): void {
    let got = 0;
    for (;;) {
      if (this.closed) return;
      const rsp = this.ring.nextResponse();
      if (rsp === undefined) {
        if (this.ring.broken !== undefined) return;
        if (got >= MODERATE_BURST) this.moderating = true;
        const ahead = this.wakeAfter();
        if (!this.ring.finalCheckForResponses(ahead)) {
          if (ahead > 1) this.boundModeration();
          return;
        }
        continue;
      }
      if (!this.accept(rsp)) return;
      got++;
    }
  }

  /**
   * Completion moderation: how many responses to sleep through (rsp_event = rsp_cons + this).
   * With many requests in flight, waking for every response a busy backend publishes costs
   * both sides a wake-up per few requests; a quarter of those in flight lets the backend keep
   * serving the other three quarters while this side wakes (35-100 µs on this machine kind)
   * and resubmits. Measured with xenpv's blkback answering in AIO batches of 8 (back-sync.ts
   * BATCH_RUNS), 4 KiB random reads at QD32, alternating pairs: a quarter 1.21× a half with
   * batches of 16 (8 of 8 pairs); an eighth with batches of 4 0.87×; three eighths with 12
   * the same. (With one pread per request a half had been best.) Linux netfront moderates tx
   * completions the same way; NVMe calls it interrupt coalescing. A response that the next
   * few do not follow waits at most MODERATION_MS (boundModeration). A caller that resubmits
   * from its completion callback (BlkFront.submit) has its new requests counted here, put on
   * the ring, published in fours and at the end of this drain (submit, schedulePublish).
   */
  private wakeAfter(): number {
    const n = this.inFlight;
    return this.moderating && n >= MODERATE_FROM ? n >>> 2 : 1;
  }

  /** (Re)start the moderation's time bound: when it expires, ask for an event on the next response. */
  private boundModeration(): void {
    if (this.moderation === undefined) {
      this.moderation = setTimeout(() => this.moderationExpired(), MODERATION_MS);
      // The guest's bound ports keep its thread alive; this timer must not on its own.
      this.moderation.unref();
    } else {
      this.moderation.refresh();
    }
  }

  /**
   * The bound expired before the event: responses come slower than it (a disk with real
   * latency, where waiting for others only delays each one). Stop moderating until a wake-up
   * finds a burst again (drain: MODERATE_BURST), and ask for the next response now.
   */
  private moderationExpired(): void {
    if (this.closed || this.ring.broken !== undefined) return;
    this.moderating = false;
    if (this.ring.finalCheckForResponses(1)) this.kick();
  }

  private accept(rsp: BlkifResponseWords): boolean {
    const s = rsp.idHigh === 0 && rsp.idLow < this.slots.length ? this.slots[rsp.idLow]! : undefined;
    const chunk = s?.chunk;
    if (s === undefined || chunk === undefined) {
      this.owner.hostile(`queue ${this.index}: response for unknown or finished id ${u64FromWords(rsp.idLow, rsp.idHigh)}`);
      return false;
    }
    if (rsp.operation !== s.operation) {
      this.owner.hostile(`queue ${this.index}: response op ${rsp.operation} for a request of op ${s.operation}`);
      return false;
    }
    const status = rsp.status;
    // A persistent buffer's own pages (keptData) hold the data already; pool pages are copied out.
    const first = s.keptData ? undefined : s.pages[0];
    if (chunk.kind === 'read' && status === 0 && s.segments > 0 && first !== undefined && first.borrowed === undefined && first.kept !== true) {
      for (let i = 0, left = chunk.sectors * 512; left > 0; i++, left -= 4096) {
        const bytes = s.pages[i]!.bytes;
        chunk.buf!.copyIn(chunk.offset + i * 4096, left >= 4096 ? bytes : bytes.subarray(0, left));
      }
    }
    this.releasePages(s);
    this.freeIds.push(s.id);
    this.owner.completed(chunk, status);
    return true;
  }

  /** Give back a slot's pages (to the pool, or ended through the reclaimer) and free the slot's references. */
  private releasePages(s: Slot): void {
    // A persistent buffer's kept data pages stay granted: only the indirect pages go back.
    for (let i = s.keptData ? s.segments : 0; i < s.pageCount; i++) {
      const p = s.pages[i]!;
      if (p.kept === true) continue;
      if (s.pooled[i] === true) this.pool!.put(p);
      else this.reclaimer.release(p);
    }
    s.clear();
  }

  /**
   * Stop: close the port, hand every granted page (ring, data, persistent) to the reclaimer.
   * Returns the chunks that were in flight, in issue order, for replay.
   */
  dispose(): Chunk[] {
    if (this.closed) return [];
    this.closed = true;
    clearTimeout(this.moderation);
    const unfinished: Chunk[] = [];
    for (const s of this.slots) {
      if (s.chunk === undefined) continue;
      unfinished.push(s.chunk);
      this.releasePages(s);
    }
    this.evtchn.dispose();
    this.pool?.dispose(this.reclaimer);
    for (const p of this.ringPages) this.reclaimer.release(p);
    return unfinished.sort((a, b) => a.seq - b.seq);
  }
}

function opOf(kind: Exclude<Chunk['kind'], 'discard'>): BlkifRwOp {
  switch (kind) {
    case 'read':
      return BLKIF_OP_READ;
    case 'write':
      return BLKIF_OP_WRITE;
    case 'flush':
      return BLKIF_OP_FLUSH_DISKCACHE;
    case 'barrier':
      return BLKIF_OP_WRITE_BARRIER;
  }
}
