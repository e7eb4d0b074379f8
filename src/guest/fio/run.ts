/**
 * A running fio job (job.ts): what it issues next, what it records, its verify state, and its
 * async-worker engine for a disk that answers by promise: `iodepth` workers each own one
 * buffer and loop (pick the next block, issue, wait, record the latency), so exactly
 * `iodepth` requests are in flight while there is work, as fio's libaio engine keeps its
 * queue full. A disk with `submit` runs the submit engine instead (submit-run.ts).
 */
import { performance } from 'node:perf_hooks';
import { randomInt } from 'node:crypto';
import { xorshift32 } from '../../base/index.js';
import type { FioJob } from './args.js';
import type { FioBuffer, FioDisk } from './job.js';
import { IoStats } from './stats.js';
import { checkBlock, fillBlock } from './verify.js';

/** The part of the disk a job covers: `blocks` blocks of `bs` bytes from byte `start`. */
export interface Region {
  readonly start: number;
  readonly blocks: number;
}

/** The job's clock (ns). The imported performance: the global one is a lazy accessor that costs a lookup per call. */
export const now = (): number => performance.now() * 1e6;

export class Run {
  readonly read = new IoStats();
  readonly write = new IoStats();
  errors = 0;
  verified = 0;
  failure: string | undefined;
  private issued = 0;
  /** The operation next() picked. */
  protected nextWrite = false;
  protected nextBlock = 0;
  protected nextTimed = false;
  private seqCursor = 0;
  private readonly random: () => number;
  /** Where the timed phase starts (after ramp_time): I/O issued before it is not counted. */
  readonly timedFrom: number;
  private readonly deadline: number;
  /** The latest completion's clock reading: the deadline check reuses it (no clock read per I/O for it). */
  protected lastNow: number;
  private readonly writes: boolean;
  /** Verify state: last generation written per block, written flags, blocks with I/O in flight. */
  private readonly gen: Uint32Array | undefined;
  private readonly written: Uint8Array | undefined;
  protected readonly busy: Uint8Array | undefined;
  /** Generations of this run start at a random value, so a stale block from an earlier run is caught. */
  private readonly epoch = randomInt(1, 2 ** 31);
  /**
   * Verify's block scratch: each use (fill then copy in, copy out then check) runs without a
   * pause, so one serves every buffer, both engines and the verify phase.
   */
  protected readonly scratch: Uint8Array | undefined;

  constructor(
    protected readonly disk: FioDisk,
    protected readonly job: FioJob,
    protected readonly r: Region,
    start: number,
    /** One per request in flight: iodepth of them (fewer for a verifying job over fewer blocks). */
    protected readonly buffers: readonly FioBuffer[],
  ) {
    this.random = xorshift32(job.seed);
    this.timedFrom = start + job.rampMs * 1e6;
    this.deadline = job.runtimeMs > 0 ? this.timedFrom + job.runtimeMs * 1e6 : Infinity;
    this.lastNow = start;
    this.writes = job.rw === 'write' || job.rw === 'randwrite' || job.rw === 'randrw';
    if (job.verify === 'crc32c') {
      this.gen = new Uint32Array(r.blocks);
      this.written = new Uint8Array(r.blocks);
      this.busy = new Uint8Array(r.blocks);
    }
    this.scratch = this.gen !== undefined ? new Uint8Array(job.bs) : undefined;
  }

  get stopped(): boolean {
    return this.failure !== undefined;
  }

  /** The ramp and the timed phase: resolves once no I/O is in flight and none can start. */
  async issueAll(): Promise<void> {
    await Promise.all(this.buffers.map((b) => this.worker(b)));
  }

  /** Pick the next operation into nextWrite/nextBlock (no record per I/O); false when the job is done. */
  protected next(): boolean {
    if (this.stopped || this.lastNow >= this.deadline) return false;
    if (!this.job.timeBased && this.issued >= this.r.blocks) return false;
    // An I/O issued in the ramp is never counted, even when it completes after it; a
    // size-bound job moves `size` bytes in its timed phase, the ramp's on top.
    this.nextTimed = this.lastNow >= this.timedFrom;
    if (this.nextTimed) this.issued++;
    const rw = this.job.rw;
    this.nextWrite = rw === 'write' || rw === 'randwrite' || (rw === 'randrw' && this.random() % 100 >= this.job.rwmixread);
    let block = rw === 'read' || rw === 'write' ? this.seqCursor++ % this.r.blocks : this.randomBlock();
    if (this.busy !== undefined) {
      // With verify, never two I/Os on one block at once: take the next free one.
      while (this.busy[block] !== 0) block = (block + 1) % this.r.blocks;
      this.busy[block] = 1;
    }
    this.nextBlock = block;
    return true;
  }

  /**
   * A random block of the region. One draw covers 2^32 blocks; a larger region (bs=512 past
   * 2 TiB) takes two, so every block can be picked.
   */
  private randomBlock(): number {
    const blocks = this.r.blocks;
    if (blocks <= 2 ** 32) return this.random() % blocks;
    return (this.random() * 2 ** 32 + this.random()) % blocks;
  }

  /**
   * Issue, wait, record, as fio does per I/O: the clock read right before the request and
   * right after it completes. One await per I/O (the disk's own promise), no helper promise.
   */
  private async worker(buf: FioBuffer): Promise<void> {
    const bs = this.job.bs;
    const scratch = this.scratch;
    while (this.next()) {
      const write = this.nextWrite;
      const block = this.nextBlock;
      const timed = this.nextTimed;
      const offset = this.r.start + block * bs;
      try {
        const gen = write && scratch !== undefined ? this.fillWrite(buf, scratch, block, offset) : 0;
        const t0 = now();
        try {
          await (write ? this.disk.write(offset / 512, buf) : this.disk.read(offset / 512, buf));
        } catch (err) {
          this.ioError(write ? 'write' : 'read', offset, err);
          continue;
        }
        this.lastNow = now();
        const latency = timed ? this.lastNow - t0 : undefined;
        if (write) this.wrote(block, gen, latency);
        else this.readDone(buf, block, offset, latency);
      } finally {
        if (this.busy !== undefined) this.busy[block] = 0;
      }
    }
  }

  /** Verify: the block's next generation, its header and pattern put in `buf`. */
  protected fillWrite(buf: FioBuffer, scratch: Uint8Array, block: number, offset: number): number {
    const gen = this.written![block] === 0 ? this.epoch : (this.gen![block]! + 1) >>> 0;
    fillBlock(scratch, offset, gen, this.job.seed);
    buf.copyIn(0, scratch);
    return gen;
  }

  /** A write completed: record it (its latency; undefined during the ramp) and what it wrote. */
  protected wrote(block: number, gen: number, latencyNs: number | undefined): void {
    if (latencyNs !== undefined) this.write.record(this.job.bs, latencyNs);
    if (this.gen !== undefined) {
      this.gen[block] = gen;
      this.written![block] = 1;
    }
  }

  /** A read completed: record it (its latency; undefined in the ramp and the verify phase) and check the block. */
  protected readDone(buf: FioBuffer, block: number, offset: number, latencyNs: number | undefined): void {
    if (latencyNs !== undefined) this.read.record(this.job.bs, latencyNs);
    const scratch = this.scratch;
    if (scratch === undefined) return;
    const mine = this.written![block] !== 0;
    // A block a writing job has not written yet holds whatever was there: nothing to check.
    if (!mine && this.writes) return;
    buf.copyOut(0, scratch);
    const why = checkBlock(scratch, offset, mine ? this.gen![block] : undefined);
    this.verified++;
    if (why !== undefined) this.failure ??= `verify failed at offset ${offset} (block ${block}): ${why}`;
  }

  /** The verify phase's untimed read of a block. */
  private async readBack(buf: FioBuffer, block: number, offset: number): Promise<void> {
    try {
      await this.disk.read(offset / 512, buf);
    } catch (err) {
      return this.ioError('read', offset, err);
    }
    this.lastNow = now();
    this.readDone(buf, block, offset, undefined);
  }

  protected ioError(op: string, offset: number, err: unknown): void {
    this.errors++;
    this.failure ??= `${op} error at offset ${offset}: ${err instanceof Error ? err.message : String(err)}`;
  }

  /** fio's verify phase: read back every block this job wrote, one worker per buffer. */
  async verifyPhase(): Promise<void> {
    if (this.written === undefined || !this.writes || this.stopped) return;
    let cursor = 0;
    const worker = async (buf: FioBuffer): Promise<void> => {
      while (!this.stopped && cursor < this.r.blocks) {
        const block = cursor++;
        if (this.written![block] === 0) continue;
        await this.readBack(buf, block, this.r.start + block * this.job.bs);
      }
    };
    await Promise.all(this.buffers.map(worker));
  }
}
