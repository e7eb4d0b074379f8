/**
 * blkback's synchronous data path, for a store that offers one (`BlockStorage.syncIo`: a
 * backend in a dom0 thread of its own on page-cache pread/pwrite).
 *
 * Requests come off the ring already validated (request.ts) with their grants mapped; their
 * data moves with preadv/pwritev straight between the file and the frontend's granted pages,
 * with no bounce buffer and no promise per request. Requests that follow each other on the
 * disk in the same direction join one run, moved by ONE syscall (a 1 MiB sequential read
 * that the frontend split into 128 KiB indirect requests costs one preadv, as natively). A
 * run is bounded by SYNC_IOV_MAX buffers and `MAX_RUN_BYTES`.
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
import { SYNC_IOV_MAX, type SyncBlockIo } from './storage/types.js';

/** Bytes one run moves at most: bounds the time the queue spends in one syscall. */
export const MAX_RUN_BYTES = 4 << 20;

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

export class SyncRun {
  private entries: RunEntry[] = [];
  private iov: Uint8Array[] = [];
  private write = false;
  private sector = 0;
  private endSector = 0;
  /** See `mark`. */
  private since = performance.now();

  constructor(
    private readonly io: SyncBlockIo,
    private readonly sink: RunSink,
  ) {}

  /** True when `data` may join the run: same direction, next on the disk, within the bounds. */
  fits(data: DataPlan): boolean {
    if (this.entries.length === 0) return true;
    return (
      data.write === this.write &&
      data.sector === this.endSector &&
      this.iov.length + data.segments.length <= SYNC_IOV_MAX &&
      (this.endSector - this.sector + data.sectors) * 512 <= MAX_RUN_BYTES
    );
  }

  /** Add a request whose pages are mapped (the caller checked `fits`). */
  add(entry: RunEntry): void {
    const { data, mapped } = entry;
    if (this.entries.length === 0) {
      this.write = data.write;
      this.sector = data.sector;
      this.endSector = data.sector;
    }
    this.entries.push(entry);
    pushSegments(this.iov, data, mapped.pages);
    this.endSector += data.sectors;
  }

  /**
   * Start of a serve pass: the clock reading that the first run's time counts from. A run's
   * time is from the previous mark (the pass start or the end of the previous run: when its
   * requests were taken off the ring) to the end of its transfer, one clock read per run.
   */
  mark(): void {
    this.since = performance.now();
  }

  /** Move the run's data, release its mappings, report every request. */
  flush(): void {
    const entries = this.entries;
    const n = entries.length;
    if (n === 0) return;
    const iov = this.iov;
    // Fresh arrays, not `length = 0`: that goes through V8's runtime and drops the backing
    // store, so the next push allocates again (about 0.1 µs per request in blkback's profile).
    this.entries = [];
    this.iov = [];
    let failed: unknown;
    try {
      this.transfer(this.sector, iov);
    } catch (err) {
      failed = err;
    }
    if (failed !== undefined && n > 1) return this.oneByOne(entries);
    const status = failed === undefined ? BLKIF_RSP_OKAY : this.statusOf(failed);
    const end = performance.now();
    const timeNs = Math.round((end - this.since) * 1e6);
    this.since = end;
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      e.mapped.release();
      this.sink.done(e, status, timeNs);
    }
  }

  /** Drop the run without moving anything (the queue is closing): only release the mappings. */
  discard(): void {
    const entries = this.entries;
    this.entries = [];
    this.iov = [];
    for (const e of entries) e.mapped.release();
  }

  /** After a failed run: each request on its own, so each gets its own status. */
  private oneByOne(entries: readonly RunEntry[]): void {
    const iov: Uint8Array[] = [];
    for (const e of entries) {
      iov.length = 0;
      pushSegments(iov, e.data, e.mapped.pages);
      let status: number = BLKIF_RSP_OKAY;
      try {
        this.transfer(e.data.sector, iov);
      } catch (err) {
        status = this.statusOf(err);
      }
      e.mapped.release();
      const end = performance.now();
      this.sink.done(e, status, Math.round((end - this.since) * 1e6));
      this.since = end;
    }
  }

  private transfer(sector: number, iov: readonly Uint8Array[]): void {
    if (this.write) this.io.writev(sector, iov);
    else this.io.readv(sector, iov);
  }

  private statusOf(err: unknown): number {
    const code = errorCode(err);
    this.sink.log(`storage: ${code ?? ''} ${err instanceof Error ? err.message : String(err)}`);
    return code === 'EOPNOTSUPP' ? BLKIF_RSP_EOPNOTSUPP : BLKIF_RSP_ERROR;
  }
}

/** The request's bytes in its pages, in order: whole pages as they are, partial ones as views. */
function pushSegments(iov: Uint8Array[], data: DataPlan, pages: readonly Uint8Array[]): void {
  const segs = data.segments;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const page = pages[i]!;
    if (s.first_sect === 0 && s.last_sect === 7 && page.byteLength === 4096) iov.push(page);
    else iov.push(page.subarray(s.first_sect * 512, (s.last_sect + 1) * 512));
  }
}
