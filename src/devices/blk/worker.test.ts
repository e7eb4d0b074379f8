/**
 * The deployment shape (DESIGN.md §3): BlkBack in a dom0 worker thread, BlkFront on the
 * guest's thread, sharing only machine memory, event channels and the store. Data round
 * trips, and the worker leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { Transport } from '../../xenstore/server/index.js';
import type { BackWorkerJob } from './back-worker.js';
import { pattern, withBlkEnv } from './test-support.js';

const WORKER = new URL('./back-worker.js', import.meta.url);

test('cross-thread: BlkBack in a worker serves BlkFront on the main thread', () =>
  withBlkEnv(async (env) => {
    await env.addVbd();
    const disk = new SharedArrayBuffer(1024 * 512);
    const { port1, port2 } = new MessageChannel();
    // Bridge the worker's store connection to xenstored as dom0.
    const facade: Transport = {
      kind: 'local',
      write: (bytes) => port1.postMessage(bytes.slice()),
      writable: () => true,
      pauseInput: () => undefined,
      resumeInput: () => undefined,
      close: () => port1.close(),
    };
    const conn = env.store.daemon.attach(facade, 0);
    port1.on('message', (m: Uint8Array) => env.store.daemon.input(conn, new Uint8Array(m)));
    const job: BackWorkerJob = {
      platform: env.hv.platformHandle(0),
      store: port2,
      disk,
      backPath: env.backPath,
      options: { maxQueues: 2 },
    };
    const worker = new Worker(WORKER, { workerData: job, transferList: [port2] });
    const messages: { started?: boolean; stopped?: boolean; leaks?: string[]; counters?: { write: { requests: number } } }[] = [];
    const next = (): Promise<(typeof messages)[number]> =>
      new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    const exited = new Promise((r) => worker.once('exit', r));
    assert.equal((await next()).started, true);
    const front = env.newFront({ maxQueues: 2, maxIndirectSegments: 64, maxRingPageOrder: 1 });
    await front.start();
    const writes = [0, 64, 200, 500].map((s, i) => front.write(s, pattern(s, 64, i + 1)));
    await Promise.all(writes);
    for (const [i, s] of [0, 64, 200, 500].entries()) {
      const buf = new Uint8Array(64 * 512);
      await front.read(s, buf);
      assert.deepEqual(buf, pattern(s, 64, i + 1));
      assert.deepEqual(new Uint8Array(disk, s * 512, 64 * 512), pattern(s, 64, i + 1), 'in the shared disk');
    }
    const stopped = next();
    worker.postMessage('stop');
    const report = await stopped;
    assert.deepEqual(report.leaks, [], 'the worker released every mapping, port and watch');
    assert.ok((report.counters?.write.requests ?? 0) >= 4);
    await exited;
    env.store.daemon.transportClosed(conn);
    port1.close();
    await front.dispose(2000);
  }));
