/**
 * A disk backend's ring threads (ring-worker.ts), seen from the disk's own thread: the
 * `queueFactory` BlkBack asks for each queue it connects.
 *
 * With k ring threads, queue i is served by the disk thread when i % (k + 1) is 0 and by ring
 * thread (i % (k + 1)) - 1 otherwise: a guest's first queue (where one vCPU's requests go,
 * front.ts pickQueue) stays beside the xenbus code, and the queues a busy frontend spills into
 * go to the other cores. The threads start with the disk thread and live as long as it does;
 * their platform handles come from the host (disk-thread.ts), which reclaims what they held
 * if the disk's threads die.
 *
 * A RemoteQueue answers BlkBack synchronously from the figures its thread last reported, and
 * its `dispose` waits (bounded) until the thread has unmapped the ring and closed the port, as
 * BackQueue.dispose has when it returns: the state machine writes Closed right after, and the
 * frontend then ends access to those grants.
 */
import { Worker } from 'node:worker_threads';
import { XenpvError } from '../../base/index.js';
import type { QueueHost, QueueSetup, RequestContext, ServedQueue } from '../../devices/blk/index.js';
import type { StorageSpec } from '../../devices/blk/storage/open.js';
import type { PlatformHandle } from '../../hv/sim/platform.js';
import { addDelta } from './ring-counters.js';
import type { RingIn, RingOut, RingWorkerJob } from './ring-worker.js';

const WORKER_URL = new URL('./ring-worker.js', import.meta.url);
/** Queue indexes a thread can be told about (the acks array); blkif's ceiling is far below. */
const MAX_QUEUE_INDEX = 64;
/** How long `dispose` waits for the thread to release a queue before giving the thread up. */
const DISPOSE_TIMEOUT_MS = 2000;
/** How long `serve` waits for the thread to map a queue's ring before giving the thread up. */
const SERVE_TIMEOUT_MS = 5000;
/** How often a connected queue's context is compared with the disk's (resize, withdrawn discard). */
const CONTEXT_MS = 50;

export interface RingThreadEvents {
  log(line: string): void;
  /** A ring thread died or stopped answering: the disk's threads must go (the host reclaims). */
  failed(why: string): void;
}

export class RingThreads {
  private closed = false;

  /** `threads` by slot; undefined where one could not start (its queues are served by the disk thread). */
  private constructor(private readonly threads: readonly (RingThread | undefined)[]) {}

  /**
   * Start one thread per handle, before the disk is offered to a frontend: their task ids go
   * out with the disk thread's, and connecting waits for no thread start.
   */
  static async start(handles: readonly PlatformHandle[], storage: StorageSpec, events: RingThreadEvents): Promise<RingThreads> {
    const started = await Promise.allSettled(handles.map((h) => RingThread.spawn(h, storage, events)));
    return new RingThreads(
      started.map((r, i) => {
        if (r.status === 'fulfilled') return r.value;
        events.log(`ring thread ${i + 1}: ${String(r.reason)}; its queues are served by the disk thread`);
        return undefined;
      }),
    );
  }

  /** The Linux task ids of the threads that started. */
  get osTids(): number[] {
    return this.threads.flatMap((t) => (t?.osTid === undefined ? [] : [t.osTid]));
  }

  /** BlkBackOptions.queueFactory: undefined = serve it in the disk thread. */
  readonly factory = (host: QueueHost, setup: QueueSetup): Promise<ServedQueue | undefined> => {
    const slot = setup.index % (this.threads.length + 1);
    const thread = slot === 0 || this.closed ? undefined : this.threads[slot - 1];
    return thread === undefined ? Promise.resolve(undefined) : thread.serve(host, setup);
  };

  /** Stop every thread (after BlkBack released its queues). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t?.stop()));
  }
}

class RingThread {
  /** Connected queues (BlkBack has not disposed them). */
  private readonly queues = new Map<number, RemoteQueue>();
  /**
   * Where each queue index's counters go: kept after the queue is disposed, because the thread's
   * last report (posted just before it acknowledges the dispose) arrives after.
   */
  private readonly counters = new Map<number, QueueHost['counters']>();
  /** Replies awaited: `serve` by queue index, `drain` by minus its sequence number. */
  private readonly waiting = new Map<number, (m: RingOut | undefined) => void>();
  private readonly contextTimer: NodeJS.Timeout;
  private stopping = false;
  private exited = false;
  private drainSeq = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly acks: Int32Array,
    readonly osTid: number | undefined,
    private readonly events: RingThreadEvents,
  ) {
    worker.on('message', (m: RingOut) => this.onMessage(m));
    worker.on('error', (err) => events.log(`ring thread: ${err.message}`));
    worker.once('exit', () => {
      this.exited = true;
      // Nothing more will answer: serve attempts fail, drains report not drained.
      for (const w of this.waiting.values()) w(undefined);
      this.waiting.clear();
      if (!this.stopping) events.failed('a ring thread ended unexpectedly');
    });
    this.contextTimer = setInterval(() => {
      for (const q of this.queues.values()) q.syncContext();
    }, CONTEXT_MS);
    this.contextTimer.unref();
  }

  static async spawn(handle: PlatformHandle, storage: StorageSpec, events: RingThreadEvents): Promise<RingThread> {
    const acks = new SharedArrayBuffer(MAX_QUEUE_INDEX * 4);
    const job: RingWorkerJob = { platform: handle, storage, acks };
    const worker = new Worker(WORKER_URL, { workerData: job });
    const first = await new Promise<RingOut | { type: 'exit' }>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (err) => resolve({ type: 'error', code: 'EIO', message: err.message }));
      worker.once('exit', () => resolve({ type: 'exit' }));
    });
    if (first.type !== 'ready') {
      await worker.terminate();
      const why = first.type === 'error' ? first.message : `ring thread failed to start (${first.type})`;
      throw new XenpvError(first.type === 'error' ? first.code : 'EIO', why);
    }
    return new RingThread(worker, new Int32Array(acks), first.osTid, events);
  }

  serve(host: QueueHost, setup: QueueSetup): Promise<ServedQueue> {
    const index = setup.index;
    if (!Number.isInteger(index) || index < 0 || index >= MAX_QUEUE_INDEX) return Promise.reject(new XenpvError('EINVAL', `queue index ${index}`));
    // One reply per index at a time: a second serve would take the first one's waiter.
    if (this.waiting.has(index) || this.queues.has(index)) return Promise.reject(new XenpvError('EBUSY', `queue ${index} is already served here`));
    const context = host.context();
    return new Promise((resolve, reject) => {
      // A wedged thread must not hold the connect forever (dispose is bounded the same way).
      const timer = setTimeout(() => {
        this.waiting.delete(index);
        reject(new XenpvError('ETIMEDOUT', `ring thread did not serve queue ${index} in ${SERVE_TIMEOUT_MS} ms`));
        this.events.failed(`ring thread did not serve queue ${index} in ${SERVE_TIMEOUT_MS} ms`);
      }, SERVE_TIMEOUT_MS);
      this.await(index, (m) => {
        clearTimeout(timer);
        if (m?.type === 'served') {
          const q = new RemoteQueue(this, host, index, context);
          this.queues.set(index, q);
          this.counters.set(index, host.counters);
          resolve(q);
        } else if (m?.type === 'refused') reject(new XenpvError(m.code, m.message));
        else reject(new XenpvError('EIO', `ring thread gone before serving queue ${index}`));
      });
      this.send({ type: 'serve', setup, context });
    });
  }

  send(m: RingIn): void {
    if (!this.exited) this.worker.postMessage(m);
  }

  /** Await a reply keyed `key`; answered undefined at once when the thread is gone. */
  private await(key: number, reply: (m: RingOut | undefined) => void): void {
    if (this.exited) return reply(undefined);
    this.waiting.set(key, reply);
  }

  drain(index: number, ms: number): Promise<boolean> {
    const seq = ++this.drainSeq;
    return new Promise((resolve) => {
      this.await(-seq, (m) => resolve(m?.type === 'drained' ? m.ok : false));
      this.send({ type: 'drain', index, ms, seq });
    });
  }

  /** Tell the thread to release queue `index` and wait (bounded) until it has. */
  dispose(index: number): void {
    this.queues.delete(index);
    // A thread that is gone holds nothing: the host reclaimed it (RingThreadEvents.failed).
    if (this.exited) return;
    const seen = Atomics.load(this.acks, index);
    this.send({ type: 'dispose', index });
    const end = performance.now() + DISPOSE_TIMEOUT_MS;
    while (Atomics.load(this.acks, index) === seen) {
      const left = end - performance.now();
      if (left <= 0) return this.events.failed(`ring thread did not release queue ${index} in ${DISPOSE_TIMEOUT_MS} ms`);
      Atomics.wait(this.acks, index, seen, Math.min(100, left));
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.contextTimer);
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
    this.send({ type: 'stop' });
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), DISPOSE_TIMEOUT_MS).unref());
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      // Terminated, it would keep its descriptor and listener slot: let the host reclaim them.
      await this.worker.terminate();
      this.events.failed(`ring thread did not stop in ${DISPOSE_TIMEOUT_MS} ms`);
    }
  }

  private onMessage(m: RingOut): void {
    switch (m.type) {
      case 'served':
      case 'refused': {
        const w = this.waiting.get(m.index);
        this.waiting.delete(m.index);
        return w?.(m);
      }
      case 'drained': {
        const w = this.waiting.get(-m.seq);
        this.waiting.delete(-m.seq);
        return w?.(m);
      }
      case 'log':
        return this.events.log(m.line);
      case 'error':
        return this.events.log(`ring thread: ${m.code}: ${m.message}`);
      case 'ready':
        return;
      case 'report': {
        if (m.delta !== undefined) {
          const c = this.counters.get(m.index);
          if (c !== undefined) addDelta(c, m.delta);
        }
        return this.queues.get(m.index)?.reported(m.inFlight, m.persistentGrants);
      }
      case 'broken':
        return this.queues.get(m.index)?.host.broken(m.why);
      case 'notSupported':
        return this.queues.get(m.index)?.host.notSupported(m.op);
    }
  }
}

/** A queue served by a ring thread, as BlkBack sees it. */
class RemoteQueue implements ServedQueue {
  persistentGrants = 0;
  requestsInFlight = 0;
  private sentContext: string;

  constructor(
    private readonly thread: RingThread,
    readonly host: QueueHost,
    private readonly index: number,
    context: RequestContext,
  ) {
    this.sentContext = JSON.stringify(context);
  }

  reported(inFlight: number, persistentGrants: number): void {
    this.requestsInFlight = inFlight;
    this.persistentGrants = persistentGrants;
  }

  /** Send the disk's context when it changed since the last one sent. */
  syncContext(): void {
    const context = this.host.context();
    const text = JSON.stringify(context);
    if (text === this.sentContext) return;
    this.sentContext = text;
    this.thread.send({ type: 'context', index: this.index, context });
  }

  drain(timeoutMs: number): Promise<boolean> {
    return this.thread.drain(this.index, timeoutMs);
  }

  dispose(): void {
    this.thread.dispose(this.index);
  }
}
