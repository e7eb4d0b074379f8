/**
 * fio's submit engine, for a disk with `submit` (io_submit's model, fio's libaio engine):
 * every buffer's first I/O is started at once, each next one from the completion of the
 * last, as fio reaps and requeues; no promise and no async-function resume per I/O. What it
 * picks, records and verifies is the job's (run.ts), as in the async-worker engine.
 */
import { BurstClock } from '../../base/index.js';
import type { IoDone } from './job.js';
import { now, Run } from './run.js';

/** What each buffer has in flight, by buffer index (the I/O's tag). */
interface Flight {
  /** Block numbers: a Float64Array, since bs=512 on a disk past 1 TiB has blocks past 2^31. */
  readonly block: Float64Array;
  readonly write: Uint8Array;
  readonly timed: Uint8Array;
  readonly gen: Uint32Array;
  /** Issue times (ns). */
  readonly t0: Float64Array;
}

export class SubmitRun extends Run {
  private readonly flight: Flight = newFlight(this.buffers.length);
  /** Buffers with an I/O in flight, and what resolves issueAll once none has. */
  private running = 0;
  private allDone: () => void = () => undefined;
  /**
   * The submit engine's clock: one reading for a burst of completions drained together, as
   * fio stamps every completion of one reap with one reading; the I/O each one starts next
   * takes it as its issue time (startNext). A latency is then off by at most the burst's own
   * processing (a few µs at QD32, against ~60 µs), and not biased: mean latency equals
   * iodepth / IOPS (Little's law) to 0.01 µs over 6 runs of bench block randread QD32, as it
   * did with two readings per I/O. Saves ~40 ns per I/O.
   */
  private readonly burst = new BurstClock(now);

  /** Resolves once no buffer has I/O in flight and none can start. */
  override issueAll(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.allDone = resolve;
      for (let i = 0; i < this.buffers.length; i++) if (this.startNext(this.flight, i, -1)) this.running++;
      if (this.running === 0) resolve();
    });
  }

  /**
   * Issue buffer `i`'s next I/O; false when the job has none left for it or it was refused.
   * `at`: the clock reading of the completion burst this follows (-1: none), taken as the issue
   * time when nothing slower than picking the block came between. With verify (a crc over the
   * block on either side) the clock is read anew.
   */
  private startNext(f: Flight, i: number, at: number): boolean {
    if (!this.next()) return false;
    const buf = this.buffers[i]!;
    const write = this.nextWrite;
    const block = this.nextBlock;
    const offset = this.r.start + block * this.job.bs;
    const scratch = this.scratch;
    f.gen[i] = write && scratch !== undefined ? this.fillWrite(buf, scratch, block, offset) : 0;
    // Recorded before the submit: the completion finds it there however early it comes.
    f.block[i] = block;
    f.write[i] = write ? 1 : 0;
    f.timed[i] = this.nextTimed ? 1 : 0;
    f.t0[i] = scratch !== undefined || at < 0 ? now() : at;
    const err = this.disk.submit!(write, offset / 512, buf, this.onDone, i);
    if (err === undefined) return true;
    // An error stops the job (ioError sets its failure): no next I/O to try instead.
    this.ioError(write ? 'write' : 'read', offset, err);
    if (this.busy !== undefined) this.busy[block] = 0;
    return false;
  }

  /** A submitted I/O completed: record it as the worker does, then start the buffer's next one. */
  private readonly onDone: IoDone = (i, err) => {
    const f = this.flight;
    const block = f.block[i]!;
    const write = f.write[i] === 1;
    const offset = this.r.start + block * this.job.bs;
    // With verify an I/O's issue time is a fresh reading (startNext), so its completion's must
    // be too: the burst's may predate it when the disk answered that I/O within the same burst
    // (a drain that finds the just-submitted I/O done), and the latency came out negative.
    this.lastNow = this.scratch !== undefined ? now() : this.burst.now();
    if (err !== undefined) this.ioError(write ? 'write' : 'read', offset, err);
    else {
      const latency = f.timed[i] === 1 ? this.lastNow - f.t0[i]! : undefined;
      if (write) this.wrote(block, f.gen[i]!, latency);
      else this.readDone(this.buffers[i]!, block, offset, latency);
    }
    if (this.busy !== undefined) this.busy[block] = 0;
    if (!this.startNext(f, i, this.lastNow) && --this.running === 0) this.allDone();
  };
}

function newFlight(n: number): Flight {
  return { block: new Float64Array(n), write: new Uint8Array(n), timed: new Uint8Array(n), gen: new Uint32Array(n), t0: new Float64Array(n) };
}
