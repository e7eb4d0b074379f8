/**
 * BlkBack: the PV block backend (dom0), one per disk. The xenbus state machine is
 * `xenbus/backend-device.ts` (Linux blkback's frontend_changed); this file is the blkif part:
 *
 * - probe (Linux `xen_blkbk_probe`): publish `feature-max-indirect-segments`,
 *   `multi-queue-max-queues`, `max-ring-page-order` (+ deprecated `max-ring-pages`) and
 *   `feature-persistent`; the machine then goes InitWait.
 * - connect (Linux `connect_ring` + `connect`): read the frontend's `multi-queue-num-queues`,
 *   `ring-page-order`, `protocol`, `feature-persistent`, per queue `ring-ref`/`ring-ref%u` and
 *   `event-channel` (top level with one queue, under `queue-N/` with several), strictly
 *   (R10: garbage → EPROTO → error node + Closing); map the rings, bind the ports, then
 *   publish `feature-flush-cache`, `feature-barrier`, `feature-discard` (+ `discard-*`),
 *   `sectors`, `info`, `sector-size`, `physical-sector-size` in one transaction.
 * - disconnect: drain in-flight I/O (bounded), then unmap everything and close the ports.
 *
 * Durability (R18): flush and barrier are advertised exactly when the storage has a volatile
 * cache (`capabilities.flush`); without one every acknowledged write is already durable.
 * When storage answers EOPNOTSUPP to an optional operation the feature node is withdrawn
 * (written 0) as Linux blkback does (R19).
 *
 * The storage belongs to the caller: BlkBack never closes it.
 */
import { VDISK_READONLY } from '../../abi/io/blkif.js';
import { abiFromProtocol } from '../../abi/io/protocols.js';
import { XenbusStateConnected } from '../../abi/io/xenbus.js';
import type { AbiName } from '../../abi/layout.js';
import { XenpvError, type DomId } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import { BackendDevice, type BackendContext, type BackendDriver, type BackendInstance } from '../../xenbus/backend-device.js';
import { readBool, readOptional, readStr, readUint, removeKeys, withdrawFeature, writeKeys } from '../../xenbus/keys.js';
import { errorPath, frontendPath, parseBackendPath } from '../../xenbus/paths.js';
import { deviceFatal } from '../../xenbus/state.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { BackQueue, type QueueHost, type QueueSetup } from './back-queue.js';
import { newBlkCounters, type BlkCounters } from './counters.js';
import { BACK_LIMITS, MAX_QUEUES_CEILING, MAX_RING_PAGE_ORDER, MAX_INDIRECT_SEGMENTS_CEILING, queueDir, ringRefKeys } from './protocol.js';
import type { RequestContext } from './request.js';
import type { BlockStorage } from './storage/types.js';

export interface BlkBackOptions {
  /** `multi-queue-max-queues`; default BACK_LIMITS.maxQueues. */
  readonly maxQueues?: number;
  /** `max-ring-page-order`; default 4 (16 pages). */
  readonly maxRingPageOrder?: number;
  /** `feature-max-indirect-segments`; 0 = do not offer INDIRECT. Default 256. */
  readonly maxIndirectSegments?: number;
  /** Offer `feature-persistent`; default true (forced off with dataPath 'copy'). */
  readonly persistent?: boolean;
  /**
   * 'map' (default): grant-map each request's pages (Linux blkback), persistently when
   * negotiated. 'copy': GNTTABOP_copy per segment (QEMU qdisk); no persistent grants.
   */
  readonly dataPath?: 'map' | 'copy';
  /** How long disconnect waits for in-flight storage I/O; default 10 s. */
  readonly drainTimeoutMs?: number;
  /**
   * Where a queue is served: a ServedQueue made elsewhere (a dom0 thread of its own: Linux runs
   * one `xen_blkif_schedule` kthread per ring), or undefined to serve it in this thread (the
   * default for every queue). Rejects with XenpvError, as BackQueue's constructor throws, when
   * the frontend's ring or port cannot be used.
   */
  readonly queueFactory?: (host: QueueHost, setup: QueueSetup) => Promise<ServedQueue | undefined>;
  readonly log?: (msg: string) => void;
}

/** What BlkBack needs of a queue, wherever it is served (BackQueue is one). */
export interface ServedQueue {
  readonly persistentGrants: number;
  readonly requestsInFlight: number;
  /** Resolves once no request is in flight, or false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Unmap everything and close the port; nothing of the queue is mapped or bound afterwards. */
  dispose(): void;
}

/** What `block-list` shows for a backend. */
export interface BlkBackInfo {
  readonly backPath: string;
  readonly frontDomid: number;
  readonly devid: number;
  readonly connected: boolean;
  readonly sectors: number;
  readonly sectorSize: number;
  readonly readOnly: boolean;
  readonly storage: string;
  readonly queues: number;
  readonly ringPages: number;
  readonly protocol: AbiName | undefined;
  readonly persistent: boolean;
  readonly persistentGrants: number;
  readonly inFlight: number;
  readonly counters: BlkCounters;
}

interface Negotiated {
  readonly abi: AbiName;
  readonly order: number;
  readonly persistent: boolean;
}

export class BlkBack {
  readonly counters: BlkCounters = newBlkCounters();
  private device: BackendDevice | undefined;
  private readonly ctx: BackendContext;
  private readonly drainMs: number;
  private readonly frontDomid: DomId;
  private readonly backDomid: DomId;
  private readonly devid: number;
  private queues: ServedQueue[] = [];
  private readonly queueFactory: BlkBackOptions['queueFactory'];
  private negotiated: Negotiated | undefined;
  private readonly limits: { maxQueues: number; maxOrder: number; maxIndirect: number; persistent: boolean; copy: boolean };
  private readOnly: boolean;
  private discardOn = false;
  private killed = false;
  private readonly log: (msg: string) => void;

  constructor(
    private readonly platform: Platform,
    private readonly client: XsClient,
    readonly storage: BlockStorage,
    readonly backPath: string,
    options: BlkBackOptions = {},
  ) {
    const parsed = parseBackendPath(backPath);
    if (parsed === undefined) throw new XenpvError('EINVAL', `not a backend path: ${backPath}`, { backPath });
    this.frontDomid = parsed.frontDomid;
    this.backDomid = parsed.backDomid;
    this.devid = parsed.devid;
    this.log = options.log ?? (() => undefined);
    this.queueFactory = options.queueFactory;
    this.limits = {
      maxQueues: clamp(options.maxQueues ?? BACK_LIMITS.maxQueues, 1, MAX_QUEUES_CEILING),
      maxOrder: clamp(options.maxRingPageOrder ?? BACK_LIMITS.maxRingPageOrder, 0, MAX_RING_PAGE_ORDER),
      maxIndirect: clamp(options.maxIndirectSegments ?? BACK_LIMITS.maxIndirectSegments, 0, MAX_INDIRECT_SEGMENTS_CEILING),
      persistent: (options.persistent ?? true) && options.dataPath !== 'copy',
      copy: options.dataPath === 'copy',
    };
    this.readOnly = storage.readOnly;
    const ctx: BackendContext = {
      client,
      dev: { frontClass: 'vbd', backClass: parsed.backClass, frontDomid: parsed.frontDomid, backDomid: parsed.backDomid, devid: parsed.devid },
      backPath,
      frontPath: frontendPath({ frontDomid: parsed.frontDomid, frontClass: 'vbd', devid: parsed.devid }),
      errorPath: errorPath(backPath, parsed.backDomid),
      log: this.log,
    };
    this.ctx = ctx;
    this.drainMs = options.drainTimeoutMs ?? 10_000;
  }

  /**
   * Standalone use (without a BackendWatcher): probe, publish, and follow the frontend
   * (returns once InitWait, or the reset of an earlier incarnation, is under way).
   */
  start(): Promise<void> {
    this.device ??= new BackendDevice(this.ctx, { probe: () => this.probe() });
    return this.device.start();
  }

  get isConnected(): boolean {
    return this.queues.length > 0;
  }

  /** Resolves when the state machine has no step pending (tests). */
  idle(): Promise<void> {
    return this.device?.idle() ?? Promise.resolve();
  }

  info(): BlkBackInfo {
    return {
      backPath: this.backPath,
      frontDomid: this.frontDomid,
      devid: this.devid,
      connected: this.isConnected,
      sectors: this.storage.sectorCount,
      sectorSize: this.storage.logicalBlockSize,
      readOnly: this.readOnly,
      storage: this.storage.description,
      queues: this.queues.length,
      ringPages: this.negotiated === undefined ? 0 : 1 << this.negotiated.order,
      protocol: this.negotiated?.abi,
      persistent: this.negotiated?.persistent ?? false,
      persistentGrants: this.queues.reduce((n, q) => n + q.persistentGrants, 0),
      inFlight: this.queues.reduce((n, q) => n + q.requestsInFlight, 0),
      counters: this.counters,
    };
  }

  /**
   * Online resize: grow (or shrink) the storage, then rewrite `sectors` and our `state` in
   * one transaction, which fires the frontend's watch (Linux `xen_vbd_resize`).
   */
  async resize(newSectors: number): Promise<void> {
    if (this.storage.resize === undefined) throw new XenpvError('EOPNOTSUPP', `${this.storage.description} cannot resize`);
    await this.storage.resize(newSectors);
    await this.client.withTransaction(async (tx) => {
      await tx.write(`${this.backPath}/sectors`, String(this.storage.sectorCount));
      if (this.isConnected) await tx.write(`${this.backPath}/state`, String(XenbusStateConnected));
    });
  }

  /** Graceful stop: disconnect and write Closed (the device stays in the store). */
  shutdown(): Promise<void> {
    return this.device?.shutdown() ?? Promise.resolve();
  }

  /** Tear down without touching the store (the directory is gone, or the host is stopping). */
  destroy(): Promise<void> {
    return this.device?.destroy() ?? Promise.resolve();
  }

  /**
   * Die like a crashed backend process: every mapping and port is released at once (as the
   * kernel does for a dead process), in-flight requests are never answered, and nothing is
   * written to the store. For reconnect tests.
   */
  async kill(): Promise<void> {
    this.killed = true;
    this.dropQueues();
    await this.device?.destroy();
  }

  // ---- BackendDriver / BackendInstance ----

  /** Linux `xen_blkbk_probe`: publish the limits. The returned instance connects and disconnects. */
  async probe(): Promise<BackendInstance> {
    const drainMs = this.drainMs;
    const mode = await readOptional(this.client, this.backPath, 'mode');
    this.readOnly = this.storage.readOnly || mode === 'r' || mode === 'ro';
    const keys: Record<string, number> = {
      'max-ring-page-order': this.limits.maxOrder,
      'max-ring-pages': 1 << this.limits.maxOrder,
      'multi-queue-max-queues': this.limits.maxQueues,
      'feature-persistent': this.limits.persistent ? 1 : 0,
    };
    if (this.limits.maxIndirect > 0) keys['feature-max-indirect-segments'] = this.limits.maxIndirect;
    // A backend restarted on this device without INDIRECT must not leave its predecessor's
    // offer behind: a frontend reading it would send requests we answer EOPNOTSUPP.
    else await removeKeys(this.client, this.backPath, ['feature-max-indirect-segments']);
    await writeKeys(this.client, this.backPath, keys);
    return {
      connect: () => this.connect(),
      disconnect: () => this.disconnect(drainMs),
    };
  }

  private async connect(): Promise<void> {
    if (this.killed) throw new XenpvError('ESHUTDOWN', 'backend killed');
    const front = frontendPath({ frontDomid: this.frontDomid, frontClass: 'vbd', devid: this.devid });
    const n = await this.readNegotiation(front);
    const nq = await readUint(this.client, front, 'multi-queue-num-queues', { min: 1, max: this.limits.maxQueues, default: 1 });
    const setups = [];
    for (let i = 0; i < nq; i++) {
      const dir = queueDir(front, i, nq);
      const ringRefs = [];
      for (const key of ringRefKeys(n.order)) ringRefs.push(await readUint(this.client, dir, key, { max: 0xffffffff }));
      const port = await readUint(this.client, dir, 'event-channel', { min: 1, max: 0xffffffff });
      setups.push({ index: i, frontDomid: this.frontDomid, abi: n.abi, ringRefs, port, persistent: n.persistent, copy: this.limits.copy });
    }
    const queues: ServedQueue[] = [];
    try {
      for (const s of setups) queues.push((await this.queueFactory?.(this.host, s)) ?? new BackQueue(this.host, s));
      if (this.killed) throw new XenpvError('ESHUTDOWN', 'backend killed');
    } catch (err) {
      for (const q of queues) q.dispose();
      throw err;
    }
    this.queues = queues;
    this.negotiated = n;
    try {
      await this.publishDevice();
    } catch (err) {
      // The state machine only disconnects what connected: undo it here.
      this.dropQueues();
      throw err;
    }
  }

  private async readNegotiation(front: string): Promise<Negotiated> {
    const protocol = await readStr(this.client, front, 'protocol', { default: 'x86_64-abi', maxLength: 32 });
    const abi = abiFromProtocol(protocol);
    if (abi === undefined) throw new XenpvError('EPROTO', `${front}/protocol: unsupported '${protocol}'`);
    let order = await readUint(this.client, front, 'ring-page-order', { max: this.limits.maxOrder, default: -1 });
    if (order === -1) {
      // The deprecated form: num-ring-pages, a power of two.
      const pages = await readUint(this.client, front, 'num-ring-pages', { min: 1, max: 1 << this.limits.maxOrder, default: 1 });
      if ((pages & (pages - 1)) !== 0) throw new XenpvError('EPROTO', `${front}/num-ring-pages: ${pages} is not a power of 2`);
      order = Math.log2(pages);
    }
    // "used only if both advertise them" (the 2022 Linux fix).
    const fePersistent = await readBool(this.client, front, 'feature-persistent');
    const persistent = this.limits.persistent && fePersistent;
    return { abi, order, persistent };
  }

  private async publishDevice(): Promise<void> {
    const s = this.storage;
    const cache = s.capabilities.flush && !this.readOnly;
    const discardEnable = await readBool(this.client, this.backPath, 'discard-enable', true);
    this.discardOn = s.capabilities.discard.supported && discardEnable && !this.readOnly;
    const keys: Record<string, number> = {
      'feature-flush-cache': cache ? 1 : 0,
      'feature-barrier': cache ? 1 : 0,
      'feature-discard': this.discardOn ? 1 : 0,
      'feature-persistent': this.negotiated?.persistent === true ? 1 : 0,
      sectors: s.sectorCount,
      info: this.readOnly ? VDISK_READONLY : 0,
      'sector-size': s.logicalBlockSize,
      'physical-sector-size': s.physicalBlockSize,
    };
    if (this.discardOn) {
      keys['discard-granularity'] = s.capabilities.discard.granularity;
      keys['discard-alignment'] = s.capabilities.discard.alignment;
      keys['discard-secure'] = s.capabilities.discard.secureDiscard ? 1 : 0;
    }
    await writeKeys(this.client, this.backPath, keys);
  }

  private async disconnect(drainMs: number): Promise<void> {
    const queues = this.queues;
    this.queues = [];
    // Linux xen_blkif_disconnect: wait for in-flight I/O before unmapping what it uses.
    await Promise.all(queues.map((q) => q.drain(drainMs)));
    for (const q of queues) q.dispose();
  }

  private dropQueues(): void {
    for (const q of this.queues) q.dispose();
    this.queues = [];
  }

  private get host(): QueueHost {
    return {
      platform: this.platform,
      storage: this.storage,
      counters: this.counters,
      context: () => this.requestContext(),
      broken: (why) => void this.frontendBroken(why),
      notSupported: (op) => void this.withdraw(op),
      log: (msg) => this.log(`${this.backPath}: ${msg}`),
    };
  }

  private requestContext(): RequestContext {
    const s = this.storage;
    return {
      sectors: s.sectorCount,
      readOnly: this.readOnly,
      blockSectors: Math.max(1, s.logicalBlockSize / 512),
      maxIndirectSegments: this.limits.maxIndirect,
      discard: this.discardOn,
      discardSecure: this.discardOn && s.capabilities.discard.secureDiscard,
    };
  }

  /** blkback's "Halting ring processing": stop using the rings, record the error, go Closing. */
  private async frontendBroken(why: string): Promise<void> {
    this.log(`${this.backPath}: ${why}`);
    this.dropQueues();
    await deviceFatal(this.client, this.backPath, errorPath(this.backPath, this.backDomid), why).catch(() => undefined);
  }

  private async withdraw(op: 'flush' | 'barrier' | 'discard'): Promise<void> {
    const key = op === 'flush' ? 'feature-flush-cache' : op === 'barrier' ? 'feature-barrier' : 'feature-discard';
    if (op === 'discard') this.discardOn = false;
    await withdrawFeature(this.client, this.backPath, key).catch((err: unknown) => this.log(`${key}: ${String(err)}`));
  }
}

function clamp(v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v)) return lo;
  return Math.min(hi, Math.max(lo, v));
}

/**
 * A BackendDriver for xenbus's BackendWatcher (dom0's vbd bus): every device directory that
 * appears gets a BlkBack on the storage `openStorage` returns for it (from the toolstack's
 * `params`/`mode`/`type` keys, typically). The driver owns that storage and closes it when
 * the device is removed. `onDevice` sees each BlkBack (for block-list, resize).
 */
export function blkBackendDriver(
  platform: Platform,
  openStorage: (ctx: BackendContext) => Promise<BlockStorage>,
  options: BlkBackOptions = {},
  onDevice?: (back: BlkBack, removed: boolean) => void,
): BackendDriver {
  return {
    probe: async (ctx) => {
      const storage = await openStorage(ctx);
      let back: BlkBack;
      let inst: BackendInstance;
      try {
        back = new BlkBack(platform, ctx.client, storage, ctx.backPath, { log: ctx.log, ...options });
        inst = await back.probe();
      } catch (err) {
        await storage.close();
        throw err;
      }
      onDevice?.(back, false);
      return {
        ...inst,
        remove: async () => {
          onDevice?.(back, true);
          await storage.close();
        },
      };
    },
  };
}
