/**
 * blkback's synchronous data path, for a store that offers one (`BlockStorage.syncIo`: a
 * backend in a dom0 thread of its own on page-cache pread/pwrite).
 *
 * Requests come off the ring already validated (request.ts) with their grants mapped; their
 * data moves with preadv/pwritev straight between the file and the frontend's granted pages,
 * with no bounce buffer and no promise per request. Requests that follow each other on the
 * disk in the same direction join one run, moved by ONE syscall (a 1 MiB sequential read
 * that the frontend split into 128 KiB indirect requests costs one preadv, as natively). A
 * run is bounded by SYNC_IOV_MAX buffers and `MAX_RUN_BYTES`. Where the store moves many
 * transfers in one call (`syncIo.batch`: Linux AIO on a raw file), a pass's runs wait and go
 * together, up to BATCH_RUNS at a time: one io_submit for a pass of scattered 4 KiB reads.
 *
 * Each request still gets exactly one response with its own status (R19): when a run's
 * syscall fails, its requests are redone one by one, so only the failing ones answer ERROR.
 * The frontend may rewrite a WRITE's pages while we read them (its own race, as on Xen);
 * nothing it writes there can change what we validated, which was copied off the ring.
 */
import { performance } from 'node:perf_hooks';
import { BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import { errorCode } from '../../base/index.js';
import type { MappedPages } from './back-grants.js';
import type { DataPlan } from './request.js';
import { SECTOR_SIZE, SYNC_IOV_MAX, type SyncBlockIo, type SyncBlockOp } from './storage/types.js';

/** Bytes one run moves at most: bounds the time the queue spends in one syscall. */
export const MAX_RUN_BYTES = 4 << 20;

/**
 * Runs one batch moves at most (storage with `batch`: io_uring or Linux AIO). The requests of
 * a batch are answered together: too small a batch pays the submission per few requests, too
 * large a one leaves the frontend idle while it waits. With Linux AIO, 4 KiB random reads at
 * QD32 (alternating pairs against one pread per run) found 8 best with a frontend asking to be
 * woken after a quarter of what it has in flight (front-queue.ts wakeAfter), 16 with one
 * asking after half. With io_uring, whose submission costs less per transfer, 16 against 8 on
 * the same job: 6 of 6 rounds of 4 layouts, medians 687 k against 657 k IOPS, disk-thread CPU
 * 1.27 against 1.36 µs per read; 12 read as 16.
 */
export const BATCH_RUNS = 16;

/**
 * One request of a run. SyncRun owns these and reuses them (entry()): a caller fills one,
 * adds it, and must not keep it past the sink's `done` for it.
 */
export class RunEntry {
  idLow = 0;
  idHigh = 0;
  operation = 0;
  write = false;
  sector = 0;
  sectors = 0;
  mapped: MappedPages = NOTHING_MAPPED;
  /** Its buffers in its run's `bufs`: `bufCount` of them from `firstBuf`. */
  firstBuf = 0;
  bufCount = 0;
}

const NOTHING_MAPPED: MappedPages = { pages: [], release: () => undefined };

/** Reported runs kept for reuse: a batch's worth and the open run, a few over. */
const MAX_SPARE_RUNS = 2 * BATCH_RUNS + 2;

/** What a run reports back, per request (in the order they joined). */
export interface RunSink {
  done(entry: RunEntry, status: number, timeNs: number): void;
  log(msg: string): void;
}

/**
 * Requests that follow each other on the disk, moved by one transfer. A run is itself the
 * batch's op (`bufs` from `sector`, `bytes` long), so the sealed runs are the op list. Runs
 * are reused (SyncRun.spareRuns).
 */
interface Run extends SyncBlockOp {
  write: boolean;
  sector: number;
  bufs: Uint8Array[];
  bytes: number;
  entries: RunEntry[];
}

export class SyncRun {
  /** The run requests are joining. */
  private open: Run | undefined;
  /** Closed runs waiting for the batch (only with `io.batch`): the batch's op list. */
  private sealed: Run[] = [];
  /** The other op list, swapped with `sealed` per batch (no array per batch). */
  private moving: Run[] = [];
  private sealedBuffers = 0;
  /** The batch's per-op outcomes (reused: no array per batch). */
  private readonly errors: unknown[] = [];
  /** Entries answered, ready for `entry()`. */
  private readonly spare: RunEntry[] = [];
  /** Runs reported, ready for `newRun`. */
  private readonly spareRuns: Run[] = [];
  /** See `mark`. */
  private since = performance.now();
  /** Sectors of the requests added since `mark` (the serve pass's budget, back-queue.ts). */
  passSectors = 0;
  /** addMerged's [start, end) pairs (reused; a request has at most 2 × its segments). */
  private readonly spans: number[] = [];

  constructor(
    private readonly io: SyncBlockIo,
    private readonly sink: RunSink,
  ) {}

  /** An entry to fill and `add` (a reused one when there is one: its `mapped` is the released mapping of its last request). */
  entry(): RunEntry {
    return this.spare.pop() ?? new RunEntry();
  }

  /**
   * Add a request whose pages are mapped: it joins the open run, or starts the next one.
   * Segment i of `count` spans sectors first[i]..last[i] of `entry.mapped.pages[i]`.
   */
  add(entry: RunEntry, count: number, first: ArrayLike<number>, last: ArrayLike<number>): void {
    const mapped = entry.mapped;
    const buffer = mapped.buffer;
    if (count > 1 && buffer !== undefined && mapped.offsets !== undefined) return this.addMerged(entry, count, first, last, buffer, mapped.offsets);
    const bufs = this.join(entry, count);
    const pages = mapped.pages;
    for (let i = 0, at = entry.firstBuf; i < count; i++) bufs[at + i] = segmentView(pages[i]!, first[i]!, last[i]!);
  }

  /**
   * `add` for pages whose places in one buffer are known (MappedPages.offsets): segments that
   * follow each other there become one view. A frontend's 1 MiB buffer is usually contiguous
   * guest memory, so its 256 segments are one to a few views, and the storage engine resolves
   * a few addresses per MiB instead of 256 (linux-aio.ts writeIovecs: its per-view lookups were
   * ~8 % of a disk thread on 1 MiB reads). Each view spans only pages of the mapping.
   */
  private addMerged(entry: RunEntry, count: number, first: ArrayLike<number>, last: ArrayLike<number>, buffer: ArrayBufferLike, offsets: ArrayLike<number>): void {
    const spans = this.spans;
    let n = 0;
    let start = offsets[0]! + first[0]! * SECTOR_SIZE;
    let end = offsets[0]! + (last[0]! + 1) * SECTOR_SIZE;
    for (let i = 1; i < count; i++) {
      const s = offsets[i]! + first[i]! * SECTOR_SIZE;
      if (s !== end) {
        spans[n++] = start;
        spans[n++] = end;
        start = s;
      }
      end = offsets[i]! + (last[i]! + 1) * SECTOR_SIZE;
    }
    spans[n++] = start;
    spans[n++] = end;
    const views = n >>> 1;
    const bufs = this.join(entry, views);
    for (let k = 0, at = entry.firstBuf; k < views; k++) bufs[at + k] = new Uint8Array(buffer, spans[2 * k]!, spans[2 * k + 1]! - spans[2 * k]!);
  }

  /** `add` for a request validated as a DataPlan (indirect requests). */
  addPlan(entry: RunEntry, data: DataPlan): void {
    const bufs = this.join(entry, data.segments.length);
    const pages = entry.mapped.pages;
    const segs = data.segments;
    for (let i = 0, at = entry.firstBuf; i < segs.length; i++) bufs[at + i] = segmentView(pages[i]!, segs[i]!.first_sect, segs[i]!.last_sect);
  }

  /**
   * Put `entry` (of `count` buffers) in the open run, starting a new one when it does not
   * follow; the run's buffers, where the caller sets the entry's from `entry.firstBuf`. A new
   * run's arrays are made at their size (a 4 KiB random read is a run of its own: growing
   * empty arrays per request showed in the profile).
   */
  private join(entry: RunEntry, count: number): Uint8Array[] {
    entry.bufCount = count;
    this.passSectors += entry.sectors;
    const run = this.open;
    if (run !== undefined && joins(run, entry, count)) {
      entry.firstBuf = run.bufs.length;
      run.bufs.length += count;
      run.entries.push(entry);
      run.bytes += entry.sectors * SECTOR_SIZE;
      return run.bufs;
    }
    if (run !== undefined) this.seal(run);
    entry.firstBuf = 0;
    const next = this.newRun(entry, count);
    this.open = next;
    return next.bufs;
  }

  /**
   * A run holding `entry` alone, with room for its `count` buffers: a reported one reused when
   * there is one (three objects per 4 KiB random read were the thread's most frequent
   * allocation), its arrays resized only when their length differs (a length store is a
   * runtime call in V8, even to the same length).
   */
  private newRun(entry: RunEntry, count: number): Run {
    const run = this.spareRuns.pop();
    if (run === undefined) {
      return { write: entry.write, sector: entry.sector, bytes: entry.sectors * SECTOR_SIZE, bufs: new Array<Uint8Array>(count), entries: [entry] };
    }
    run.write = entry.write;
    run.sector = entry.sector;
    run.bytes = entry.sectors * SECTOR_SIZE;
    if (run.bufs.length !== count) run.bufs.length = count;
    if (run.entries.length !== 1) run.entries.length = 1;
    run.entries[0] = entry;
    return run;
  }

  /**
   * A reported run back to `spareRuns`; its buffers and entries are overwritten when it is
   * reused, never read before. A run of more than one buffer (sequential I/O, rare and large)
   * is let go instead, so that the pool holds no long arrays of the frontend's pages.
   */
  private recycle(run: Run): void {
    if (run.bufs.length === 1 && this.spareRuns.length < MAX_SPARE_RUNS) this.spareRuns.push(run);
  }

  /**
   * Start of a serve pass: the clock reading that the first run's time counts from. A run's
   * time is from the previous mark (the pass start or the end of the previous transfer: when
   * its requests were taken off the ring) to the end of its transfer, one clock read per transfer.
   */
  mark(): void {
    this.since = performance.now();
    this.passSectors = 0;
  }

  /** Move every pending run's data, release its mappings, report every request. */
  flush(): void {
    if (this.open !== undefined) {
      const run = this.open;
      this.open = undefined;
      this.seal(run);
    }
    this.flushSealed();
  }

  /** Drop the pending runs without moving anything (the queue is closing): only release the mappings. */
  discard(): void {
    const runs = this.sealed;
    if (this.open !== undefined) runs.push(this.open);
    this.open = undefined;
    this.sealed = [];
    this.sealedBuffers = 0;
    for (const r of runs) for (const e of r.entries) e.mapped.release();
  }

  /**
   * A run is complete. Without a batch it moves at once (one syscall per run); with one it
   * waits for the batch, which moves when it holds BATCH_RUNS runs or cannot take the next.
   */
  private seal(run: Run): void {
    const batch = this.io.batch;
    if (batch === undefined) return this.transfer(run);
    if (this.sealed.length >= Math.min(BATCH_RUNS, batch.maxOps) || this.sealedBuffers + run.bufs.length > batch.maxBuffers) this.flushSealed();
    this.sealed.push(run);
    this.sealedBuffers += run.bufs.length;
  }

  private flushSealed(): void {
    const runs = this.sealed;
    if (runs.length === 0) return;
    // Swap the op lists: a report may add requests (none today), which go to the other list.
    this.sealed = this.moving;
    this.moving = runs;
    this.sealedBuffers = 0;
    // A lone run of one buffer is one pread; anything more goes through the batch, which also
    // spares Node's preadv binding its per-buffer checks (a 4 MiB run has 1024 buffers).
    if (runs.length === 1 && runs[0]!.bufs.length === 1) {
      const run = runs[0]!;
      runs.length = 0;
      return this.transfer(run);
    }
    const errors = this.errors;
    for (let i = 0; i < runs.length; i++) errors[i] = undefined;
    try {
      this.io.batch!.run(runs, errors);
    } catch (err) {
      for (let i = 0; i < runs.length; i++) errors[i] = err;
    }
    const timeNs = this.lap();
    const n = runs.length;
    for (let i = 0; i < n; i++) {
      const failed = errors[i];
      errors[i] = undefined; // not kept alive until the next batch
      this.report(runs[i]!, failed, timeNs);
    }
    for (let i = 0; i < n; i++) this.recycle(runs[i]!);
    runs.length = 0;
  }

  /** One run, one syscall. */
  private transfer(run: Run): void {
    let failed: unknown;
    try {
      this.move(run.write, run.sector, run.bufs);
    } catch (err) {
      failed = err;
    }
    this.report(run, failed, this.lap());
    this.recycle(run);
  }

  /**
   * Release a moved run's mappings and answer its requests; a failed run of several is redone
   * one by one. An answered entry goes back to `spare`.
   */
  private report(run: Run, failed: unknown, timeNs: number): void {
    const entries = run.entries;
    if (failed !== undefined && entries.length > 1) return this.oneByOne(run);
    const status = failed === undefined ? BLKIF_RSP_OKAY : this.statusOf(failed);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      e.mapped.release();
      this.sink.done(e, status, timeNs);
      this.spare.push(e);
    }
  }

  /** After a failed run: each request on its own, a run of one, so each gets its own status. */
  private oneByOne(run: Run): void {
    for (const e of run.entries) {
      const bufs = run.bufs.slice(e.firstBuf, e.firstBuf + e.bufCount);
      e.firstBuf = 0;
      this.transfer({ write: run.write, sector: e.sector, bytes: e.sectors * SECTOR_SIZE, bufs, entries: [e] });
    }
  }

  /** Nanoseconds since the previous mark or transfer's end; now is the next one's start (see `mark`). */
  private lap(): number {
    const end = performance.now();
    const ns = Math.round((end - this.since) * 1e6);
    this.since = end;
    return ns;
  }

  private move(write: boolean, sector: number, iov: readonly Uint8Array[]): void {
    if (write) this.io.writev(sector, iov);
    else this.io.readv(sector, iov);
  }

  private statusOf(err: unknown): number {
    return storageStatus(err, (msg) => this.sink.log(msg));
  }
}

/**
 * The blkif status a storage error is answered with (EOPNOTSUPP as such, anything else ERROR),
 * the error logged. Both of blkback's data paths (this one and back-queue's asynchronous one).
 */
export function storageStatus(err: unknown, log: (msg: string) => void): number {
  const code = errorCode(err);
  log(`storage: ${code ?? ''} ${err instanceof Error ? err.message : String(err)}`);
  return code === 'EOPNOTSUPP' ? BLKIF_RSP_EOPNOTSUPP : BLKIF_RSP_ERROR;
}

/** True when `entry` (of `count` buffers) may join `run`: same direction, next on the disk, within the bounds. */
function joins(run: Run, entry: RunEntry, count: number): boolean {
  return (
    entry.write === run.write &&
    entry.sector === run.sector + run.bytes / SECTOR_SIZE &&
    run.bufs.length + count <= SYNC_IOV_MAX &&
    run.bytes + entry.sectors * SECTOR_SIZE <= MAX_RUN_BYTES
  );
}

/** A segment's bytes in its page: a whole-page segment is the mapped page itself (MappedPages: whole 4 KiB pages), a partial one a view. */
function segmentView(page: Uint8Array, first: number, last: number): Uint8Array {
  return first === 0 && last === 7 ? page : page.subarray(first * 512, (last + 1) * 512);
}
