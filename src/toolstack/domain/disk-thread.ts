/**
 * The host's side of a disk backend running in its own dom0 worker thread (disk-worker.ts):
 * spawns it with a thread handle and a bridged dom0 store connection, and keeps the latest
 * block-list/domstats figures the worker reports (at most 50 ms old).
 *
 * Crash isolation: if the worker dies without stopping cleanly, `reclaimThread` releases its
 * grant mappings (so the guest can end access and reclaim its pages), its ports and its
 * listener slot; the device shows as not connected, nothing else is affected, and a new
 * thread takes the disk over (RestartPolicy).
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
import { DEFAULT_RESTART_POLICY, RestartBudget, type RestartPolicy } from './restart-budget.js';

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
  /** How a thread that dies is replaced (default DEFAULT_RESTART_POLICY); false: left dead. */
  readonly restart?: RestartPolicy | false;
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

/** One backend thread from spawn to exit (a restart is a new one). */
interface DiskThread {
  readonly worker: Worker;
  /** The disk thread's handle, then its ring threads'. */
  readonly handles: readonly PlatformHandle[];
  readonly store: StoreTransport;
  readonly osTid: number | undefined;
  readonly ringOsTids: readonly number[];
  readonly exited: Promise<void>;
  /** It said 'stopped': it released everything itself. */
  cleanStop: boolean;
}

/**
 * A disk's backend in a dom0 thread of its own, kept running: a thread that dies without
 * stopping cleanly is reclaimed, and a new one is started on the same storage and backend
 * directory after a short wait (RestartPolicy). The new BlkBack finds the device as its
 * predecessor left it and takes it through a close cycle; the guest's blkfront reconnects and
 * replays what was not answered (issue 4 "Nothing lost"), as it would after `xl` restarted a
 * QEMU disk backend by hand (libxl does not restart a QEMU backend that died).
 */
export class ThreadedDiskBackend implements DiskBackend {
  private thread!: DiskThread;
  private latest!: BlkBackInfo;
  /** The current thread is gone (until a restart replaces it). */
  private stopped = false;
  private started = false;
  private destroying = false;
  private readonly budget: RestartBudget | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarting: Promise<void> | undefined;
  /** Threads started again after one died. */
  restarts = 0;

  private constructor(
    private readonly threads: BackendThreads,
    private readonly backPath: string,
    private readonly storage: StorageSpec,
    first: DiskThread,
    info: BlkBackInfo,
  ) {
    const policy = threads.restart ?? DEFAULT_RESTART_POLICY;
    this.budget = policy === false ? undefined : new RestartBudget(policy);
    this.attach(first, info);
  }

  /** Spawn the worker and open the storage there; rejects (and cleans up) if it cannot. */
  static async spawn(threads: BackendThreads, backPath: string, storage: StorageSpec): Promise<ThreadedDiskBackend> {
    const { thread, info } = await spawnThread(threads, backPath, storage);
    return new ThreadedDiskBackend(threads, backPath, storage, thread, info);
  }

  /**
   * The current thread's Linux task id (/proc/self/task/<id>): dom0 CPU accounting must count it
   * (e.g. a sampler of the threads alive before the guest was created misses it).
   */
  get osTid(): number | undefined {
    return this.thread.osTid;
  }

  /** The task ids of the disk's ring threads (ring-threads.ts), dom0's too. */
  get ringOsTids(): readonly number[] {
    return this.thread.ringOsTids;
  }

  /** Disk size in 512-byte sectors (as opened). */
  get sectorCount(): number {
    return this.latest.sectors;
  }

  /** Start serving, once the device directories are written (a restarted thread starts at once). */
  start(): void {
    this.started = true;
    this.thread.worker.postMessage({ type: 'start' });
  }

  get isConnected(): boolean {
    return !this.stopped && this.latest.connected;
  }

  info(): BlkBackInfo {
    return this.stopped ? { ...this.latest, connected: false } : this.latest;
  }

  async destroy(): Promise<void> {
    this.destroying = true;
    clearTimeout(this.restartTimer);
    await this.restarting;
    const t = this.thread;
    if (!this.stopped) t.worker.postMessage({ type: 'stop' });
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
    if ((await Promise.race([t.exited, timeout])) === 'timeout') await t.worker.terminate();
    await t.exited;
  }

  /**
   * Die like a crashed backend: the thread is terminated without releasing anything, the exit
   * path reclaims what it held (BlkBack.kill's counterpart, for crash tests), and the restart
   * policy applies.
   */
  async kill(): Promise<void> {
    await this.thread.worker.terminate();
    await this.thread.exited;
  }

  private attach(t: DiskThread, info: BlkBackInfo): void {
    this.thread = t;
    this.latest = info;
    this.stopped = false;
    t.worker.on('message', (m: FromWorker) => this.onMessage(t, m));
    t.worker.on('error', (err) => this.threads.log?.(`disk backend thread: ${err.message}`));
    void t.exited.then(() => this.afterExit(t));
  }

  private onMessage(t: DiskThread, m: FromWorker): void {
    if (m.type === 'log') return this.threads.log?.(m.line);
    if (m.type === 'error') return this.threads.log?.(`disk backend: ${m.code}: ${m.message}`);
    if (m.type === 'stopped') t.cleanStop = true;
    if (t === this.thread) this.latest = m.info;
  }

  /** A thread is gone: unless it released everything itself, the hypervisor does it; then maybe a new one. */
  private afterExit(t: DiskThread): void {
    t.store.dispose();
    if (!t.cleanStop) for (const h of t.handles) reclaim(this.threads, h, 'disk backend thread died');
    else for (const h of t.handles) this.threads.hv.releaseThread(h);
    if (t !== this.thread) return;
    this.stopped = true;
    if (!t.cleanStop && !this.destroying) this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = this.budget?.next();
    if (delay === undefined) {
      const p = this.budget?.policy;
      this.threads.log?.(`disk backend ${this.backPath}: not restarted (${p === undefined ? 'restarts are off' : `${p.maxRestarts} restarts within ${p.windowMs} ms already`}); the device stays down`);
      return;
    }
    this.threads.log?.(`disk backend ${this.backPath}: restarting in ${delay} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restarting = this.restart().finally(() => (this.restarting = undefined));
    }, delay);
  }

  private async restart(): Promise<void> {
    if (this.destroying) return;
    let next: { thread: DiskThread; info: BlkBackInfo };
    try {
      next = await spawnThread(this.threads, this.backPath, this.storage);
    } catch (err) {
      this.threads.log?.(`disk backend ${this.backPath}: restart failed: ${(err as Error).message}`);
      if (!this.destroying) this.scheduleRestart();
      return;
    }
    this.restarts++;
    this.attach(next.thread, next.info);
    if (this.started) this.start();
    this.threads.log?.(`disk backend ${this.backPath}: restarted (${this.restarts} so far)`);
  }
}

/** Spawn a worker and open the storage there; rejects (and cleans up) if it cannot. */
async function spawnThread(threads: BackendThreads, backPath: string, storage: StorageSpec): Promise<{ thread: DiskThread; info: BlkBackInfo }> {
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
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
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
  const thread: DiskThread = { worker, handles: [handle, ...ringHandles], store, osTid: first.osTid, ringOsTids: first.ringOsTids, exited, cleanStop: false };
  return { thread, info: first.info };
}

/** Release what a dead backend thread held (its mappings, ports and listener slot). */
function reclaim(threads: BackendThreads, handle: PlatformHandle, what: string): void {
  try {
    const r = threads.hv.reclaimThread(handle);
    threads.log?.(`${what}: reclaimed ${r.mappings} mappings, ${r.ports} ports, ${r.refs} domain references`);
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
