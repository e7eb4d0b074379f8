/**
 * A clock read once per burst of work: every caller in one run of synchronous code (a
 * completion drain, a submit loop) gets the same reading, until the microtask that the first
 * reading queued runs; the next burst reads the clock again. At 4 KiB and queue depth 32, a clock read per I/O and per completion
 * was about a tenth of a guest's CPU; a burst's readings are off by at most the burst's own
 * processing (a few µs, against latencies of tens). fio stamps the completions of one reap
 * with one reading the same way.
 */
import { microtask } from './microtask.js';

export class BurstClock {
  private reading = -1;
  private readonly end = (): void => {
    this.reading = -1;
  };

  /** `read`: the clock itself (positive readings), performance.now() by default. */
  constructor(private readonly read: () => number = () => performance.now()) {}

  /** The burst's reading: the clock read by the first call of the burst. */
  now(): number {
    if (this.reading < 0) {
      this.reading = this.read();
      microtask(this.end);
    }
    return this.reading;
  }
}
