/**
 * How often a dead backend thread is started again: systemd's `Restart=on-failure` with a
 * start limit (`StartLimitBurst` within `StartLimitIntervalSec`) and a growing delay, so that
 * a backend that dies once (a bug hit by one request, a thread out of memory) comes back in
 * milliseconds, and one that dies at every start (an image gone, a bug hit at connect) stops
 * being tried instead of spinning.
 */
export interface RestartPolicy {
  /** Restarts allowed within `windowMs`; the next death in the window leaves the device down. */
  readonly maxRestarts: number;
  readonly windowMs: number;
  /** The wait before the first restart of a window, doubled for each further one, at most `maxDelayMs`. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { maxRestarts: 5, windowMs: 60_000, firstDelayMs: 50, maxDelayMs: 2_000 };

export class RestartBudget {
  /** When each restart of the current window was granted. */
  private readonly granted: number[] = [];

  constructor(
    readonly policy: RestartPolicy,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Grant one more restart: the delay before it, or undefined when the window's restarts are spent. */
  next(): number | undefined {
    const t = this.now();
    const p = this.policy;
    while (this.granted.length > 0 && t - this.granted[0]! >= p.windowMs) this.granted.shift();
    if (this.granted.length >= p.maxRestarts) return undefined;
    const delay = Math.min(p.maxDelayMs, p.firstDelayMs * 2 ** this.granted.length);
    this.granted.push(t);
    return delay;
  }
}
