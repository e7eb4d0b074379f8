/**
 * Waiting for a device fd (/dev/xen/evtchn, /dev/xen/xenbus) without blocking the event loop:
 * `poll(2)` with a short timeout runs on koffi's worker thread, its answer comes back to this
 * thread as a callback, and only then does this thread read, which no longer blocks.
 * The timeout bounds how long `stop()` waits for the outstanding poll (R: every wait finite).
 */
import { POLLERR, POLLHUP, POLLIN, POLLNVAL, type Native } from './ffi.js';

const POLL_TIMEOUT_MS = 100;

export class FdPoller {
  private running = false;
  private inFlight = false;
  private readonly pollfd = new Uint8Array(8);
  private idleResolve: (() => void) | undefined;

  constructor(
    private readonly native: Native,
    private readonly fd: number,
    /** Called on this thread when the fd is readable. */
    private readonly onReadable: () => void,
    /** Called once when the fd reports an error or hang-up; the poller stops. */
    private readonly onBroken: (revents: number) => void,
  ) {
    const dv = new DataView(this.pollfd.buffer);
    dv.setInt32(0, fd, true);
    dv.setInt16(4, POLLIN, true);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.arm();
  }

  /** Stop polling; resolves when no poll call is outstanding (within ~100 ms). */
  stop(): Promise<void> {
    this.running = false;
    if (!this.inFlight) return Promise.resolve();
    return new Promise((resolve) => (this.idleResolve = resolve));
  }

  private arm(): void {
    if (!this.running || this.inFlight) return;
    this.inFlight = true;
    new DataView(this.pollfd.buffer).setInt16(6, 0, true);
    this.native.pollAsync(this.pollfd, 1, POLL_TIMEOUT_MS, (err, rc) => this.answered(err, rc));
  }

  private answered(err: unknown, rc: number): void {
    this.inFlight = false;
    this.idleResolve?.();
    this.idleResolve = undefined;
    if (!this.running) return;
    const revents = new DataView(this.pollfd.buffer).getInt16(6, true);
    if (err === null && rc > 0) {
      if ((revents & (POLLERR | POLLHUP | POLLNVAL)) !== 0 && (revents & POLLIN) === 0) {
        this.running = false;
        this.onBroken(revents);
        return;
      }
      if ((revents & POLLIN) !== 0) this.onReadable();
    }
    this.arm();
  }
}
