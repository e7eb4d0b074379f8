/**
 * Worker entry: one guest disk's BlkBack in a dom0 thread of its own (DESIGN.md §3), so the
 * disk's I/O neither waits behind nor blocks the host thread (xenstored, consoles, other
 * guests' devices), and both cores work. Protocol with disk-thread.ts:
 *
 *   in:  { type: 'start' } once the toolstack has written the device directories;
 *        { type: 'stop' } to tear down (without touching the store, like BlkBack.destroy).
 *   out: { type: 'opened', info, osTid, ringOsTids } or { type: 'error', code, message };
 *        { type: 'info', info } whenever block-list/domstats figures change (at most every 50 ms);
 *        { type: 'stopped', info }.
 *
 * The storage is opened here with `sync: true`: this thread serves only this disk, so
 * page-cache pread/pwrite on it are cheaper than libuv's pool by an order of magnitude
 * (storage/sync-file.ts); the storage then offers `syncIo`, and BlkBack serves READ/WRITE
 * straight between the image and the guest's granted pages, a pass's transfers in one Linux
 * AIO submission where available (storage/linux-aio.ts, devices/blk/back-sync.ts).
 * The store is a dom0 connection bridged over a MessagePort.
 *
 * With ring handles from the host (one per spare core) and a raw image, some queues of a
 * multi-queue frontend are served by ring threads of their own (ring-threads.ts), as Linux
 * serves each ring from its own kthread; they start with this thread.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { errorCode } from '../../base/index.js';
import { BlkBack } from '../../devices/blk/index.js';
import { openStorage, type StorageSpec } from '../../devices/blk/storage/open.js';
import type { BlockStorage } from '../../devices/blk/storage/types.js';
import type { StoreTransport } from '../../hv/platform.js';
import { SimPlatform, type PlatformHandle } from '../../hv/sim/platform.js';
import { XsClient } from '../../xenstore/client/index.js';
import type { BlkBackFeatureOptions } from './disk-thread.js';
import { RingThreads } from './ring-threads.js';
import { osThreadId } from '../../hv/sim/affinity.js';
import { errorFields } from './worker-error.js';

export interface DiskWorkerJob {
  readonly platform: PlatformHandle;
  readonly store: MessagePort;
  readonly backPath: string;
  readonly storage: StorageSpec;
  /** The features offered (BackendThreads.backOptions); plain data, copied into the worker. */
  readonly backOptions: BlkBackFeatureOptions;
  /** Platform handles for ring threads (ring-threads.ts); empty: every queue is served here. */
  readonly ringHandles: readonly PlatformHandle[];
}

const INFO_PERIOD_MS = 50;

function portTransport(port: MessagePort): StoreTransport {
  const closers: ((reason?: Error) => void)[] = [];
  port.on('close', () => closers.forEach((h) => h()));
  return {
    write: (bytes) => port.postMessage(bytes),
    onData: (handler) => port.on('message', (m: Uint8Array) => handler(m)),
    onClose: (handler) => void closers.push(handler),
    dispose: () => port.close(),
  };
}

/** Tell the toolstack this disk could not be served, and why. */
function postError(err: unknown): void {
  parentPort!.postMessage({ type: 'error', ...errorFields(err) });
}

async function open(job: DiskWorkerJob): Promise<BlockStorage | undefined> {
  try {
    const storage = await openStorage({ ...job.storage, sync: true });
    // What moves the data, and what is missing and why (no io_uring, no AIO): a slow disk says so.
    parentPort!.postMessage({ type: 'log', line: `${job.backPath}: ${storage.description}: data path ${storage.syncIo?.engine ?? 'asynchronous'}` });
    return storage;
  } catch (err) {
    postError(err);
    return undefined;
  }
}

/**
 * The platform, the store connection and the backend over `storage`. If any of them fails, what
 * was made is undone and the storage closed here: a file descriptor belongs to the process, so
 * ending this thread would not close it.
 */
async function setUp(job: DiskWorkerJob, storage: BlockStorage, rings: RingThreads | undefined): Promise<{ platform: SimPlatform; xs: XsClient; back: BlkBack } | undefined> {
  let platform: SimPlatform | undefined;
  let xs: XsClient | undefined;
  try {
    platform = SimPlatform.attach(job.platform);
    platform.events.startAsync();
    xs = new XsClient(portTransport(job.store));
    const back = new BlkBack(platform, xs, storage, job.backPath, {
      ...job.backOptions,
      ...(rings === undefined ? {} : { queueFactory: rings.factory }),
      log: (m) => parentPort!.postMessage({ type: 'log', line: m }),
    });
    return { platform, xs, back };
  } catch (err) {
    xs?.close();
    platform?.dispose();
    await storage.close().catch(() => undefined);
    postError(err);
    return undefined;
  }
}

/**
 * Ring threads for this disk when the host gave handles for them and the image can be opened
 * twice (a raw file on the synchronous path; qcow2's metadata and memory disks live in one thread).
 */
function ringThreads(job: DiskWorkerJob): Promise<RingThreads> | undefined {
  if (job.ringHandles.length === 0 || job.storage.format !== 'raw' || job.storage.direct === true) return undefined;
  return RingThreads.start(job.ringHandles, { ...job.storage, sync: true }, {
    log: (line) => parentPort!.postMessage({ type: 'log', line }),
    // The host reclaims what this thread and its ring threads held when this thread ends.
    failed: (why) => {
      parentPort!.postMessage({ type: 'error', code: 'EIO', message: why });
      process.exit(1);
    },
  });
}

async function main(job: DiskWorkerJob): Promise<void> {
  const storage = await open(job);
  if (storage === undefined) return void parentPort!.close();
  const rings = await ringThreads(job);
  const started = await setUp(job, storage, rings);
  if (started === undefined) {
    await rings?.close();
    return void parentPort!.close();
  }
  const { platform, xs, back } = started;
  parentPort!.postMessage({ type: 'opened', info: back.info(), osTid: osThreadId(), ringOsTids: rings?.osTids ?? [] });
  let last = '';
  const report = (type: 'info' | 'stopped'): void => {
    const info = back.info();
    const text = JSON.stringify(info);
    if (type === 'info' && text === last) return;
    last = text;
    parentPort!.postMessage({ type, info });
  };
  const timer = setInterval(() => report('info'), INFO_PERIOD_MS);
  parentPort!.on('message', (m: { type: string }) => {
    if (m.type === 'start') {
      back.start().then(
        () => report('info'),
        (err: unknown) => parentPort!.postMessage({ type: 'error', code: errorCode(err) ?? 'EIO', message: String(err) }),
      );
    } else if (m.type === 'stop') {
      void (async () => {
        clearInterval(timer);
        await back.destroy().catch(() => undefined);
        await rings?.close();
        await storage.close().catch(() => undefined);
        xs.close();
        platform.dispose();
        report('stopped');
        parentPort!.close();
      })();
    }
  });
}

if (parentPort !== null && workerData !== undefined) void main(workerData as DiskWorkerJob);
