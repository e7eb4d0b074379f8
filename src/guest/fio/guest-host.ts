/**
 * The host's handle on a fio guest worker (guest-worker.ts): spawn it for a guest domain,
 * bridge its store connection to the in-process Xenstored, run jobs, close it.
 *
 * ```ts
 * const g = await FioGuest.start({ platform: hv.platformHandle(domid), daemon, frontOptions });
 * const { result, cpuNs } = await g.run('rw=randread bs=4k iodepth=32 runtime=2 time_based');
 * await g.close();
 * ```
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { XenpvError } from '../../base/index.js';
import type { BlkFeatures, BlkFrontOptions } from '../../devices/blk/index.js';
import type { PlatformHandle } from '../../hv/sim/platform.js';
import type { Xenstored } from '../../xenstore/server/index.js';
import type { GuestToHost } from './guest-protocol.js';
import type { FioResult } from './job.js';
import type { FioGuestBoot } from './guest-worker.js';
import { bridgeStore } from './store-bridge.js';

const WORKER = new URL('./guest-worker.js', import.meta.url);

export interface FioGuestOptions {
  readonly platform: PlatformHandle;
  readonly daemon: Xenstored;
  readonly frontOptions?: BlkFrontOptions;
  /** How long to wait for the disk to connect. Default 10 s. */
  readonly startTimeoutMs?: number;
}

export interface FioRunOutput {
  readonly result: FioResult;
  /** The guest thread's CPU time over the job, ns (undefined where not measurable). */
  readonly cpuNs: number | undefined;
}

type Pending = { resolve: (o: FioRunOutput) => void; reject: (e: Error) => void };

export class FioGuest {
  /** Console lines (fio's JSON lines among them). */
  readonly console: string[] = [];
  /** Set when the guest shut its domain down (a failed job). */
  shutdownInfo: { reason: string; message: string } | undefined;
  features: BlkFeatures | undefined;
  sectors = 0;
  private pending: Pending | undefined;
  private closed: ((unreclaimed: number) => void) | undefined;
  private exited = false;

  private constructor(private readonly worker: Worker) {}

  static start(options: FioGuestOptions): Promise<FioGuest> {
    const channel = new MessageChannel();
    const boot: FioGuestBoot = { platform: options.platform, store: channel.port2, frontOptions: options.frontOptions ?? {} };
    const worker = new Worker(WORKER, { workerData: boot, transferList: [channel.port2] });
    const bridge = bridgeStore(options.daemon, channel.port1, options.platform.domid);
    const guest = new FioGuest(worker);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new XenpvError('ETIMEDOUT', 'fio guest: the disk did not connect'));
        void worker.terminate();
      }, options.startTimeoutMs ?? 10_000);
      worker.on('message', (m: GuestToHost) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          guest.features = m.features;
          guest.sectors = m.sectors;
          resolve(guest);
        } else if (m.type === 'error' && guest.features === undefined) {
          clearTimeout(timer);
          reject(new XenpvError('EIO', `fio guest: ${m.message}`));
        }
        guest.onMessage(m);
      });
      worker.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
        guest.fail(err);
      });
      worker.on('exit', () => {
        clearTimeout(timer);
        guest.exited = true;
        bridge.dispose();
        guest.fail(new XenpvError('ESRCH', 'fio guest worker exited'));
        guest.closed?.(0);
      });
    });
  }

  private onMessage(m: GuestToHost): void {
    switch (m.type) {
      case 'console':
        this.console.push(m.line);
        return;
      case 'shutdown':
        this.shutdownInfo = { reason: m.reason, message: m.message };
        return;
      case 'result':
        this.take()?.resolve({ result: m.result, cpuNs: m.cpuNs });
        return;
      case 'error':
        this.take()?.reject(new XenpvError('EIO', `fio guest: ${m.message}`));
        return;
      case 'closed':
        this.closed?.(m.unreclaimedGrants);
        this.closed = undefined;
        return;
      case 'ready':
        return;
    }
  }

  private take(): Pending | undefined {
    const p = this.pending;
    this.pending = undefined;
    return p;
  }

  private fail(err: Error): void {
    this.take()?.reject(err);
  }

  /** Run one job (fio's `extra` syntax); resolves with its result, even a failed one. */
  run(args: string | readonly string[]): Promise<FioRunOutput> {
    if (this.pending !== undefined) return Promise.reject(new XenpvError('EBUSY', 'fio guest: a job is running'));
    if (this.exited) return Promise.reject(new XenpvError('ESRCH', 'fio guest worker exited'));
    const argv = typeof args === 'string' ? args.split(/\s+/).filter((w) => w !== '') : args;
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage({ type: 'run', argv });
    });
  }

  /** Close the disk (the backend unmaps) and end the worker; resolves with grants left unreclaimed. */
  async close(): Promise<number> {
    if (this.exited) return 0;
    const done = new Promise<number>((resolve) => (this.closed = resolve));
    this.worker.postMessage({ type: 'close' });
    const n = await done;
    await new Promise<void>((resolve) => (this.exited ? resolve() : this.worker.once('exit', () => resolve())));
    return n;
  }
}
