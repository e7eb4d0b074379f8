/**
 * BlkFront: the PV block frontend (guest side) and the block device API guest programs use.
 *
 * ```ts
 * const disk = new BlkFront(platform, client, '/local/domain/1/device/vbd/51712');
 * await disk.start();                 // handshake; resolves once Connected
 * await disk.write(0, data);          // sector (512-byte units), whole logical blocks
 * await disk.read(0, buf);
 * disk.submit('read', 0, buf, done, tag); // io_submit-style: done(tag, err) later; an error
 *                                     // returned = refused, done never runs for it
 * await disk.flush();                 // OKAY covers every write acknowledged before it
 * await disk.discard(0, 8);
 * disk.info;                          // sectors, sectorSize, readOnly, features
 * await disk.close();                 // unplug from the guest side
 * ```
 *
 * Handshake (blkif.h state diagram, Linux blkfront `talk_to_blkback`): the state machine is
 * xenbus's FrontendDevice; BlkFront is its FrontendInstance. On backend InitWait it reads the
 * limits, allocates `multi-queue-num-queues` rings of `ring-page-order`, grants them, binds
 * one event channel each and writes every key in one transaction (Initialised); on backend
 * Connected it reads the device properties and features (Connected). `start()` runs one
 * device standalone; `blkFrontendDriver` plugs BlkFront into a FrontendWatcher (the guest's
 * vbd bus).
 *
 * Nothing lost (reliability.md R20): every guest operation is split into chunks (one ring
 * request each) that stay in the frontend until answered. If the backend goes away (Closing,
 * Closed, InitWait again — a restarted backend takes us through Closing/Closed first), the
 * rings are torn down, unanswered chunks go back to the queue in issue order, and are
 * re-issued once a backend connects again (Linux `blkif_recover`). Duplicate delivery is
 * harmless: sector writes are idempotent. Only when the device is removed (the backend
 * directory disappears) or the backend is found hostile do pending operations fail.
 *
 * Buffers: a plain Uint8Array is always copied through pages the frontend owns and grants;
 * a `BlkBuffer` (`allocBuffer`) is granted in place when the backend is trusted and
 * persistent grants are off (zero copy), and bounced otherwise (blk-buffer.ts).
 *
 * Hostile backend (R5): bogus response ids, duplicates, wrong operations, an overflowed
 * rsp_prod, garbage in its keys: the device fails pending I/O with EIO, goes Closing, and
 * stays dead. Nothing throws into the event loop.
 */
import { XenbusStateInitialised, XenbusStateUnknown } from '../../abi/io/xenbus.js';
import { XenpvError, toDomId, type DomId } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import { FrontendDevice, type DisconnectReason, type FrontendContext, type FrontendDriver, type FrontendInstance } from '../../xenbus/frontend-device.js';
import { readStr, readUint } from '../../xenbus/keys.js';
import { errorPath, parseBackendPath, parseFrontendPath } from '../../xenbus/paths.js';
import { pumpWatch } from '../../xenbus/reactor.js';
import { deviceFatal, readState, stateValue } from '../../xenbus/state.js';
import type { XsClient, XsWatch } from '../../xenstore/client/index.js';
import { BLKIF_MAX_SEGMENTS_PER_REQUEST } from '../../abi/io/blkif.js';
import { FrontQueue, type Chunk, type QueueFeatures } from './front-queue.js';
import { negotiate, publishRings, readDevice } from './front-handshake.js';
import type { BlkFrontOptions, BlkFrontState } from './front-api.js';
import { BlkFrontIo } from './front-io.js';
import { Op } from './front-op.js';

/** The xenbus lifecycle of the device; the requests themselves are BlkFrontIo's (front-io.ts). */
export class BlkFront extends BlkFrontIo {
  private device: FrontendDevice | undefined;
  private ctx: FrontendContext | undefined;
  private ownWatch: XsWatch | undefined;
  private backPath = '';
  private backDomid: DomId = 0 as DomId;
  private negotiated: QueueFeatures | undefined;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private resizeListeners: ((sectors: number) => void)[] = [];
  /** Times the device reached Connected (1 + reconnects). */
  connects = 0;

  constructor(
    platform: Platform,
    private readonly client: XsClient,
    frontPath: string,
    options: BlkFrontOptions = {},
  ) {
    super(platform, frontPath, options);
  }

  // ---- connecting: the xenbus device ----

  /**
   * Standalone use (without a FrontendWatcher): check the toolstack's `backend`/`backend-id`,
   * run the xenbus state machine for this device, and resolve once Connected (reject if the
   * device fails first). The device is dropped when its directory is removed (unplug).
   */
  async start(): Promise<void> {
    const fe = parseFrontendPath(this.frontPath);
    if (fe === undefined) throw new XenpvError('EINVAL', `not a frontend path: ${this.frontPath}`);
    const backPath = await readStr(this.client, this.frontPath, 'backend', { maxLength: 256 });
    const backDomid = toDomId(await readUint(this.client, this.frontPath, 'backend-id', { max: 0xffff }));
    const be = parseBackendPath(backPath);
    if (be === undefined || backDomid === undefined || be.backDomid !== backDomid || be.frontDomid !== fe.frontDomid || be.devid !== fe.devid) {
      throw new XenpvError('ENODEV', `${this.frontPath}: backend '${backPath}' does not belong to this device`);
    }
    const ctx: FrontendContext = {
      client: this.client,
      selfDomid: fe.frontDomid,
      frontClass: fe.frontClass,
      devid: fe.devid,
      frontPath: this.frontPath,
      backPath,
      backDomid,
      errorPath: errorPath(this.frontPath, fe.frontDomid),
      log: this.log,
    };
    const ready = this.whenConnected();
    ready.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
    const instance = this.instanceFor(ctx);
    this.device = new FrontendDevice(ctx, { create: async () => instance });
    const prior = stateValue(await readState(this.client, this.frontPath)) ?? XenbusStateUnknown;
    // Unplug removes the directory: then nothing will ever answer what is pending.
    this.ownWatch = this.client.watch(`${this.frontPath}/state`, undefined, { capacity: 2 });
    pumpWatch(this.ownWatch, () => void this.checkRemoved());
    await this.ownWatch.ready;
    await this.device.start(prior);
    await ready;
  }

  private async checkRemoved(): Promise<void> {
    const own = await readState(this.client, this.frontPath).catch(() => undefined);
    if (own?.kind !== 'missing' || this.phase === 'gone') return;
    this.ownWatch?.dispose();
    await this.device?.destroy('removed');
  }

  /** Resolves the next time the device is Connected. */
  whenConnected(): Promise<void> {
    if (this.phase === 'connected') return Promise.resolve();
    if (this.phase === 'broken' || this.phase === 'gone') return Promise.reject(this.deadError());
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  get connected(): boolean {
    return this.phase === 'connected';
  }

  /** Where the device is: init, initialised, connected, closed (waiting for a backend), broken, gone. */
  get state(): BlkFrontState {
    return this.phase;
  }

  /** Called with the new size after an online resize. */
  onResize(listener: (sectors: number) => void): void {
    this.resizeListeners.push(listener);
  }

  // ---- xenbus: BlkFront is the FrontendInstance of a xenbus FrontendDevice ----

  /** The driver for a FrontendDevice (used by `start()`, or by a FrontendWatcher through `blkFrontendDriver`). */
  instanceFor(ctx: FrontendContext): FrontendInstance {
    this.ctx = ctx;
    this.backPath = ctx.backPath;
    this.backDomid = ctx.backDomid;
    return {
      initialise: () => this.initialise(),
      connect: () => this.connectDevice(),
      disconnect: (reason) => this.disconnect(reason),
      backendChanged: () => this.checkResize(),
      // The device is gone (removed, or the driver stops): nothing will answer any more.
      remove: () => this.disconnect('removed'),
    };
  }

  /** Backend InitWait: negotiate, set up the rings, publish them. */
  private async initialise(): Promise<typeof XenbusStateInitialised> {
    if (this.phase === 'broken' || this.phase === 'gone') throw this.deadError();
    const { features, nq } = await negotiate(this.client, this.backPath, this.frontPath, this.options);
    const queues: FrontQueue[] = [];
    try {
      for (let i = 0; i < nq; i++) {
        queues.push(new FrontQueue(this.platform, this.backDomid, i, features, this.reclaimer, {
          completed: (c, s) => this.completed(c, s),
          hostile: (why) => void this.fatal(why),
        }));
      }
      // Offer feature-persistent only when these queues will use it: a backend that saw our 1
      // maps every grant writable and keeps it (Linux's blkback), which read-only grants refuse.
      await publishRings(this.client, this.frontPath, queues, features, features.persistent);
    } catch (err) {
      this.requeue(queues.flatMap((q) => q.dispose()));
      throw err;
    }
    this.queues = queues;
    this.negotiated = features;
    this.perChunk = Math.max(BLKIF_MAX_SEGMENTS_PER_REQUEST, features.indirectSegments) * 8;
    this.fitQueued();
    this.phase = 'initialised';
    return XenbusStateInitialised;
  }

  /** Backend Connected: read the device; throwing (garbage properties) closes the device. */
  private async connectDevice(): Promise<void> {
    this.infoValue = await readDevice(this.client, this.backPath, this.negotiated!, this.queues.length);
    this.phase = 'connected';
    this.connects++;
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    this.pump();
  }

  private async checkResize(): Promise<void> {
    const sectors = await readUint(this.client, this.backPath, 'sectors').catch(() => undefined);
    const info = this.infoValue;
    if (sectors === undefined || info === undefined || sectors === info.sectors) return;
    this.infoValue = { ...info, sectors };
    for (const l of this.resizeListeners) l(sectors);
  }

  /**
   * The rings go. A backend that closed or restarted: unanswered chunks wait for the next
   * one (replay). An error (our refusal of the backend): fail everything and stop for good.
   * Removal or shutdown: fail everything.
   */
  private async disconnect(reason: DisconnectReason): Promise<void> {
    if (reason === 'backend-closed' && this.phase === 'connected') {
      // Linux blkfront lets a closing backend finish what it has (bounded here).
      this.phase = 'closed';
      await this.drainInFlight(this.options.closingDrainMs ?? 1000);
    }
    this.dropQueues();
    if (reason === 'error') return this.markBroken('the backend was refused');
    if (reason === 'removed' || reason === 'shutdown') {
      if (this.phase !== 'broken') this.phase = 'gone';
      this.failAll(this.deadError());
      return;
    }
    if (this.phase !== 'broken' && this.phase !== 'gone') this.phase = 'closed';
  }

  private async drainInFlight(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.queues.some((q) => q.inFlight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * Chunks waiting for replay were cut to the last backend's request size; one that offers
   * fewer indirect segments takes less in one request: cut them again, each piece answering
   * the same operation, in the same order.
   */
  private fitQueued(): void {
    const per = this.perChunk;
    if (!this.queued.some((c) => c.buf !== undefined && c.sectors > per)) return;
    const fitted: Chunk[] = [];
    for (const c of this.queued) {
      if (c.buf === undefined || c.sectors <= per || !(c.op instanceof Op)) {
        fitted.push(c);
        continue;
      }
      const pieces = Math.ceil(c.sectors / per);
      c.op.remaining += pieces - 1;
      for (let k = 0; k < pieces; k++) {
        const n = Math.min(per, c.sectors - k * per);
        // per is whole pages, so each piece starts on a page of the buffer, as issueData's do.
        fitted.push({ ...c, sector: c.sector + k * per, sectors: n, offset: c.offset + k * per * 512, seq: c.seq + k / pieces });
      }
    }
    this.queued = fitted;
  }

  /** The rings go (closed ports, grants to the reclaimer); what they had in flight waits for replay. */
  private dropQueues(): void {
    const queues = this.queues;
    this.queues = [];
    this.requeue(queues.flatMap((q) => q.dispose()));
  }

  private requeue(chunks: Chunk[]): void {
    if (chunks.length === 0) return;
    for (const c of chunks) c.replay = true;
    this.queued = [...chunks, ...this.queued].sort((a, b) => a.seq - b.seq);
  }

  /** Sticky failure (R5): everything pending fails, and the device stops following the backend. */
  private markBroken(why: string): void {
    if (this.phase === 'broken' || this.phase === 'gone') return;
    this.fatalReason ??= why;
    this.phase = 'broken';
    this.failAll(this.deadError());
    // Not from inside the step that may be calling us: destroy waits for it.
    setImmediate(() => void this.device?.destroy('error'));
  }

  /** A hostile backend (R5), seen on a ring: drop the rings, error node + Closing, fail all. */
  private async fatal(why: string): Promise<void> {
    if (this.phase === 'broken' || this.phase === 'gone') return;
    this.log(`${this.frontPath}: ${why}`);
    this.fatalReason = why;
    this.dropQueues();
    await deviceFatal(this.client, this.frontPath, this.ctx?.errorPath ?? errorPath(this.frontPath, this.platform.domid), why).catch(() => undefined);
    this.markBroken(why);
  }

  private failAll(err: Error): void {
    const chunks = this.queued;
    this.queued = [];
    const ops = new Set<Op>();
    for (const c of chunks) {
      const op = c.op as Op | undefined;
      c.op = undefined;
      if (op !== undefined) ops.add(op);
    }
    this.openOps -= ops.size;
    for (const op of ops) op.settle(err);
    for (const w of this.readyWaiters.splice(0)) w.reject(err);
  }

  // ---- teardown ----

  /**
   * Guest-side unplug (driver unload): let in-flight requests finish (bounded), release the
   * rings, Closed; then wait for the backend to unmap every page so all grants end.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    // New data requests are refused from here on: a caller that resubmits from each
    // completion (fio's engines) would otherwise keep the drain busy until its timeout.
    this.closing = true;
    if (this.phase === 'connected') await this.drainInFlight(timeoutMs);
    await this.device?.shutdown();
    await this.dispose(timeoutMs);
  }

  /**
   * Stop following the backend, drop the rings, fail what is pending, write Closed (so the
   * backend unmaps), and reclaim every grant (bounded wait).
   */
  async dispose(timeoutMs = 10_000): Promise<void> {
    this.ownWatch?.dispose();
    await this.device?.shutdown();
    this.dropQueues();
    if (this.phase !== 'broken') this.phase = 'gone';
    this.failAll(this.deadError());
    await this.reclaimer.settle(timeoutMs);
    this.reclaimer.dispose();
  }

  /** Grants the backend still maps after teardown (tests, block-list). */
  get unreclaimedGrants(): number {
    return this.reclaimer.pending;
  }
}

/**
 * A FrontendDriver for xenbus's FrontendWatcher (the guest kernel's vbd bus): one BlkFront
 * per device directory, handed to `onDevice` as it is created.
 */
export function blkFrontendDriver(platform: Platform, options: BlkFrontOptions, onDevice: (front: BlkFront) => void): FrontendDriver {
  return {
    create: async (ctx) => {
      const front = new BlkFront(platform, ctx.client, ctx.frontPath, options);
      onDevice(front);
      return front.instanceFor(ctx);
    },
  };
}