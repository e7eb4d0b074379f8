/**
 * The host's side of a disk backend running in its own dom0 worker thread (disk-worker.ts):
 * spawns it with a thread handle and a bridged dom0 store connection, and keeps the latest
 * block-list/domstats figures the worker reports (at most 50 ms old).
 *
 * Crash isolation: if the worker dies without stopping cleanly, `reclaimThread` releases its
 * grant mappings (so the guest can end access and reclaim its pages), its ports and its
 * listener slot; the device then shows as not connected, and nothing else is affected.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker } from 'node:worker_threads';
import { XenpvError } from '../../base/index.js';
import { BACK_LIMITS, type BlkBackInfo, type BlkBackOptions } from '../../devices/blk/index.js';
import type { StorageSpec } from '../../devices/blk/storage/open.js';
import type { PlatformHandle } from '../../hv/sim/platform.js';
import type { Hypervisor } from '../../hv/sim/hypervisor.js';
import type { StoreTransport } from '../../hv/platform.js';
import type { DiskWorkerJob } from './disk-worker.js';

const WORKER_URL = new URL('./disk-worker.js', import.meta.url);
/** How long a stop waits for the worker to drain and release before it is terminated. */
const STOP_TIMEOUT_MS = 5000;

/** The features a disk backend offers (host-wide, like Linux blkback's module parameters). */
export type BlkBackFeatureOptions = Pick<BlkBackOptions, 'persistent' | 'maxIndirectSegments' | 'maxQueues' | 'maxRingPageOrder'>;

/** What the host needs to run backends in threads: the hypervisor and dom0 store connections. */
export interface BackendThreads {
  readonly hv: Hypervisor;
  /** Passed to every BlkBack; absent: BlkBack's defaults. */
  readonly backOptions?: BlkBackFeatureOptions;
  /** A new privileged (dom0) connection to xenstored, for one backend thread. */
  connectStore(): StoreTransport;
  readonly log?: (line: string) => void;
}

/** What the toolstack sees of a disk backend, wherever it runs. */
export interface DiskBackend {
  readonly isConnected: boolean;
  info(): BlkBackInfo;
  /** Tear down without touching the store, and release the storage. */
  destroy(): Promise<void>;
}

/**
 * Ring threads per disk (ring-threads.ts): one per core beyond the first, at most one per queue
 * beyond the first; none on one core. XENPV_BLK_RING_THREADS=n sets it (0: every queue in the
 * disk's thread, as before ring threads).
 */
export function ringThreadCount(maxQueues: number): number {
  const env = process.env['XENPV_BLK_RING_THREADS'];
  const wanted = env !== undefined && /^\d+$/.test(env) ? Number(env) : availableParallelism() - 1;
  return Math.max(0, Math.min(wanted, maxQueues - 1));
}

type FromWorker =
  | { type: 'opened'; info: BlkBackInfo; osTid: number | undefined; ringOsTids: number[] }
  | { type: 'error'; code: string; message: string }
  | { type: 'info' | 'stopped'; info: BlkBackInfo }
  | { type: 'log'; line: string };

export class ThreadedDiskBackend implements DiskBackend {
  private latest: BlkBackInfo;
  private stopped = false;
  private readonly exited: Promise<void>;
  private cleanStop = false;

  private constructor(
    private readonly threads: BackendThreads,
    private readonly worker: Worker,
    /** The disk thread's handle, then its ring threads'. */
    private readonly handles: readonly PlatformHandle[],
    private readonly store: StoreTransport,
    first: BlkBackInfo,
    /**
     * The thread's Linux task id (/proc/self/task/<id>): dom0 CPU accounting must count it
     * (e.g. a sampler of the threads alive before the guest was created misses it).
     */
    readonly osTid: number | undefined,
    /** The task ids of the disk's ring threads (ring-threads.ts), dom0's too. */
    readonly ringOsTids: readonly number[],
  ) {
    this.latest = first;
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => threads.log?.(`disk backend thread: ${err.message}`));
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    void this.exited.then(() => this.afterExit());
  }

  /** Spawn the worker and open the storage there; rejects (and cleans up) if it cannot. */
  static async spawn(threads: BackendThreads, backPath: string, storage: StorageSpec): Promise<ThreadedDiskBackend> {
    const handle = threads.hv.threadHandle(0);
    const rings = ringThreadCount(threads.backOptions?.maxQueues ?? BACK_LIMITS.maxQueues);
    const ringHandles = Array.from({ length: rings }, () => threads.hv.threadHandle(0));
    const store = threads.connectStore();
    const { port1, port2 } = new MessageChannel();
    store.onData((bytes) => port1.postMessage(bytes));
    store.onClose(() => port1.close());
    port1.on('message', (m: Uint8Array) => store.write(m));
    const job: DiskWorkerJob = { platform: handle, store: port2, backPath, storage, backOptions: threads.backOptions ?? {}, ringHandles };
    const worker = new Worker(WORKER_URL, { workerData: job, transferList: [port2] });
    const first = await firstMessage(worker, threads.log);
    if (first.type !== 'opened') {
      await worker.terminate();
      // It may have died after attaching (e.g. BlkBack's constructor threw): its listener slot.
      for (const h of [handle, ...ringHandles]) reclaim(threads, h, 'disk backend thread failed to start');
      store.dispose();
      port1.close();
      const code = first.type === 'error' ? first.code : 'EIO';
      throw new XenpvError(code, first.type === 'error' ? first.message : `disk backend thread failed: ${String(first)}`);
    }
    return new ThreadedDiskBackend(threads, worker, [handle, ...ringHandles], store, first.info, first.osTid, first.ringOsTids);
  }

  /** Disk size in 512-byte sectors (as opened). */
  get sectorCount(): number {
    return this.latest.sectors;
  }

  /** Start serving, once the device directories are written. */
  start(): void {
    this.worker.postMessage({ type: 'start' });
  }

  get isConnected(): boolean {
    return !this.stopped && this.latest.connected;
  }

  info(): BlkBackInfo {
    return this.stopped ? { ...this.latest, connected: false } : this.latest;
  }

  async destroy(): Promise<void> {
    if (!this.stopped) this.worker.postMessage({ type: 'stop' });
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
    if ((await Promise.race([this.exited, timeout])) === 'timeout') await this.worker.terminate();
    await this.exited;
  }

  /**
   * Die like a crashed backend: the thread is terminated without releasing anything, and
   * the exit path reclaims what it held (BlkBack.kill's counterpart, for crash tests).
   */
  async kill(): Promise<void> {
    await this.worker.terminate();
    await this.exited;
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'info') this.latest = m.info;
    else if (m.type === 'stopped') {
      this.latest = m.info;
      this.cleanStop = true;
    } else if (m.type === 'log') this.threads.log?.(m.line);
    else if (m.type === 'error') this.threads.log?.(`disk backend: ${m.code}: ${m.message}`);
  }

  /** The worker is gone: unless it released everything itself, the hypervisor does it. */
  private afterExit(): void {
    this.stopped = true;
    this.store.dispose();
    if (!this.cleanStop) for (const h of this.handles) reclaim(this.threads, h, 'disk backend thread died');
  }
}

/** Release what a dead backend thread held (its mappings, ports and listener slot). */
function reclaim(threads: BackendThreads, handle: PlatformHandle, what: string): void {
  try {
    const r = threads.hv.reclaimThread(handle);
    threads.log?.(`${what}: reclaimed ${r.mappings} mappings, ${r.ports} ports`);
  } catch (err) {
    // dom0 itself is gone (the host is stopping): nothing left to reclaim.
    threads.log?.(`${what}: ${String(err)}`);
  }
}

/** The worker's first message other than a log line (log lines before it go to `log`). */
function firstMessage(worker: Worker, log: ((line: string) => void) | undefined): Promise<FromWorker | { type: 'exit' }> {
  return new Promise((resolve) => {
    const onMsg = (m: FromWorker): void => {
      if (m.type === 'log') return log?.(m.line);
      worker.off('message', onMsg);
      resolve(m);
    };
    worker.on('message', onMsg);
    worker.once('error', (err) => resolve({ type: 'error', code: 'EIO', message: err.message }));
    worker.once('exit', () => resolve({ type: 'exit' }));
  });
}
