/**
 * One blkback queue (a `queue-N` of multi-queue, or the only one): its ring, its event
 * channel, its grant mapper, and the loop that turns requests into storage calls.
 *
 * - Requests are copied once off the ring (BackRing), validated (request.ts), then run
 *   asynchronously: the ring keeps being served while storage works, up to `maxInFlight`
 *   requests; beyond that the queue stops consuming (back-pressure, R7) until one completes.
 * - Every consumed request gets exactly one response with its id (R19), whatever happens:
 *   a bad grant, a storage error, a validation failure.
 * - WRITE_BARRIER: "All writes issued prior to [the barrier] must be completed prior to the
 *   execution of the barrier request. All writes issued after the barrier request must not
 *   execute until after the completion of the barrier request." The queue stops consuming,
 *   drains what is in flight, flushes, writes the barrier's data, flushes again, answers,
 *   and only then consumes again (Linux blkback: drain, then PREFLUSH|FUA).
 * - FLUSH_DISKCACHE needs no drain: a write is answered only after storage resolved it, so
 *   every write the frontend saw acknowledged before issuing the flush is covered by
 *   `storage.flush()` (storage/types.ts contract).
 * - A frontend whose req_prod overflows the ring breaks the queue (R1): nothing more is
 *   consumed, the owner closes the device.
 * - Serving is budgeted: `BACK_LIMITS.batch` requests (or `batchSectors` moved on the
 *   synchronous path), then yield (R6).
 * - With a store that has a synchronous data path (`storage.syncIo`), READ/WRITE (direct or
 *   indirect) are served inside the serve pass itself (back-sync.ts): no promise per request,
 *   data straight between file and granted pages, adjacent requests in one syscall. Answers
 *   are published every `PUBLISH_EVERY` and at the end of the pass, before
 *   RING_FINAL_CHECK_FOR_REQUESTS, notifying only when RING_PUSH_RESPONSES_AND_CHECK_NOTIFY
 *   says the frontend waits (ours moderates that: front-queue.ts wakeAfter). Flush, barrier
 *   and discard keep the asynchronous path; a pending run is moved before any of them is
 *   dispatched, so issue order is kept.
 */
import { BLKIF_OP_READ, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import { u64FromWords, type BlkifResponseWords } from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import { errorCode, microtask, type DomId, type EvtchnPort, type GrantRef } from '../../base/index.js';
import type { EvtchnBinding, GrantCopyOp, GrantMapping, Platform } from '../../hv/platform.js';
import { BackRing } from '../../ring/index.js';
import { SegmentMapper, type MappedPages } from './back-grants.js';
import { IndirectSegments } from './back-indirect.js';
import { SyncRun, storageStatus, type RunEntry } from './back-sync.js';
import { BufferPool } from './buffer-pool.js';
import { countOp, type BlkCounters, type OpKind } from './counters.js';
import { BACK_LIMITS } from './protocol.js';
import { checkRwWords, planRequest, segmentSpan, type DataPlan, type Plan, type RequestContext } from './request.js';
import { blkifBackRingCodec, fullRequest, type BackRequest, type FastRwRequest } from './ring-codec.js';
import type { BlockStorage } from './storage/types.js';

export interface QueueSetup {
  readonly index: number;
  readonly frontDomid: DomId;
  readonly abi: AbiName;
  readonly ringRefs: readonly number[];
  readonly port: number;
  readonly persistent: boolean;
  /** Move data with GNTTABOP_copy instead of mapping (QEMU qdisk's data path); never persistent. */
  readonly copy: boolean;
}

/** What a queue needs from its device. */
export interface QueueHost {
  readonly platform: Platform;
  readonly storage: BlockStorage;
  readonly counters: BlkCounters;
  context(): RequestContext;
  /** The frontend broke the protocol on this queue: close the device. */
  broken(why: string): void;
  /** Storage answered EOPNOTSUPP: withdraw the feature (R19). */
  notSupported(op: 'flush' | 'barrier' | 'discard'): void;
  log(msg: string): void;
}

/**
 * Synchronous answers published together inside a pass (respondSync). Measured on the 2-core
 * bench machine with a moderating frontend (front-queue.ts wakeAfter): 4K random reads at
 * queue depth 32 went from ~0.2 to ~0.3 of native; publishing only at the end of a pass
 * left each side waiting for the other.
 */
const PUBLISH_EVERY = 4;

export class BackQueue {
  private readonly ringMapping: GrantMapping;
  private readonly ring: BackRing<BackRequest, BlkifResponseWords>;
  private readonly evtchn: EvtchnBinding;
  private readonly mapper: SegmentMapper;
  private inFlight = 0;
  /** Consumption paused for a barrier. */
  private barrier = false;
  private scheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** Mappings held by requests in flight, released on close if storage never answers. */
  private readonly held = new Set<() => void>();
  private pushPending = false;
  /** Responses of the current pass put on the ring but not yet published. */
  private unpublished = 0;
  /** The response being answered: putResponse encodes it at once, so one object serves every answer. */
  private readonly rsp: BlkifResponseWords = { idLow: 0, idHigh: 0, operation: 0, status: 0 };
  /** Indirect requests' segment lists, copied once and checked (both paths). */
  private readonly indirect: IndirectSegments;
  /**
   * One bounce buffer per request in flight: with a synchronous storage (a backend thread of
   * its own) a whole batch is in flight at once, and 8 per size made most 128 KiB requests
   * allocate (GC was the backend thread's top cost).
   */
  private readonly buffers = new BufferPool(BACK_LIMITS.maxInFlight);
  /** The synchronous data path's pending run; undefined when storage has none (or copy mode). */
  private readonly run: SyncRun | undefined;

  /** Map the ring and bind the port; throws (XenpvError) if the frontend's values are bad. */
  constructor(
    private readonly host: QueueHost,
    readonly setup: QueueSetup,
  ) {
    const { platform } = host;
    const io = setup.copy ? undefined : host.storage.syncIo;
    this.ringMapping = platform.grants.map(setup.frontDomid, setup.ringRefs as GrantRef[], true);
    try {
      // Requests as numbers only where serveFast takes them (the synchronous path).
      this.ring = BackRing.attach(this.ringMapping.pages, blkifBackRingCodec(setup.abi, io !== undefined), 0, {
        onBroken: (b) => this.host.broken(`queue ${setup.index}: ${b.reason} (prod ${b.prod})`),
      });
      this.evtchn = platform.events.bindInterdomain(setup.frontDomid, setup.port as EvtchnPort, () => this.kick());
    } catch (err) {
      this.ringMapping.dispose();
      throw err;
    }
    this.mapper = new SegmentMapper(platform.grants, setup.frontDomid, setup.persistent, BACK_LIMITS.maxPersistentGrants);
    this.indirect = new IndirectSegments(this.mapper);
    this.run =
      io === undefined
        ? undefined
        : new SyncRun(io, {
            done: (e, status, timeNs) => this.doneSync(e, status, timeNs),
            log: (msg) => this.host.log(`queue ${setup.index}: ${msg}`),
          });
    this.kick();
  }

  get ringSize(): number {
    return this.ring.size;
  }

  get persistentGrants(): number {
    return this.mapper.persistentCount;
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /**
   * Schedule a serve pass (event handler, completions): right after the current task, never
   * inside the event upcall itself. `yieldFirst` (a used-up batch budget) goes through the
   * event loop instead, so other devices and the store get their turn (R6).
   */
  kick(yieldFirst = false): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    if (yieldFirst) setImmediate(this.servePass);
    else microtask(this.servePass);
  }

  /** The scheduled serve pass (one function for every kick). */
  private readonly servePass = (): void => {
    this.scheduled = false;
    this.serve();
  };

  private serve(): void {
    let budget = BACK_LIMITS.batch;
    const ctx = this.host.context();
    this.run?.mark();
    while (!this.closed && !this.barrier && this.inFlight < BACK_LIMITS.maxInFlight) {
      if (budget-- === 0 || (this.run !== undefined && this.run.passSectors >= BACK_LIMITS.batchSectors)) {
        this.endPass();
        return this.kick(true);
      }
      const req = this.ring.nextRequest();
      if (req === undefined) {
        this.endPass();
        if (this.closed || this.ring.broken !== undefined || !this.ring.finalCheckForRequests()) return;
        continue;
      }
      if (req.kind === 'fast' && this.run !== undefined) {
        this.serveFast(req, this.run, ctx);
        continue;
      }
      const plan = planRequest(fullRequest(req), ctx);
      if (!this.serveSync(plan, ctx)) {
        this.run?.flush();
        this.dispatch(plan);
      }
    }
    this.endPass();
  }

  /** Move the pending run, then publish the pass's remaining responses. */
  private endPass(): void {
    if (this.closed) return;
    this.run?.flush();
    this.publish();
  }

  /**
   * The synchronous path's common request, a direct READ/WRITE as numbers (ring-codec.ts
   * FastRwRequest): validated by request.ts's rules, its grants mapped into a reused entry,
   * joined to the pending run, or answered ERROR at once. No object, BigInt or plan per request.
   */
  private serveFast(req: FastRwRequest, run: SyncRun, ctx: RequestContext): void {
    const sectors = checkRwWords(req, ctx);
    const write = req.operation !== BLKIF_OP_READ;
    if (typeof sectors === 'string') {
      this.host.log(`queue ${this.setup.index}: request ${u64FromWords(req.idLow, req.idHigh)} refused: ${sectors}`);
      return this.failSync(write, req.idLow, req.idHigh, req.operation);
    }
    const e = run.entry();
    try {
      // A READ writes into the frontend's pages; a WRITE only reads them.
      e.mapped = this.mapper.acquireRefs(req.grefs, req.nrSegments, !write, e.mapped);
    } catch (err) {
      this.host.log(`queue ${this.setup.index}: map failed: ${errorCode(err) ?? String(err)}`);
      return this.failSync(write, req.idLow, req.idHigh, req.operation);
    }
    e.idLow = req.idLow;
    e.idHigh = req.idHigh;
    e.operation = req.operation;
    e.write = write;
    e.sector = req.sectorHigh * 0x1_0000_0000 + req.sectorLow;
    e.sectors = sectors;
    run.add(e, req.nrSegments, req.firstSect, req.lastSect);
  }

  /**
   * The synchronous path: a READ/WRITE (direct, or indirect once its pages are copied and
   * checked) joins the pending run; a refused request is answered at once. False = not for
   * this path (no sync storage, flush, barrier, discard): dispatch it asynchronously.
   */
  private serveSync(plan: Plan, ctx: RequestContext): boolean {
    const run = this.run;
    if (run === undefined) return false;
    if (plan.kind === 'indirect') {
      this.serveIndirect(plan, run, ctx);
      return true;
    }
    if (plan.kind === 'reject') {
      this.refuse(plan);
      this.respondSync(idLow(plan.id), idHigh(plan.id), plan.operation, plan.status);
      return true;
    }
    if (plan.kind !== 'rw') return false;
    const data = plan.data;
    const mapped = this.mapData(data);
    if (mapped === undefined) {
      this.failSync(data.write, idLow(plan.id), idHigh(plan.id), plan.operation);
      return true;
    }
    const e = run.entry();
    e.mapped = mapped;
    e.idLow = idLow(plan.id);
    e.idHigh = idHigh(plan.id);
    e.operation = plan.operation;
    e.write = data.write;
    e.sector = data.sector;
    e.sectors = data.sectors;
    run.addPlan(e, data);
    return true;
  }

  /**
   * An indirect READ/WRITE on the synchronous path, as serveFast serves a direct one: its
   * segment list copied once and checked into reused arrays (back-indirect.ts), its data
   * grants mapped into a reused entry, joined to the pending run. No plan or segment objects.
   */
  private serveIndirect(plan: Extract<Plan, { kind: 'indirect' }>, run: SyncRun, ctx: RequestContext): void {
    const lo = idLow(plan.id);
    const hi = idHigh(plan.id);
    const sectors = this.indirect.check(plan, ctx);
    if (typeof sectors === 'string') {
      this.host.log(`queue ${this.setup.index}: request ${plan.id} refused: ${sectors}`);
      return this.failSync(plan.write, lo, hi, plan.operation);
    }
    const words = this.indirect.segments;
    const n = plan.nrSegments;
    const e = run.entry();
    try {
      // A READ writes into the frontend's pages; a WRITE only reads them.
      e.mapped = this.mapper.acquireRefs(words.grefs, n, !plan.write, e.mapped);
    } catch (err) {
      this.host.log(`queue ${this.setup.index}: map failed: ${errorCode(err) ?? String(err)}`);
      return this.failSync(plan.write, lo, hi, plan.operation);
    }
    e.idLow = lo;
    e.idHigh = hi;
    e.operation = plan.operation;
    e.write = plan.write;
    e.sector = Number(plan.sector);
    e.sectors = sectors;
    run.add(e, n, words.firstSect, words.lastSect);
  }

  /** A READ/WRITE of the synchronous path answered ERROR before any I/O (refused, or its grants would not map): counted failed, answered. */
  private failSync(write: boolean, idLow: number, idHigh: number, operation: number): void {
    countOp(this.host.counters, write ? 'write' : 'read', 0, 0, true);
    this.respondSync(idLow, idHigh, operation, BLKIF_RSP_ERROR);
  }

  private doneSync(e: RunEntry, status: number, timeNs: number): void {
    const bytes = e.sectors * 512;
    countOp(this.host.counters, e.write ? 'write' : 'read', status === BLKIF_RSP_OKAY ? bytes : 0, timeNs, status !== BLKIF_RSP_OKAY);
    if (!this.closed) this.respondSync(e.idLow, e.idHigh, e.operation, status);
  }

  /**
   * Answer a request served synchronously. Every `PUBLISH_EVERY` answers are published at
   * once, so a frontend that is awake takes them and resubmits while this pass goes on (the
   * two threads overlap instead of taking turns); the pass publishes the rest at its end.
   */
  private respondSync(idLow: number, idHigh: number, operation: number, status: number): void {
    this.putResponse(idLow, idHigh, operation, status);
    if (++this.unpublished >= PUBLISH_EVERY) this.publish();
  }

  /** Put one response on the ring (not yet published), in the reused `rsp`. */
  private putResponse(idLow: number, idHigh: number, operation: number, status: number): void {
    const rsp = this.rsp;
    rsp.idLow = idLow;
    rsp.idHigh = idHigh;
    rsp.operation = operation;
    rsp.status = status;
    this.ring.putResponse(rsp);
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: notify only when the frontend asked to be woken. */
  private publish(): void {
    this.unpublished = 0;
    if (this.ring.pushResponses()) this.evtchn.notify();
  }

  private refuse(plan: Extract<Plan, { kind: 'reject' }>): void {
    this.host.log(`queue ${this.setup.index}: request ${plan.id} refused: ${plan.why}`);
    countOp(this.host.counters, opKindOf(plan.operation), 0, 0, true);
  }

  private dispatch(plan: Plan): void {
    this.inFlight++;
    if (plan.kind === 'flush' && plan.barrier) this.barrier = true;
    void this.execute(plan).then(
      (status) => this.complete(plan, status),
      (err: unknown) => {
        this.host.log(`queue ${this.setup.index}: request failed unexpectedly: ${String(err)}`);
        this.complete(plan, BLKIF_RSP_ERROR);
      },
    );
  }

  private async execute(plan: Plan): Promise<number> {
    switch (plan.kind) {
      case 'reject':
        this.refuse(plan);
        return plan.status;
      case 'indirect':
        return this.execute(this.indirect.plan(plan, this.host.context()));
      case 'rw':
        return this.timed(plan.data.write ? 'write' : 'read', plan.data.sectors * 512, () => this.doData(plan.data));
      case 'discard':
        return this.timed('discard', plan.count * 512, () => this.doDiscard(plan));
      case 'flush':
        return this.timed('flush', (plan.data?.sectors ?? 0) * 512, () => this.doFlush(plan));
    }
  }

  private async timed(kind: OpKind, bytes: number, fn: () => Promise<number>): Promise<number> {
    const start = process.hrtime.bigint();
    const status = await fn();
    countOp(this.host.counters, kind, status === BLKIF_RSP_OKAY ? bytes : 0, Number(process.hrtime.bigint() - start), status !== BLKIF_RSP_OKAY);
    return status;
  }

  /** Map a data request's segments (logged, undefined when the frontend's grants fail). */
  private mapData(data: DataPlan): MappedPages | undefined {
    try {
      // A READ writes into the frontend's pages; a WRITE only reads them.
      return this.mapper.acquireSegments(data.segments, !data.write);
    } catch (err) {
      this.host.log(`queue ${this.setup.index}: map failed: ${errorCode(err) ?? String(err)}`);
      return undefined;
    }
  }

  /** Move the data of one request between its granted pages and storage. */
  private async doData(data: DataPlan): Promise<number> {
    // A FLUSH or barrier reaches its data only after awaiting storage, and a queue the frontend
    // broke meanwhile is disposed without draining: touch none of its pages then. Mapping
    // now would put grants in the disposed mapper's persistent cache, which nothing unmaps.
    if (this.closed) return BLKIF_RSP_ERROR;
    if (this.setup.copy) return this.doDataByCopy(data);
    const mapped = this.mapData(data);
    if (mapped === undefined) return BLKIF_RSP_ERROR;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.held.delete(release);
      mapped.release();
    };
    this.held.add(release);
    const buf = this.buffers.take(data.sectors * 512);
    try {
      if (data.write) {
        gather(mapped.pages, data, buf);
        release();
        return await this.storageCall(() => this.host.storage.write(data.sector, buf));
      }
      const status = await this.storageCall(() => this.host.storage.read(data.sector, buf));
      if (status === BLKIF_RSP_OKAY && !released && !this.closed) scatter(buf, data, mapped.pages);
      return released ? BLKIF_RSP_ERROR : status;
    } finally {
      release();
      this.buffers.give(buf);
    }
  }

  /**
   * The GNTTABOP_copy data path: one copy op per segment between the frontend's grant and a
   * private buffer. The hypervisor checks each grant (a READ into a read-only grant fails).
   */
  private async doDataByCopy(data: DataPlan): Promise<number> {
    const buf = this.buffers.take(data.sectors * 512);
    try {
      return await this.copyData(data, buf);
    } finally {
      this.buffers.give(buf);
    }
  }

  private async copyData(data: DataPlan, buf: Uint8Array): Promise<number> {
    const ops = (toGrant: boolean): GrantCopyOp[] => {
      let at = 0;
      return data.segments.map((s) => {
        const { offset, length } = segmentSpan(s);
        const grant = { kind: 'grant' as const, domid: this.setup.frontDomid, ref: s.gref as GrantRef, offset };
        const local = { kind: 'local' as const, buf, offset: at };
        at += length;
        return toGrant ? { source: local, dest: grant, len: length } : { source: grant, dest: local, len: length };
      });
    };
    const copied = (statuses: number[]): boolean => statuses.every((st) => st === 0);
    if (data.write) {
      if (!copied(this.host.platform.grants.copy(ops(false)))) return BLKIF_RSP_ERROR;
      return this.storageCall(() => this.host.storage.write(data.sector, buf));
    }
    const status = await this.storageCall(() => this.host.storage.read(data.sector, buf));
    if (status !== BLKIF_RSP_OKAY || this.closed) return status;
    return copied(this.host.platform.grants.copy(ops(true))) ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR;
  }

  private async doDiscard(plan: Extract<Plan, { kind: 'discard' }>): Promise<number> {
    const status = await this.storageCall(() => this.host.storage.discard(plan.sector, plan.count, { secure: plan.secure }));
    if (status === BLKIF_RSP_EOPNOTSUPP) this.host.notSupported('discard');
    return status;
  }

  private async doFlush(plan: Extract<Plan, { kind: 'flush' }>): Promise<number> {
    if (plan.barrier) await this.drainOthers();
    let status = await this.storageCall(() => this.host.storage.flush());
    if (status === BLKIF_RSP_OKAY && plan.data !== undefined) {
      status = await this.doData(plan.data);
      if (status === BLKIF_RSP_OKAY) status = await this.storageCall(() => this.host.storage.flush());
    }
    if (status === BLKIF_RSP_EOPNOTSUPP) this.host.notSupported(plan.barrier ? 'barrier' : 'flush');
    return status;
  }

  /** Wait until the barrier is the only request in flight. */
  private drainOthers(): Promise<void> {
    if (this.inFlight <= 1) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async storageCall(fn: () => Promise<void>): Promise<number> {
    try {
      await fn();
      return BLKIF_RSP_OKAY;
    } catch (err) {
      return storageStatus(err, (msg) => this.host.log(`queue ${this.setup.index}: ${msg}`));
    }
  }

  private complete(plan: Plan, status: number): void {
    this.inFlight--;
    if (plan.kind === 'flush' && plan.barrier) this.barrier = false;
    if (this.inFlight <= 1) for (const w of this.idleWaiters.splice(0)) w();
    if (this.closed) return;
    this.putResponse(idLow(plan.id), idHigh(plan.id), plan.operation, status);
    this.schedulePush();
    this.kick();
  }

  /** Publish responses once per microtask batch, notifying only when ring.h says so. */
  private schedulePush(): void {
    if (this.pushPending) return;
    this.pushPending = true;
    queueMicrotask(() => {
      this.pushPending = false;
      if (!this.closed) this.publish();
    });
  }

  /** Resolves once no request is in flight (graceful disconnect), or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.inFlight === 0;
  }

  /** Unmap everything and close the port. In-flight storage calls finish into nothing. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.run?.discard();
    for (const release of [...this.held]) release();
    for (const w of this.idleWaiters.splice(0)) w();
    this.mapper.dispose();
    this.evtchn.dispose();
    this.ringMapping.dispose();
  }
}

/** The low and high u32 halves of a request id (the slow path's plans carry it as a bigint). */
function idLow(id: bigint): number {
  return Number(id & 0xffff_ffffn);
}

function idHigh(id: bigint): number {
  return Number(id >> 32n);
}

function opKindOf(operation: number): OpKind {
  switch (operation) {
    case 0:
      return 'read';
    case 3:
    case 2:
      return 'flush';
    case 5:
      return 'discard';
    default:
      return 'write';
  }
}

/** Copy a WRITE's data out of the granted pages, segment by segment (one read of each byte). */
function gather(pages: readonly Uint8Array[], data: DataPlan, buf: Uint8Array): void {
  let at = 0;
  data.segments.forEach((s, i) => {
    const { offset, length } = segmentSpan(s);
    buf.set(pages[i]!.subarray(offset, offset + length), at);
    at += length;
  });
}

/** Copy a READ's data into the granted pages. */
function scatter(buf: Uint8Array, data: DataPlan, pages: readonly Uint8Array[]): void {
  let at = 0;
  data.segments.forEach((s, i) => {
    const { offset, length } = segmentSpan(s);
    pages[i]!.set(buf.subarray(at, at + length), offset);
    at += length;
  });
}
