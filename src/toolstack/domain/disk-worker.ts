/**
 * Worker entry: one guest disk's BlkBack in a dom0 thread of its own (DESIGN.md §3), so the
 * disk's I/O neither waits behind nor blocks the host thread (xenstored, consoles, other
 * guests' devices), and both cores work. Protocol with disk-thread.ts:
 *
 *   in:  { type: 'start' } once the toolstack has written the device directories;
 *        { type: 'stop' } to tear down (without touching the store, like BlkBack.destroy).
 *   out: { type: 'opened', info, osTid } or { type: 'error', code, message };
 *        { type: 'info', info } whenever block-list/domstats figures change (at most every 50 ms);
 *        { type: 'stopped', info }.
 *
 * The storage is opened here with `sync: true`: this thread serves only this disk, so
 * page-cache pread/pwrite on it are cheaper than libuv's pool by an order of magnitude
 * (storage/sync-file.ts); the storage then offers `syncIo`, and BlkBack serves READ/WRITE
 * straight between the image and the guest's granted pages, a pass's transfers in one Linux
 * AIO submission where available (storage/linux-aio.ts, devices/blk/back-sync.ts).
 * The store is a dom0 connection bridged over a MessagePort.
 */
import { readlinkSync } from 'node:fs';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { errorCode } from '../../base/index.js';
import { BlkBack } from '../../devices/blk/index.js';
import { openStorage, type StorageSpec } from '../../devices/blk/storage/open.js';
import type { BlockStorage } from '../../devices/blk/storage/types.js';
import type { StoreTransport } from '../../hv/platform.js';
import { SimPlatform, type PlatformHandle } from '../../hv/sim/platform.js';
import { XsClient } from '../../xenstore/client/index.js';
import type { BlkBackFeatureOptions } from './disk-thread.js';

export interface DiskWorkerJob {
  readonly platform: PlatformHandle;
  readonly store: MessagePort;
  readonly backPath: string;
  readonly storage: StorageSpec;
  /** The features offered (BackendThreads.backOptions); plain data, copied into the worker. */
  readonly backOptions: BlkBackFeatureOptions;
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

/** This thread's Linux task id (for per-thread CPU accounting by the host); undefined elsewhere. */
function osThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isSafeInteger(tid) ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** Tell the toolstack this disk could not be served, and why. */
function postError(err: unknown): void {
  parentPort!.postMessage({ type: 'error', code: errorCode(err) ?? 'EIO', message: err instanceof Error ? err.message : String(err) });
}

async function open(job: DiskWorkerJob): Promise<BlockStorage | undefined> {
  try {
    const storage = await openStorage({ ...job.storage, sync: true });
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
async function setUp(job: DiskWorkerJob, storage: BlockStorage): Promise<{ platform: SimPlatform; xs: XsClient; back: BlkBack } | undefined> {
  let platform: SimPlatform | undefined;
  let xs: XsClient | undefined;
  try {
    platform = SimPlatform.attach(job.platform);
    platform.events.startAsync();
    xs = new XsClient(portTransport(job.store));
    const back = new BlkBack(platform, xs, storage, job.backPath, { ...job.backOptions, log: (m) => parentPort!.postMessage({ type: 'log', line: m }) });
    return { platform, xs, back };
  } catch (err) {
    xs?.close();
    platform?.dispose();
    await storage.close().catch(() => undefined);
    postError(err);
    return undefined;
  }
}

async function main(job: DiskWorkerJob): Promise<void> {
  const storage = await open(job);
  if (storage === undefined) return void parentPort!.close();
  const started = await setUp(job, storage);
  if (started === undefined) return void parentPort!.close();
  const { platform, xs, back } = started;
  parentPort!.postMessage({ type: 'opened', info: back.info(), osTid: osThreadId() });
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
