/**
 * What the xenstore benchmark's threads say to each other (bench/xenstore.ts and the workers
 * in this folder), and a small request/reply helper over a worker's message port.
 *
 * Every worker answers each request with exactly one reply, in order; a failure is a reply
 * too (`{ kind: 'error' }`), so the main thread never waits on a worker that gave up.
 */
import { Worker } from 'node:worker_threads';
import type { HvHandle } from '../../memory/index.js';

export type XsBenchOp = 'read' | 'write' | 'directory' | 'txn';
export type XsBenchTarget = 'socket' | 'ring' | 'echo';

/** A guest whose xenstore page and port the daemon is to INTRODUCE. */
export interface GuestStore {
  readonly domid: number;
  readonly gfn: number;
  readonly port: number;
}

export interface DaemonJob {
  readonly socketPath: string;
  readonly hv: HvHandle;
}

export interface EchoJob {
  readonly socketPath: string;
  /** Bytes of each reply (the size of a xenstore READ reply). */
  readonly replyBytes: number;
}

export interface ClientJob {
  readonly daemonPath: string;
  readonly echoPath: string;
  readonly hv: HvHandle;
  readonly guests: readonly number[];
  /** Socket connections (to the daemon, and to the echo server) to open. */
  readonly sockets: number;
}

export type Request =
  | { readonly kind: 'introduce'; readonly guests: readonly GuestStore[] }
  | { readonly kind: 'setup' }
  | {
      readonly kind: 'run';
      readonly target: XsBenchTarget;
      readonly op: XsBenchOp;
      readonly clients: number;
      readonly warmupMs: number;
      readonly durationMs: number;
    }
  | { readonly kind: 'close' };

/** One timed run: operations completed in the timed window and how long it lasted. */
export interface RunReport {
  readonly kind: 'run';
  readonly ops: number;
  readonly elapsedNs: number;
  /** Over the whole run (warm-up included): operations, and transaction attempts that hit EAGAIN. */
  readonly totalOps: number;
  readonly retries: number;
  /** The clients thread's event-loop utilization in the timed window (0..1). */
  readonly clientElu: number;
}

export interface MemoryReport {
  readonly kind: 'memory';
  /** Nodes created (the leaves and the directories above them), by the daemon's accounting. */
  readonly nodes: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
  /** The daemon's own accounting of the nodes' size (C xenstored's `memory` quota unit). */
  readonly accountedBytes: number;
}

export type Reply =
  | { readonly kind: 'ready' }
  | { readonly kind: 'ok' }
  | RunReport
  | MemoryReport
  | { readonly kind: 'error'; readonly message: string };

/** A worker spoken to one request at a time. */
export class WorkerRpc {
  private readonly replies: Reply[] = [];
  private waiter: ((r: Reply) => void) | undefined;
  private failure: Error | undefined;

  private constructor(readonly worker: Worker, readonly name: string) {
    worker.on('message', (r: Reply) => this.deliver(r));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`${name} worker exited (${code})`)));
  }

  /** Start `url` and wait for its `ready`. */
  static async start(url: URL, name: string, workerData: unknown): Promise<WorkerRpc> {
    const rpc = new WorkerRpc(new Worker(url, { workerData }), name);
    await rpc.next();
    return rpc;
  }

  async call(req: Request): Promise<Reply> {
    this.worker.postMessage(req);
    return this.next();
  }

  /**
   * Ask the worker to close what it opened, and wait for it to exit. One that does not exit
   * on its own within `graceMs` (something of it still holds its event loop) is terminated.
   */
  async close(graceMs = 2000): Promise<void> {
    if (this.failure !== undefined) return;
    const exited = new Promise<boolean>((resolve) => this.worker.once('exit', () => resolve(true)));
    await this.call({ kind: 'close' });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
    const clean = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (!clean) await this.worker.terminate();
  }

  private next(): Promise<Reply> {
    const r = this.replies.shift();
    if (r !== undefined) return r.kind === 'error' ? Promise.reject(new Error(`${this.name}: ${r.message}`)) : Promise.resolve(r);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = (x) => (x.kind === 'error' ? reject(new Error(`${this.name}: ${x.message}`)) : resolve(x));
    });
  }

  private deliver(r: Reply): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w !== undefined) w(r);
    else this.replies.push(r);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.deliver({ kind: 'error', message: err.message });
  }
}

/** The worker side: answer each request with the handler's reply, or an error reply. */
export function serve(port: { on(e: 'message', h: (r: Request) => void): void; postMessage(r: Reply): void }, handle: (r: Request) => Promise<Reply>): void {
  let chain = Promise.resolve();
  port.on('message', (req) => {
    chain = chain.then(async () => {
      try {
        port.postMessage(await handle(req));
      } catch (err) {
        port.postMessage({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
    });
  });
}
