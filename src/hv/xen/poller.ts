/**
 * Reading a device fd (/dev/xen/evtchn, /dev/xen/xenbus) without blocking the event loop:
 * one blocking read(2) at a time runs on libuv's thread pool (fs.read), its bytes come back
 * to this thread as a callback, and the next read is issued then.
 *
 * Why not poll(2) through koffi's asynchronous calls: that was the first design, and on a real
 * dom0 it corrupted the malloc heap within seconds of the first event (koffi's async call
 * re-armed from its own callback); plain fs.read on the thread pool has no native code of ours
 * on another thread at all.
 *
 * A blocking read returns only when the device has data, so `stop()` takes a `wake` function
 * that makes some arrive (a loopback event, a store request); stop resolves when the last read
 * has come back, bounded by `STOP_TIMEOUT_MS`, or at once when `start()` takes that read back.
 *
 * A read that returns 0 is end of file (the device or the pipe's writer went away): every
 * further read would return 0 at once, so the reader ends there for good and says so once.
 */
import { read } from 'node:fs';
import { errorCode } from '../../base/index.js';

const STOP_TIMEOUT_MS = 2000;

export class FdReader {
  private running = false;
  private inFlight = false;
  private ended = false;
  /** Set while stop() waits for the outstanding read; one wait shared by every stop() call. */
  private stopping: { readonly done: Promise<void>; readonly finish: () => void } | undefined;
  private readonly buf: Uint8Array;

  constructor(
    private readonly fd: number,
    bufSize: number,
    /** Called on this thread with the bytes of each read (a copy). */
    private readonly onData: (bytes: Uint8Array) => void,
    /** Called once when a read fails; the reader stops. */
    private readonly onError: (err: Error) => void,
    /** Called once when a read returns 0 (end of file); the reader ends and start() does nothing after. */
    private readonly onEnd: () => void,
  ) {
    // Off the V8 heap (> 64 bytes): the thread pool writes into it while this thread runs.
    this.buf = new Uint8Array(Math.max(bufSize, 128));
  }

  get reading(): boolean {
    return this.running;
  }

  /**
   * Start, or resume after stop(). A read still blocked from before the stop is kept, and its
   * bytes are delivered: a second read would race it for the device's data, and dropping what
   * it returns would lose events. So the stop that waited for it has nothing left to wait for.
   */
  start(): void {
    if (this.running || this.ended) return;
    this.running = true;
    this.endStopWait();
    this.arm();
  }

  /** Stop; if a read is outstanding, `wake()` must make the device answer it (called once per wait). */
  stop(wake: () => void): Promise<void> {
    this.running = false;
    if (!this.inFlight) return Promise.resolve();
    if (this.stopping !== undefined) return this.stopping.done;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.endStopWait(), STOP_TIMEOUT_MS);
      timer.unref();
      finish = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.stopping = { done, finish };
    try {
      wake();
    } catch {
      // Nothing to wake it with: the timeout ends the wait; the read stays with the pool.
    }
    return done;
  }

  private endStopWait(): void {
    const s = this.stopping;
    this.stopping = undefined;
    s?.finish();
  }

  private arm(): void {
    if (!this.running || this.inFlight) return;
    this.inFlight = true;
    read(this.fd, this.buf, 0, this.buf.length, null, (err, n) => this.answered(err, n));
  }

  private answered(err: NodeJS.ErrnoException | null, n: number): void {
    this.inFlight = false;
    if (!this.running) return this.endStopWait();
    if (err !== null) {
      if (errorCode(err) === 'EINTR' || errorCode(err) === 'EAGAIN') return void setTimeout(() => this.arm(), 10);
      this.running = false;
      this.onError(err);
      return;
    }
    if (n === 0) {
      // read(2): "zero indicates end of file". Re-arming would spin on it.
      this.running = false;
      this.ended = true;
      this.onEnd();
      return;
    }
    this.onData(this.buf.slice(0, n));
    this.arm();
  }
}
