/**
 * Test support (not a test): BlkBack in its own worker thread, as dom0 runs one backend per
 * guest device (DESIGN.md §3). It talks to the store through a MessagePort (the main thread
 * bridges it to xenstored) and serves a memory disk backed by a SharedArrayBuffer.
 *
 * Messages in: 'stop'. Messages out: { started }, { stopped, leaks }.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { liveResources } from '../../base/index.js';
import type { StoreTransport } from '../../hv/platform.js';
import { SimPlatform, type PlatformHandle } from '../../hv/sim/platform.js';
import { XsClient } from '../../xenstore/client/index.js';
import { BlkBack, type BlkBackOptions } from './back.js';
import { MemoryStorage } from './storage/memory.js';

export interface BackWorkerJob {
  readonly platform: PlatformHandle;
  readonly store: MessagePort;
  readonly disk: SharedArrayBuffer;
  readonly backPath: string;
  readonly options: BlkBackOptions;
}

/** A StoreTransport over a MessagePort whose other end feeds xenstored. */
export function portTransport(port: MessagePort): StoreTransport {
  const closeHandlers: ((reason?: Error) => void)[] = [];
  port.on('close', () => closeHandlers.forEach((h) => h()));
  return {
    write: (bytes) => port.postMessage(bytes.slice()),
    onData: (handler) => port.on('message', (m: Uint8Array) => handler(new Uint8Array(m))),
    onClose: (handler) => void closeHandlers.push(handler),
    dispose: () => port.close(),
  };
}

async function main(job: BackWorkerJob): Promise<void> {
  const platform = SimPlatform.attach(job.platform);
  platform.events.startAsync();
  const xs = new XsClient(portTransport(job.store));
  const storage = new MemoryStorage(0, { buffer: job.disk });
  const back = new BlkBack(platform, xs, storage, job.backPath, job.options);
  await back.start();
  parentPort!.postMessage({ started: true });
  parentPort!.once('message', () => {
    void (async () => {
      await back.shutdown();
      xs.close();
      platform.dispose();
      const leaks = liveResources().filter((r) => r.kind !== 'xs-connection').map((r) => `${r.kind}: ${r.what}`);
      parentPort!.postMessage({ stopped: true, leaks, counters: back.info().counters });
      parentPort!.close();
    })();
  });
}

if (parentPort !== null && workerData !== undefined) void main(workerData as BackWorkerJob);
