/**
 * The event discipline shared by every xenbus end (reliability.md R7, XSA-349).
 *
 * A peer can rewrite its `state` node as fast as it likes. Watch events are therefore only
 * hints: each one sets a "dirty" flag, and one step at a time re-reads the current values
 * and acts on those. However many events arrive while a step runs, at most one more step
 * follows it, so a flapping peer costs one pending step, never a queue.
 */
import type { Disposable } from '../base/index.js';
import type { XsWatch } from '../xenstore/client/index.js';

export class Reactor implements Disposable {
  private dirty = false;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly step: () => Promise<void>,
    /** Errors a step threw (the connection dropped...); the reactor keeps going. */
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Ask for a step; coalesces with any already pending. */
  kick(): void {
    if (this.stopped) return;
    this.dirty = true;
    this.running ??= this.run();
  }

  /** Resolves when no step is running or pending. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** No further steps start; a running one finishes (await `idle()` for it). */
  dispose(): void {
    this.stopped = true;
  }

  private async run(): Promise<void> {
    try {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        try {
          await this.step();
        } catch (err) {
          this.onError(err);
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}

/**
 * Feed a watch's events to `onEvent` until the watch ends. The watch's own queue is bounded;
 * its lost-events marker is just one more event here.
 */
export function pumpWatch(watch: XsWatch, onEvent: (path: string) => void, onEnd?: (err?: unknown) => void): void {
  void (async () => {
    try {
      for await (const ev of watch) onEvent(ev.path);
      onEnd?.();
    } catch (err) {
      onEnd?.(err);
    }
  })();
}

/** At most `max` occurrences in any `windowMs`: a bound on reconnect cycles (R9, hostile peers). */
export class RateBudget {
  private readonly times: number[] = [];

  constructor(
    readonly max: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Record one occurrence; false when it exceeds the budget. */
  take(): boolean {
    const t = this.now();
    while (this.times.length > 0 && t - this.times[0]! >= this.windowMs) this.times.shift();
    if (this.times.length >= this.max) return false;
    this.times.push(t);
    return true;
  }
}
