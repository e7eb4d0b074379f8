/**
 * The storage a PV block backend serves: the contract between blkback and whatever holds the
 * disk's bytes (a raw file, a qcow2 image, memory).
 *
 * Units. Every sector offset and count here is in 512-byte units, whatever the disk's logical
 * block size: blkif.h (Xen 4.20) says "sector_number ... in units of 512 bytes" for every
 * request, and `sector-size` only constrains alignment. Buffers may be views of a
 * SharedArrayBuffer (a mapped grant); a store copies from/into them and keeps no reference.
 *
 * Durability contract (reliability.md §4, R18). A store declares one of two shapes:
 *
 * - `capabilities.flush === false` (no volatile cache): when `write` resolves, the data is on
 *   stable storage; a power cut afterwards cannot lose it. The backend then must NOT
 *   advertise `feature-flush-cache`, and may answer OKAY to a WRITE as soon as `write`
 *   resolves.
 * - `capabilities.flush === true` (volatile cache): when `write` resolves, the data is visible
 *   to later reads but may be lost by a power cut. When `flush()` resolves, every write that
 *   had resolved before `flush()` was called is on stable storage (writes still in flight
 *   when `flush()` is called may or may not be covered). The backend advertises
 *   `feature-flush-cache = 1` and answers a FLUSH_DISKCACHE with OKAY only after `flush()`
 *   resolves.
 *
 * In both shapes a write that rejects leaves its sectors holding either old or new data per
 * 512-byte sector (no sector is torn), and `read` after a resolved `write` returns the new data.
 * Concurrent overlapping writes have no defined order (blkif gives none either).
 *
 * Errors are `XenpvError`s with a code from `StorageErrorCode`. Out-of-range requests and
 * writes to a read-only store are refused before any byte is touched.
 */
import { XenpvError } from '../../../base/index.js';

export const SECTOR_SIZE = 512;
export const SECTOR_SHIFT = 9;

/**
 * Stable error codes. The backend maps EOPNOTSUPP to BLKIF_RSP_EOPNOTSUPP (and withdraws the
 * matching `feature-*` node), everything else to BLKIF_RSP_ERROR.
 */
export type StorageErrorCode =
  | 'EIO' // the medium failed or the image is corrupt
  | 'EROFS' // write/discard/resize on a read-only store
  | 'ERANGE' // request outside the disk, or a length not a multiple of 512
  | 'ENOSPC' // the image cannot grow (format limit or file system full)
  | 'EOPNOTSUPP' // optional operation the store does not do (flush, discard, secure discard, resize)
  | 'EINVAL' // the spec/options given to open are wrong (never for I/O from a peer)
  | 'EBADIMG'; // the image file is malformed or uses a feature we refuse (open time only)

export function storageError(code: StorageErrorCode, message: string, context: Record<string, unknown> = {}, cause?: unknown): XenpvError {
  return new XenpvError(code, message, context, cause === undefined ? undefined : { cause });
}

export interface DiscardCapability {
  /** Discard is worth doing at all. */
  readonly supported: boolean;
  /** Bytes; discards smaller or misaligned may be partly ignored unless `discardZeroes`. */
  readonly granularity: number;
  /** Bytes: offset of the first granule from sector 0 (blkif `discard-alignment`). */
  readonly alignment: number;
  /** After a discard resolves, the range reads as zeroes (however it was achieved). */
  readonly discardZeroes: boolean;
  /** `discard(..., { secure: true })` is supported: no copy of the old data remains. */
  readonly secureDiscard: boolean;
}

export interface StorageCapabilities {
  /** The store has a volatile cache and `flush()` commits it (see the contract above). */
  readonly flush: boolean;
  readonly discard: DiscardCapability;
  /** `resize` is implemented (online resize). */
  readonly resize: boolean;
}

export interface OpCounter {
  requests: number;
  bytes: number;
  errors: number;
  /** Wall time spent inside the operation, nanoseconds (summed over concurrent operations). */
  timeNs: number;
}

export interface StorageCounters {
  readonly read: OpCounter;
  readonly write: OpCounter;
  readonly flush: OpCounter;
  readonly discard: OpCounter;
}

export interface DiscardOptions {
  readonly secure?: boolean;
}

/**
 * The synchronous data path of a store whose I/O may block the calling thread: offered only
 * where that is cheaper than the async path and blocks nobody else (a backend in a thread of
 * its own on page-cache pread/pwrite: sync-file.ts). Same contract, checks and counters as
 * `read`/`write`, for the buffers taken back to back from `sectorOffset` (each a multiple of
 * 512 bytes; at most `SYNC_IOV_MAX` of them): one preadv/pwritev instead of a bounce copy
 * per request, so a backend can read straight into the guest's granted pages.
 * Errors are thrown (the same XenpvErrors the async calls reject with).
 */
export interface SyncBlockIo {
  readv(sectorOffset: number, dests: readonly Uint8Array[]): void;
  writev(sectorOffset: number, srcs: readonly Uint8Array[]): void;
  /** Present where the store moves many transfers in one system call (Linux AIO). */
  readonly batch?: SyncBlockBatch;
  /** What moves the data (SyncFileIo.engine), for the log. */
  readonly engine?: string;
}

/** One transfer of a batch: `bufs` back to back, from a place the op type names. */
export interface SyncTransfer {
  readonly write: boolean;
  readonly bufs: readonly Uint8Array[];
  /** The bufs' total length, which the caller knows (a 4 MiB run has 1024 buffers to sum). */
  readonly bytes: number;
}

/** A batch transfer from `sector` of a disk. */
export interface SyncBlockOp extends SyncTransfer {
  readonly sector: number;
}

/**
 * Several transfers performed together, each with its own outcome: `errors[i]` becomes what
 * readv/writev would have thrown for op i, or undefined. Returns when all are done (an OKAY
 * may be answered for each at once). At most `maxOps` ops and `maxBuffers` buffers in all.
 */
export interface SyncBatch<Op extends SyncTransfer> {
  readonly maxOps: number;
  readonly maxBuffers: number;
  run(ops: readonly Op[], errors: unknown[]): void;
}

/** A disk's batch (storage `syncIo.batch`); a file's is SyncBatch<SyncFileOp> (image-file.ts). */
export type SyncBlockBatch = SyncBatch<SyncBlockOp>;

/** Linux's UIO_MAXIOV: the most buffers one preadv/pwritev takes. */
export const SYNC_IOV_MAX = 1024;

export interface BlockStorage {
  /** Present when the store offers its synchronous data path (see SyncBlockIo). */
  readonly syncIo?: SyncBlockIo;
  /** Size in 512-byte sectors. Changes only through `resize`. */
  readonly sectorCount: number;
  /** Bytes; the smallest unit the store can write without read-modify-write (blkif `sector-size`). */
  readonly logicalBlockSize: number;
  /** Bytes; the unit it writes best (blkif `physical-sector-size`). */
  readonly physicalBlockSize: number;
  readonly readOnly: boolean;
  readonly capabilities: StorageCapabilities;
  readonly counters: StorageCounters;
  /** What it is, for logs and `block-list`: "raw:/path", "qcow2:/path", "memory". */
  readonly description: string;

  /** Fill `dest` (length a multiple of 512) from `sectorOffset`. */
  read(sectorOffset: number, dest: Uint8Array): Promise<void>;
  /** Store `src` (length a multiple of 512) at `sectorOffset`. Durability: see the contract. */
  write(sectorOffset: number, src: Uint8Array): Promise<void>;
  /** Commit the volatile cache. A no-op that resolves on a store without one. */
  flush(): Promise<void>;
  /** Drop `count` sectors from `sector`; see `capabilities.discard` for what reads return after. */
  discard(sector: number, count: number, options?: DiscardOptions): Promise<void>;
  /** Grow (or shrink, where supported) to `newSectors`. Present only if `capabilities.resize`. */
  resize?(newSectors: number): Promise<void>;
  /** Flush (best effort for caches), then release files. Idempotent. */
  close(): Promise<void>;
}

export function newCounters(): StorageCounters {
  const one = (): OpCounter => ({ requests: 0, bytes: 0, errors: 0, timeNs: 0 });
  return { read: one(), write: one(), flush: one(), discard: one() };
}

/** Run `fn`, accounting it in `counter` (a request, its bytes, its time, an error if it throws). */
export async function counted<T>(counter: OpCounter, bytes: number, fn: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  counter.requests++;
  try {
    const result = await fn();
    counter.bytes += bytes;
    return result;
  } catch (err) {
    counter.errors++;
    throw err;
  } finally {
    counter.timeNs += Number(process.hrtime.bigint() - start);
  }
}

/** Total bytes of `bufs`. */
export function byteLengthOf(bufs: readonly Uint8Array[]): number {
  let n = 0;
  for (let i = 0; i < bufs.length; i++) n += bufs[i]!.byteLength;
  return n;
}

/**
 * Refuse a request that is not whole sectors or leaves the disk. Called before anything is
 * touched, so a hostile sector number from a peer can never reach a file offset.
 */
export function checkRange(what: string, sectorOffset: number, byteLength: number, sectorCount: number): void {
  if (!Number.isSafeInteger(sectorOffset) || sectorOffset < 0) {
    throw storageError('ERANGE', `${what}: bad sector ${sectorOffset}`, { sectorOffset });
  }
  if (byteLength % SECTOR_SIZE !== 0) {
    throw storageError('ERANGE', `${what}: length ${byteLength} is not a multiple of ${SECTOR_SIZE}`, { byteLength });
  }
  const sectors = byteLength / SECTOR_SIZE;
  if (sectorOffset > sectorCount || sectors > sectorCount - sectorOffset) {
    throw storageError('ERANGE', `${what}: sectors ${sectorOffset}+${sectors} past the end (${sectorCount})`, {
      sectorOffset,
      sectors,
      sectorCount,
    });
  }
}

export function checkDiscardRange(sector: number, count: number, sectorCount: number): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw storageError('ERANGE', `discard: bad count ${count}`, { count });
  }
  if (!Number.isSafeInteger(sector) || sector < 0 || sector > sectorCount || count > sectorCount - sector) {
    throw storageError('ERANGE', `discard: sectors ${sector}+${count} past the end (${sectorCount})`, {
      sector,
      count,
      sectorCount,
    });
  }
}

export function checkWritable(what: string, readOnly: boolean, description: string): void {
  if (readOnly) throw storageError('EROFS', `${what}: ${description} is read-only`, { description });
}
