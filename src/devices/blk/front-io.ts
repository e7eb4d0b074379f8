/**
 * The I/O half of BlkFront (front.ts): the block device API's requests, their checks, their
 * split into ring-request chunks, issue over the queues and completion. The xenbus lifecycle
 * that creates, replaces and tears down the queues (handshake, replay after a reconnect,
 * failure, close) is BlkFront's own, in front.ts; this class is only its base.
 */
import { BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import { BurstClock, XenpvError } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import { countOp, newBlkCounters, type BlkCounters, type OpKind } from './counters.js';
import { ArrayIoBuffer, BlkBuffer, type IoBuffer } from './blk-buffer.js';
import { GrantReclaimer } from './front-grants.js';
import { LOCAL_ENOMEM, type Chunk, type FrontQueue } from './front-queue.js';
import type { BlkFrontOptions, BlkFrontState, BlkInfo } from './front-api.js';
import { Op, type IoDone } from './front-op.js';
import { MAX_KEPT_BYTES, MAX_OPEN_OPS } from './protocol.js';

export abstract class BlkFrontIo {
  readonly counters: BlkCounters = newBlkCounters();
  /**
   * The clock of the device counters: the operations submitted (or completed) in one burst
   * share a reading (two clock reads per operation were ~10% of the guest's CPU per 4 KiB
   * I/O at QD32); the counters' time stays exact to within one burst.
   */
  private readonly clock = new BurstClock();
  protected readonly reclaimer: GrantReclaimer;
  /** Pages of the live persistent buffers (allocBuffer). */
  private keptPages = 0;
  protected phase: BlkFrontState = 'init';
  /** close() has begun: no new data requests. */
  protected closing = false;
  protected queues: FrontQueue[] = [];
  protected queued: Chunk[] = [];
  /** Operations accepted and not yet ended (MAX_OPEN_OPS). */
  protected openOps = 0;
  private seq = 0;
  protected infoValue: BlkInfo | undefined;
  /** Sectors one ring request carries: 11 pages, or the negotiated indirect segments. */
  protected perChunk = BLKIF_MAX_SEGMENTS_PER_REQUEST * 8;
  protected readonly log: (msg: string) => void;
  protected fatalReason: string | undefined;
  /** Chunks issued again after a reconnect (those failed instead, on removal or error, are not). */
  replayed = 0;
  /**
   * Answered data chunks and settled callback operations, reused by the next ones. A 4 KiB
   * I/O made one of each: half of what a fio guest allocated at QD32 (V8's sampling heap
   * profiler), and the guest scavenged every ~20 ms, each time leaving blkback's thread
   * without requests for a few hundred µs.
   */
  private readonly spareChunks: DataChunk[] = [];
  private readonly spareOps: Op[] = [];

  constructor(
    protected readonly platform: Platform,
    readonly frontPath: string,
    protected readonly options: BlkFrontOptions,
  ) {
    this.log = options.log ?? (() => undefined);
    this.reclaimer = new GrantReclaimer(platform);
  }

  // ---- the block device API ----

  /** Device properties; throws before the first connect. */
  get info(): BlkInfo {
    if (this.infoValue === undefined) throw new XenpvError('ENOTCONN', `${this.frontPath}: not connected yet`);
    return this.infoValue;
  }

  /** Chunks queued or in flight (the device's queue depth). */
  get pending(): number {
    return this.queued.length + this.queues.reduce((n, q) => n + q.inFlight, 0);
  }

  /** Where each queue stands, a line each, and how many chunks wait for room (diagnostics). */
  describeQueues(): string[] {
    return [`${this.queued.length} queued`, ...this.queues.map((q) => q.describe())];
  }

  /** Read `buf.byteLength` bytes from `sector` (512-byte units) into `buf`. */
  read(sector: number, buf: Uint8Array | BlkBuffer): Promise<void> {
    return this.dataOp('read', sector, buf);
  }

  /** Write `buf` at `sector`; resolves once the backend acknowledged it (see flush()). */
  write(sector: number, buf: Uint8Array | BlkBuffer): Promise<void> {
    return this.dataOp('write', sector, buf);
  }

  /**
   * Make every write acknowledged before this call durable. Without feature-flush-cache or
   * feature-barrier the backend has no volatile cache (acknowledged writes are already
   * durable), so this resolves at once.
   */
  flush(): Promise<void> {
    const f = this.infoValue?.features;
    if (f === undefined || (!f.flush && !f.barrier)) return this.alive();
    const kind = f.flush ? 'flush' : 'barrier';
    return this.submitOp('flush', 0, [{ kind, sector: 0, sectors: 0, offset: 0, seq: this.seq++ }]);
  }

  discard(sector: number, count: number, options: { secure?: boolean } = {}): Promise<void> {
    const f = this.infoValue?.features;
    if (f === undefined || !f.discard) return Promise.reject(new XenpvError('EOPNOTSUPP', 'discard not offered by the backend'));
    if (options.secure === true && !f.discardSecure) return Promise.reject(new XenpvError('EOPNOTSUPP', 'secure discard not offered'));
    const err = this.checkRange(sector, count * 512);
    if (err !== undefined) return Promise.reject(err);
    return this.submitOp('discard', count * 512, [{ kind: 'discard', sector, sectors: count, offset: 0, secure: options.secure, seq: this.seq++ }]);
  }

  private alive(): Promise<void> {
    return this.phase === 'broken' || this.phase === 'gone' ? Promise.reject(this.deadError()) : Promise.resolve();
  }

  /**
   * A buffer of guest pages for zero-copy I/O: with a trusted backend (and no persistent
   * grants) its pages are granted in place; otherwise it is copied like any Uint8Array.
   * `persistent`: with persistent grants and a trusted backend, its pages are themselves kept
   * granted (blk-buffer.ts), for a buffer reused for many requests (fio's); up to
   * `MAX_KEPT_BYTES` for the device, past which it is a plain buffer. Free it with
   * `buf.free()` when no I/O uses it.
   */
  allocBuffer(bytes: number, options: { persistent?: boolean } = {}): BlkBuffer {
    const pages = Math.ceil(bytes / 4096);
    if (options.persistent !== true || this.keptPages + pages > MAX_KEPT_BYTES / 4096) return new BlkBuffer(this.platform, bytes);
    const buf = new BlkBuffer(this.platform, bytes, { reclaimer: this.reclaimer, freed: () => (this.keptPages -= pages) });
    this.keptPages += pages;
    return buf;
  }

  /**
   * Start a read or write whose end calls `done(tag, err)` (err undefined on success) instead
   * of settling a promise: io_submit's model, for a caller that keeps many requests in flight
   * and reaps completions (fio). No promise or async resume per I/O. `done` runs exactly
   * once, from the completion drain, never from inside this call; an error returned here
   * means the request was refused before it started (bad range, read-only, device dead,
   * buffer busy) and `done` will not run for it.
   */
  submit(kind: 'read' | 'write', sector: number, data: Uint8Array | BlkBuffer, done: IoDone, tag: number): Error | undefined {
    const buf = this.dataBuffer(kind, sector, data);
    if (buf instanceof XenpvError) return buf;
    this.issueData(kind, sector, buf, this.openOp(kind, this.chunksFor(buf), buf.byteLength, done, tag));
    return undefined;
  }

  private dataOp(kind: 'read' | 'write', sector: number, data: Uint8Array | BlkBuffer): Promise<void> {
    const buf = this.dataBuffer(kind, sector, data);
    if (buf instanceof XenpvError) return Promise.reject(buf);
    const op = this.openOp(kind, this.chunksFor(buf), buf.byteLength);
    const promise = op.promise();
    this.issueData(kind, sector, buf, op);
    return promise;
  }

  /** The checks every data operation passes: its buffer as the queue sees it, or why it is refused. */
  private dataBuffer(kind: 'read' | 'write', sector: number, data: Uint8Array | BlkBuffer): IoBuffer | XenpvError {
    if (this.openOps >= MAX_OPEN_OPS) return this.tooManyOps();
    if (kind === 'write' && this.infoValue?.readOnly === true) return new XenpvError('EROFS', `${this.frontPath} is read-only`);
    if (data instanceof BlkBuffer) {
      if (data.held > 0 || data.isFreed) return new XenpvError('EBUSY', 'buffer freed, or a page of it is still mapped by the backend');
    }
    const buf = data instanceof BlkBuffer ? data : new ArrayIoBuffer(data);
    return this.checkRange(sector, buf.byteLength) ?? buf;
  }

  private chunksFor(buf: IoBuffer): number {
    const total = buf.byteLength / 512;
    return total <= this.perChunk ? 1 : Math.ceil(total / this.perChunk);
  }

  /** Split a checked data operation into ring-request chunks and issue them. */
  private issueData(kind: 'read' | 'write', sector: number, buf: IoBuffer, op: Op): void {
    const perChunk = this.perChunk;
    const total = buf.byteLength / 512;
    // One ring request (every 4 KiB I/O): no chunk list.
    if (total <= perChunk) return this.enqueue(this.dataChunk(kind, sector, total, buf, 0, op));
    for (let done = 0; done < total; done += perChunk) {
      const n = Math.min(perChunk, total - done);
      this.queued.push(this.dataChunk(kind, sector + done, n, buf, done * 512, op));
    }
    this.pump();
  }

  private checkRange(sector: number, bytes: number): XenpvError | undefined {
    if (this.phase === 'broken' || this.phase === 'gone') return this.deadError();
    if (this.closing) return new XenpvError('ESHUTDOWN', `${this.frontPath} is closing`);
    const info = this.infoValue;
    if (info === undefined) return new XenpvError('ENOTCONN', `${this.frontPath}: not connected yet`);
    const block = info.sectorSize;
    // Every sector starts a 512-byte block: the float modulo (a C call past 2^31) only for larger ones.
    const misaligned = bytes <= 0 || bytes % block !== 0 || (block !== 512 && (sector * 512) % block !== 0);
    if (!Number.isSafeInteger(sector) || sector < 0 || misaligned) {
      return new XenpvError('EINVAL', `I/O at sector ${sector} of ${bytes} bytes is not whole ${block}-byte blocks`, { sector, bytes });
    }
    if (sector + bytes / 512 > info.sectors) {
      return new XenpvError('ERANGE', `sectors ${sector}+${bytes / 512} past the end (${info.sectors})`, { sector, bytes });
    }
    return undefined;
  }

  private submitOp(kind: OpKind, bytes: number, chunks: Chunk[]): Promise<void> {
    if (this.openOps >= MAX_OPEN_OPS) return Promise.reject(this.tooManyOps());
    const op = this.openOp(kind, chunks.length, bytes);
    const promise = op.promise();
    for (const c of chunks) {
      c.op = op;
      this.queued.push(c);
    }
    this.pump();
    return promise;
  }

  /** Issue a one-chunk operation now when nothing waits before it and a queue has room; else queue it. */
  private enqueue(chunk: Chunk): void {
    if (this.queued.length === 0 && this.phase === 'connected') {
      const q = this.pickQueue();
      if (q !== undefined) return q.submit(chunk, true);
    }
    this.queued.push(chunk);
    this.pump();
  }

  /** Issue queued chunks, round-robin over queues with room, while connected. */
  protected pump(): void {
    if (this.phase !== 'connected') return;
    while (this.queued.length > 0) {
      const q = this.pickQueue();
      if (q === undefined) return;
      const chunk = this.queued.shift()!;
      if (chunk.replay === true) {
        chunk.replay = false;
        this.replayed++;
      }
      q.submit(chunk, false);
    }
  }

  /**
   * The first queue with room. A program runs on one vCPU, and Linux maps a CPU to one
   * hardware queue: requests go together on one ring (one push, one notify, one backend pass
   * for all of them) and spill to the next ring only when it is full.
   */
  private pickQueue(): FrontQueue | undefined {
    for (let i = 0; i < this.queues.length; i++) {
      const q = this.queues[i]!;
      if (q.hasRoom) return q;
    }
    return undefined;
  }

  protected completed(chunk: Chunk, status: number): void {
    const op = chunk.op as Op | undefined;
    chunk.op = undefined;
    if (op !== undefined) {
      if (status !== BLKIF_RSP_OKAY && op.status === BLKIF_RSP_OKAY) op.status = status;
      if (status === BLKIF_RSP_EOPNOTSUPP) this.withdrawLocally(chunk.kind);
      if (--op.remaining === 0) this.finishOp(op);
    }
    // Answered: no queue, slot or list holds it now (after finishOp, whose callback may have
    // submitted more: those took other chunks). Its op is cleared above; not its caller's buffer.
    if (chunk instanceof DataChunk && this.spareChunks.length < MAX_SPARE) {
      chunk.buf = undefined;
      this.spareChunks.push(chunk);
    }
    this.pump();
  }

  /** A chunk of a read or write: a recycled one when there is one. */
  private dataChunk(kind: 'read' | 'write', sector: number, sectors: number, buf: IoBuffer, offset: number, op: Op): DataChunk {
    return (this.spareChunks.pop() ?? new DataChunk()).set(kind, sector, sectors, buf, offset, this.seq++, op);
  }

  /** A new operation, counted open until finishOp or failAll ends it (MAX_OPEN_OPS); a callback one from the spares when there is one. */
  private openOp(kind: OpKind, chunks: number, bytes: number, done?: IoDone, tag = 0): Op {
    this.openOps++;
    const start = this.clock.now();
    const spare = done === undefined ? undefined : this.spareOps.pop();
    return spare === undefined ? new Op(kind, chunks, bytes, start, done, tag) : spare.reuse(kind, chunks, bytes, start, done!, tag);
  }

  private tooManyOps(): XenpvError {
    return new XenpvError('EAGAIN', `${this.frontPath}: ${MAX_OPEN_OPS} operations already in flight; wait for some to end`, { open: this.openOps });
  }

  private finishOp(op: Op): void {
    this.openOps--;
    const ok = op.status === BLKIF_RSP_OKAY;
    countOp(this.counters, op.kind, ok ? op.bytes : 0, Math.round((this.clock.now() - op.start) * 1e6), !ok);
    op.settle(ok ? undefined : opError(op));
    // Settled, and no chunk names it any more: a callback operation can serve the next submit.
    if (op.reusable && this.spareOps.length < MAX_SPARE) this.spareOps.push(op);
  }

  /** blkif.h: EOPNOTSUPP "may be returned at any time"; stop sending what was refused. */
  private withdrawLocally(kind: Chunk['kind']): void {
    const info = this.infoValue;
    if (info === undefined) return;
    const f = { ...info.features };
    if (kind === 'flush') f.flush = false;
    else if (kind === 'barrier') f.barrier = false;
    else if (kind === 'discard') f.discard = false;
    else return;
    this.infoValue = { ...info, features: f };
  }

  protected deadError(): XenpvError {
    return this.phase === 'broken'
      ? new XenpvError('EIO', `${this.frontPath}: backend misbehaved: ${this.fatalReason ?? ''}`)
      : new XenpvError('ENODEV', `${this.frontPath}: device removed`);
  }
}

/** Spare chunks and operations kept: a queue depth's worth and more (a 1 MiB I/O is a few chunks). */
const MAX_SPARE = 256;

/** A read or write chunk made by BlkFrontIo (dataChunk), reused once answered (completed). */
class DataChunk implements Chunk {
  kind: 'read' | 'write' = 'read';
  sector = 0;
  sectors = 0;
  buf: IoBuffer | undefined = undefined;
  offset = 0;
  seq = 0;
  op: unknown = undefined;
  replay: boolean | undefined = undefined;

  set(kind: 'read' | 'write', sector: number, sectors: number, buf: IoBuffer, offset: number, seq: number, op: Op): this {
    this.kind = kind;
    this.sector = sector;
    this.sectors = sectors;
    this.buf = buf;
    this.offset = offset;
    this.seq = seq;
    this.op = op;
    this.replay = undefined;
    return this;
  }
}

/** Why a failed operation failed, as the error its caller gets. */
function opError(op: Op): XenpvError {
  if (op.status === LOCAL_ENOMEM) return new XenpvError('ENOMEM', `${op.kind}: no guest memory or grant refs for the request`);
  if (op.status === BLKIF_RSP_EOPNOTSUPP) return new XenpvError('EOPNOTSUPP', `${op.kind}: the backend answered EOPNOTSUPP`);
  return new XenpvError('EIO', `${op.kind}: the backend answered ${op.status}`, { status: op.status });
}
