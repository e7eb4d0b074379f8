/**
 * Worker entry: a dom0 thread serving some of one disk's queues (rings), started by the disk's
 * backend thread (ring-threads.ts, from disk-worker.ts). Linux blkback serves every ring from a
 * kthread of its own (`xen_blkif_schedule`); here the disk thread keeps some queues and hands
 * the others to these threads, so the transfers of a multi-queue disk use more than one core.
 *
 * The thread opens the image itself: raw files only, a second descriptor on the same file. The
 * page cache and fdatasync are per inode, so a FLUSH answered on any queue covers the writes
 * acknowledged on all of them (storage/types.ts contract), as with one descriptor.
 *
 * Messages with the disk thread (RingIn / RingOut):
 *   in:  serve {setup, context} → served {index} | refused {index, code, message}
 *        context {index, context}   (the disk's size, read-only, discard changed)
 *        drain {index, ms, seq}     → drained {index, seq, ok}
 *        dispose {index}            → the queue unmapped and unbound, a last report posted,
 *                                     then `acks[index]` bumped (the disk thread waits on it)
 *        stop                       → every queue disposed, storage and platform closed, exit
 *   out: ready {osTid} | error {code, message}  (once, after the storage opened)
 *        report {index, inFlight, persistentGrants, delta}  (every REPORT_MS when changed)
 *        broken {index, why} | notSupported {index, op} | log {line}
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BackQueue, newBlkCounters, type BlkCounters, type QueueHost, type QueueSetup, type RequestContext } from '../../devices/blk/index.js';
import { openStorage, type StorageSpec } from '../../devices/blk/storage/open.js';
import type { BlockStorage } from '../../devices/blk/storage/types.js';
import { SimPlatform, type PlatformHandle } from '../../hv/sim/platform.js';
import { takeDelta } from './ring-counters.js';
import { osThreadId } from '../../hv/sim/affinity.js';
import { errorFields } from './worker-error.js';

export interface RingWorkerJob {
  readonly platform: PlatformHandle;
  /** The disk's image, opened here with `sync` (a raw file). */
  readonly storage: StorageSpec;
  /** One Int32 per queue index: bumped once that queue is disposed. */
  readonly acks: SharedArrayBuffer;
}

export type RingIn =
  | { type: 'serve'; setup: QueueSetup; context: RequestContext }
  | { type: 'context'; index: number; context: RequestContext }
  | { type: 'drain'; index: number; ms: number; seq: number }
  | { type: 'dispose'; index: number }
  | { type: 'stop' };

export type RingOut =
  | { type: 'ready'; osTid: number | undefined }
  | { type: 'error'; code: string; message: string }
  | { type: 'served'; index: number }
  | { type: 'refused'; index: number; code: string; message: string }
  | { type: 'drained'; index: number; seq: number; ok: boolean }
  | { type: 'report'; index: number; inFlight: number; persistentGrants: number; delta: BlkCounters | undefined }
  | { type: 'broken'; index: number; why: string }
  | { type: 'notSupported'; index: number; op: 'flush' | 'barrier' | 'discard' }
  | { type: 'log'; line: string };

/** How often a queue's figures go to the disk thread (block-list's own period). */
const REPORT_MS = 50;

interface Served {
  readonly queue: BackQueue;
  /** What the queue's validator reads (the disk's current geometry and features). */
  readonly view: { context: RequestContext };
  readonly counters: BlkCounters;
  readonly sent: BlkCounters;
  /** inFlight/persistentGrants as last reported. */
  last: string;
}

function post(m: RingOut): void {
  parentPort!.postMessage(m);
}

class RingServer {
  private readonly served = new Map<number, Served>();
  private readonly acks: Int32Array;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly platform: SimPlatform,
    private readonly storage: BlockStorage,
    job: RingWorkerJob,
  ) {
    this.acks = new Int32Array(job.acks);
    this.timer = setInterval(() => {
      for (const [index, s] of this.served) this.report(index, s);
    }, REPORT_MS);
  }

  on(m: RingIn): void {
    switch (m.type) {
      case 'serve':
        return this.serve(m.setup, m.context);
      case 'context': {
        const s = this.served.get(m.index);
        if (s !== undefined) s.view.context = m.context;
        return;
      }
      case 'drain': {
        const s = this.served.get(m.index);
        if (s === undefined) return post({ type: 'drained', index: m.index, seq: m.seq, ok: true });
        void s.queue.drain(m.ms).then((ok) => post({ type: 'drained', index: m.index, seq: m.seq, ok }));
        return;
      }
      case 'dispose':
        return this.dispose(m.index);
      case 'stop':
        return void this.stop();
    }
  }

  private serve(setup: QueueSetup, context: RequestContext): void {
    const index = setup.index;
    if (this.served.has(index)) return post({ type: 'refused', index, code: 'EEXIST', message: `queue ${index} is served already` });
    const counters = newBlkCounters();
    const view = { context };
    const host: QueueHost = {
      platform: this.platform,
      storage: this.storage,
      counters,
      context: () => view.context,
      broken: (why) => post({ type: 'broken', index, why }),
      notSupported: (op) => post({ type: 'notSupported', index, op }),
      log: (line) => post({ type: 'log', line }),
    };
    try {
      this.served.set(index, { queue: new BackQueue(host, setup), view, counters, sent: newBlkCounters(), last: '' });
    } catch (err) {
      return post({ type: 'refused', index, ...errorFields(err) });
    }
    post({ type: 'served', index });
  }

  private report(index: number, s: Served): void {
    const figures = `${s.queue.requestsInFlight}/${s.queue.persistentGrants}`;
    const delta = takeDelta(s.counters, s.sent);
    if (delta === undefined && figures === s.last) return;
    s.last = figures;
    post({ type: 'report', index, inFlight: s.queue.requestsInFlight, persistentGrants: s.queue.persistentGrants, delta });
  }

  private dispose(index: number): void {
    const s = this.served.get(index);
    if (s !== undefined) {
      this.served.delete(index);
      s.queue.dispose();
      this.report(index, s);
    }
    Atomics.add(this.acks, index, 1);
    Atomics.notify(this.acks, index);
  }

  private async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const index of [...this.served.keys()]) this.dispose(index);
    await this.storage.close().catch(() => undefined);
    this.platform.dispose();
    parentPort!.close();
  }
}

async function main(job: RingWorkerJob): Promise<void> {
  let storage: BlockStorage;
  try {
    storage = await openStorage({ ...job.storage, sync: true });
  } catch (err) {
    post({ type: 'error', ...errorFields(err) });
    return void parentPort!.close();
  }
  let platform: SimPlatform;
  try {
    platform = SimPlatform.attach(job.platform);
    platform.events.startAsync();
  } catch (err) {
    await storage.close().catch(() => undefined);
    post({ type: 'error', ...errorFields(err) });
    return void parentPort!.close();
  }
  const server = new RingServer(platform, storage, job);
  parentPort!.on('message', (m: RingIn) => server.on(m));
  post({ type: 'ready', osTid: osThreadId() });
}

if (parentPort !== null && workerData !== undefined) void main(workerData as RingWorkerJob);
