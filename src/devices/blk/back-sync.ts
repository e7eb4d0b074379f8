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
 * Runs one batch moves at most (storage with `batch`, Linux AIO). The requests of a batch are
 * answered together: too small a batch pays the submission per few requests, too large a one
 * leaves the frontend idle while it waits. The right size is where the frontend asks to be
 * woken: xenpv's blkfront at QD32 asks after a quarter of what is in flight, 8 (front-queue.ts
 * wakeAfter). 4 KiB random reads at QD32, alternating pairs against one pread per run, with a
 * frontend asking after half: 4 → 0.95×, 8 → 0.97×, 16 → 1.16×, 32 → 0.78×; then with a
 * frontend asking after a quarter, 8 was 1.21× the best of those (16 with a half).
 */
export const BATCH_RUNS = 8;

export interface RunEntry {
  readonly id: bigint;
  readonly operation: number;
  readonly data: DataPlan;
  readonly mapped: MappedPages;
}

/** What a run reports back, per request (in the order they joined). */
export interface RunSink {
  done(entry: RunEntry, status: number, timeNs: number): void;
  log(msg: string): void;
}

/**
 * Requests that follow each other on the disk, moved by one transfer. A run is itself the
 * batch's op (`bufs` from `sector`, `bytes` long), so the sealed runs are the op list.
 */
interface Run extends SyncBlockOp {
  readonly bufs: Uint8Array[];
  bytes: number;
  readonly entries: RunEntry[];
}

export class SyncRun {
  /** The run requests are joining. */
  private open: Run | undefined;
  /** Closed runs waiting for the batch (only with `io.batch`): the batch's op list. */
  private sealed: Run[] = [];
  private sealedBuffers = 0;
  /** The batch's per-op outcomes (reused: no array per batch). */
  private readonly errors: unknown[] = [];
  /** See `mark`. */
  private since = performance.now();

  constructor(
    private readonly io: SyncBlockIo,
    private readonly sink: RunSink,
  ) {}

  /** Add a request whose pages are mapped: it joins the open run, or starts the next one. */
  add(entry: RunEntry): void {
    const { data, mapped } = entry;
    let run = this.open;
    if (run !== undefined && !joins(run, data)) {
      this.seal(run);
      run = undefined;
    }
    if (run === undefined) {
      run = { write: data.write, sector: data.sector, bytes: 0, bufs: [], entries: [] };
      this.open = run;
    }
    run.entries.push(entry);
    pushSegments(run.bufs, data, mapped.pages);
    run.bytes += data.sectors * SECTOR_SIZE;
  }

  /**
   * Start of a serve pass: the clock reading that the first run's time counts from. A run's
   * time is from the previous mark (the pass start or the end of the previous transfer: when
   * its requests were taken off the ring) to the end of its transfer, one clock read per transfer.
   */
  mark(): void {
    this.since = performance.now();
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
    this.sealed = [];
    this.sealedBuffers = 0;
    // A lone run of one buffer is one pread; anything more goes through the batch, which also
    // spares Node's preadv binding its per-buffer checks (a 4 MiB run has 1024 buffers).
    if (runs.length === 1 && runs[0]!.bufs.length === 1) return this.transfer(runs[0]!);
    const errors = this.errors;
    for (let i = 0; i < runs.length; i++) errors[i] = undefined;
    try {
      this.io.batch!.run(runs, errors);
    } catch (err) {
      for (let i = 0; i < runs.length; i++) errors[i] = err;
    }
    const timeNs = this.lap();
    for (let i = 0; i < runs.length; i++) {
      const failed = errors[i];
      errors[i] = undefined; // not kept alive until the next batch
      this.report(runs[i]!, failed, timeNs);
    }
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
  }

  /** Release a moved run's mappings and answer its requests; a failed run of several is redone one by one. */
  private report(run: Run, failed: unknown, timeNs: number): void {
    const entries = run.entries;
    if (failed !== undefined && entries.length > 1) return this.oneByOne(run.write, entries);
    const status = failed === undefined ? BLKIF_RSP_OKAY : this.statusOf(failed);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      e.mapped.release();
      this.sink.done(e, status, timeNs);
    }
  }

  /** After a failed run: each request on its own, a run of one, so each gets its own status. */
  private oneByOne(write: boolean, entries: readonly RunEntry[]): void {
    for (const e of entries) {
      const bufs: Uint8Array[] = [];
      pushSegments(bufs, e.data, e.mapped.pages);
      this.transfer({ write, sector: e.data.sector, bytes: e.data.sectors * SECTOR_SIZE, bufs, entries: [e] });
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

/** True when `data` may join `run`: same direction, next on the disk, within the bounds. */
function joins(run: Run, data: DataPlan): boolean {
  return (
    data.write === run.write &&
    data.sector === run.sector + run.bytes / SECTOR_SIZE &&
    run.bufs.length + data.segments.length <= SYNC_IOV_MAX &&
    run.bytes + data.sectors * SECTOR_SIZE <= MAX_RUN_BYTES
  );
}

/** The request's bytes in its pages, in order: whole pages as they are, partial ones as views. */
function pushSegments(iov: Uint8Array[], data: DataPlan, pages: readonly Uint8Array[]): void {
  const segs = data.segments;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const page = pages[i]!;
    // Mapped pages are whole 4 KiB pages (MappedPages): a whole-page segment is the page itself.
    if (s.first_sect === 0 && s.last_sect === 7) iov.push(page);
    else iov.push(page.subarray(s.first_sect * 512, (s.last_sect + 1) * 512));
  }
}
