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
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_DISCARD_SECURE,
  BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
} from '../../abi/io/blkif.js';
import { encodeBlkifSegment, type BlkifRequest, type BlkifRequestOut, type BlkifResponse, type BlkifRwOp, type BlkifSegment } from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import type { DomId, EvtchnPort, GrantRef } from '../../base/index.js';
import type { EvtchnBinding, Platform } from '../../hv/platform.js';
import { FrontRing } from '../../ring/index.js';
import { BlkBuffer, type IoBuffer } from './blk-buffer.js';
import { GrantReclaimer, grantNewPage, PersistentPool, type GrantedPage } from './front-grants.js';
import { indirectPages } from './request.js';
import { blkifRingCodec } from './ring-codec.js';

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

interface Shadow {
  readonly chunk: Chunk;
  readonly operation: number;
  /** Data pages then indirect pages. */
  readonly pages: readonly GrantedPage[];
  readonly persistent: readonly boolean[];
}

/** In-flight requests from which completion events are moderated (wakeAfter). */
const MODERATE_FROM = 8;
/** The longest a response waits for the event moderation saved (a libuv timer's resolution). */
const MODERATION_MS = 1;
/** Responses taken in one wake-up that turn moderation back on (blkback publishes in fours). */
const MODERATE_BURST = 4;

export class FrontQueue {
  readonly ring: FrontRing<BlkifRequest, BlkifResponse>;
  readonly ringPages: GrantedPage[] = [];
  readonly evtchn: EvtchnBinding;
  private readonly shadow: (Shadow | undefined)[];
  private readonly freeIds: number[];
  private readonly pool: PersistentPool | undefined;
  private closed = false;
  private scheduled = false;
  /** The moderation's time bound (boundModeration). */
  private moderation: NodeJS.Timeout | undefined;
  /** Whether completion events are moderated now (off after the bound expired: moderationExpired). */
  private moderating = true;
  private publishPending = false;
  /** Ids are shadow slots: below this. */
  private readonly idLimit: bigint;

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
      this.ring = FrontRing.init(this.ringPages.map((p) => p.bytes), blkifRingCodec(features.abi), {
        onBroken: (b) => this.owner.hostile(`queue ${index}: ${b.reason} (rsp_prod ${b.prod})`),
      });
      this.evtchn = platform.events.allocUnbound(backend, () => this.kick());
    } catch (err) {
      for (const p of this.ringPages) reclaimer.release(p);
      throw err;
    }
    this.shadow = new Array<Shadow | undefined>(this.ring.size).fill(undefined);
    this.idLimit = BigInt(this.ring.size);
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

  get hasRoom(): boolean {
    return !this.closed && this.freeIds.length > 0 && this.ring.broken === undefined;
  }

  /** Put one chunk on the ring. The caller checked `hasRoom`. */
  submit(chunk: Chunk): void {
    const id = this.freeIds.pop()!;
    const taken: GrantedPage[] = [];
    const persistent: boolean[] = [];
    let built;
    try {
      built = this.build(chunk, id, taken, persistent);
    } catch {
      // Out of guest memory or grant refs: nothing went on the ring; fail this chunk locally.
      this.freeIds.push(id);
      this.releasePages({ chunk, operation: 0, pages: taken, persistent });
      this.owner.completed(chunk, LOCAL_ENOMEM);
      return;
    }
    this.shadow[id] = built.shadow;
    this.ring.putRequest(built.req);
    this.schedulePublish();
  }

  /**
   * Publish the requests put since the last push once the current burst of submissions is
   * over (a microtask: the guest's completions resubmit in the microtasks that follow a
   * drain), with one RING_PUSH_REQUESTS_AND_CHECK_NOTIFY and at most one notify for all.
   */
  private schedulePublish(): void {
    if (this.publishPending) return;
    this.publishPending = true;
    queueMicrotask(() => {
      this.publishPending = false;
      if (!this.closed && this.ring.pushRequests()) this.evtchn.notify();
    });
  }

  private build(chunk: Chunk, id: number, pages: GrantedPage[], persistent: boolean[]): { req: BlkifRequestOut; shadow: Shadow } {
    const rid = BigInt(id);
    if (chunk.kind === 'discard') return buildDiscard(chunk, rid);
    const operation = opOf(chunk.kind);
    const seg = this.segments(chunk, pages, persistent);
    const nseg = seg.length;
    if (nseg <= BLKIF_MAX_SEGMENTS_PER_REQUEST) {
      const req: BlkifRequestOut = { kind: 'rw', operation, nr_segments: nseg, handle: 0, id: rid, sector_number: BigInt(chunk.sector), seg };
      return { req, shadow: { chunk, operation, pages, persistent } };
    }
    const indirect = this.indirectPages(seg, persistent, pages);
    const req: BlkifRequestOut = {
      kind: 'indirect',
      operation: BLKIF_OP_INDIRECT,
      indirect_op: operation,
      nr_segments: nseg,
      id: rid,
      sector_number: BigInt(chunk.sector),
      handle: 0,
      indirect_grefs: indirect.map((p) => p.ref),
    };
    // The response names the indirect_op (Linux blkback does; Linux blkfront insists).
    return { req, shadow: { chunk, operation, pages, persistent } };
  }

  /**
   * One segment per 4 KiB of the chunk, each on a page the backend may use: the caller's own
   * (zero-copy), a persistent one or a fresh grant; a write's data is copied in here.
   */
  private segments(chunk: Chunk, pages: GrantedPage[], persistent: boolean[]): BlkifSegment[] {
    const nseg = Math.ceil(chunk.sectors / 8);
    const seg: BlkifSegment[] = [];
    const kept = this.keptBuffer(chunk);
    const inPlace = kept === undefined ? this.zeroCopy(chunk) : undefined;
    const read = chunk.kind === 'read';
    for (let i = 0; i < nseg; i++) {
      const index = (chunk.offset >>> 12) + i;
      let page: GrantedPage;
      if (kept !== undefined) page = kept.keptPage(this.backend, index);
      else if (inPlace !== undefined) page = this.borrowPage(inPlace, index, read);
      else page = this.dataPage(read, persistent);
      if (page.kept === true || inPlace !== undefined) persistent.push(false);
      pages.push(page);
      const sectors = Math.min(8, chunk.sectors - i * 8);
      if (!read && page.kept !== true && inPlace === undefined) chunk.buf!.copyOut(chunk.offset + i * 4096, sectors === 8 ? page.bytes : page.bytes.subarray(0, sectors * 512));
      seg.push({ gref: page.ref, first_sect: 0, last_sect: sectors - 1 });
    }
    return seg;
  }

  /** A persistent BlkBuffer whose own pages serve as persistent grants: feature-persistent with a trusted backend. */
  private keptBuffer(chunk: Chunk): BlkBuffer | undefined {
    if (!(chunk.buf instanceof BlkBuffer) || !chunk.buf.persistent || !this.features.trusted || this.pool === undefined) return undefined;
    return chunk.buf;
  }

  /** A page for data: from the persistent pool, else freshly granted (read-only for writes). */
  private dataPage(backendWrites: boolean, persistent: boolean[]): GrantedPage {
    const p = this.pool?.take();
    persistent.push(p !== undefined);
    return p ?? grantNewPage(this.platform, this.backend, !backendWrites);
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

  private indirectPages(seg: readonly BlkifSegment[], persistent: boolean[], pages: GrantedPage[]): GrantedPage[] {
    const out: GrantedPage[] = [];
    for (let i = 0; i < seg.length; i += BLKIF_SEGMENTS_PER_INDIRECT_PAGE) {
      const page = this.dataPage(false, persistent);
      pages.push(page);
      const view = new DataView(page.bytes.buffer, page.bytes.byteOffset, 4096);
      const part = seg.slice(i, i + BLKIF_SEGMENTS_PER_INDIRECT_PAGE);
      part.forEach((s, k) => encodeBlkifSegment(view, k * 8, s));
      out.push(page);
    }
    return out;
  }

  /** Event handler: drain responses right after the upcall (never inside it). */
  kick(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.drain();
    });
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
   * both sides a wake-up per few requests; half of those in flight lets the backend keep
   * serving the other half while this side resubmits in a burst (bench block, 4 KiB random
   * reads at QD32: a quarter woke this side ~25 % more often and was ~9 % slower, three
   * quarters let the backend run dry). Linux netfront moderates tx completions the same way;
   * NVMe calls it interrupt coalescing. A response that the next few do not follow waits at
   * most MODERATION_MS (boundModeration).
   */
  private wakeAfter(): number {
    const n = this.inFlight;
    return this.moderating && n >= MODERATE_FROM ? n >>> 1 : 1;
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

  private accept(rsp: BlkifResponse): boolean {
    const slot = rsp.id < this.idLimit ? Number(rsp.id) : -1;
    const s = slot >= 0 ? this.shadow[slot] : undefined;
    if (s === undefined) {
      this.owner.hostile(`queue ${this.index}: response for unknown or finished id ${rsp.id}`);
      return false;
    }
    if (rsp.operation !== s.operation) {
      this.owner.hostile(`queue ${this.index}: response op ${rsp.operation} for a request of op ${s.operation}`);
      return false;
    }
    this.shadow[slot] = undefined;
    this.freeIds.push(slot);
    const first = s.pages[0];
    if (s.chunk.kind === 'read' && rsp.status === 0 && first?.borrowed === undefined && first?.kept !== true) {
      const c = s.chunk;
      for (let i = 0, left = c.sectors * 512; left > 0; i++, left -= 4096) {
        const bytes = s.pages[i]!.bytes;
        c.buf!.copyIn(c.offset + i * 4096, left >= 4096 ? bytes : bytes.subarray(0, left));
      }
    }
    this.releasePages(s);
    this.owner.completed(s.chunk, rsp.status);
    return true;
  }

  private releasePages(s: Shadow): void {
    s.pages.forEach((p, i) => {
      if (p.kept === true) return;
      if (s.persistent[i] === true) this.pool!.put(p);
      else this.reclaimer.release(p);
    });
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
    for (let i = 0; i < this.shadow.length; i++) {
      const s = this.shadow[i];
      if (s === undefined) continue;
      unfinished.push(s.chunk);
      this.releasePages(s);
      this.shadow[i] = undefined;
    }
    this.evtchn.dispose();
    this.pool?.dispose(this.reclaimer);
    for (const p of this.ringPages) this.reclaimer.release(p);
    return unfinished.sort((a, b) => a.seq - b.seq);
  }
}

/** A discard carries no data pages: the request names only the range (and SECURE). */
function buildDiscard(chunk: Chunk, rid: bigint): { req: BlkifRequestOut; shadow: Shadow } {
  const req: BlkifRequestOut = {
    kind: 'discard',
    operation: BLKIF_OP_DISCARD,
    flag: chunk.secure === true ? BLKIF_DISCARD_SECURE : 0,
    handle: 0,
    id: rid,
    sector_number: BigInt(chunk.sector),
    nr_sectors: BigInt(chunk.sectors),
  };
  return { req, shadow: { chunk, operation: BLKIF_OP_DISCARD, pages: [], persistent: [] } };
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
