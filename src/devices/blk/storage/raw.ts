/**
 * Raw images: sector n of the disk is bytes [512n, 512n+512) of the file.
 *
 * Sparse files stay sparse: creation is a truncate, nothing ever writes zeroes where the
 * file already reads zero, and discard deallocates.
 *
 * Discard. Node has no fallocate(2). The choice made here: a discard zeroes its range
 * (`discardZeroes` is true, so a guest may rely on reading zeroes afterwards):
 * - the 4 KiB-aligned middle of a range of at least `PUNCH_MIN_BYTES` is deallocated with
 *   FALLOC_FL_PUNCH_HOLE|KEEP_SIZE through util-linux's `fallocate` binary (one child process
 *   per discard, about a millisecond: fine for the large discards fstrim sends, too slow to
 *   do per 4 KiB);
 * - the rest (small discards, unaligned edges, or when punching is unavailable) is read, and
 *   only the non-zero 4 KiB pieces are overwritten with zeroes, so holes are never filled.
 * Secure discard is not offered: overwriting a file in place does not reach every copy the
 * file system or device may hold, so promising blkif's "unrecoverable" would be a lie.
 *
 * Cache modes: 'writeback' exposes the file's volatile cache (flush = fdatasync; the backend
 * advertises feature-flush-cache); 'writethrough' makes each write durable before it
 * resolves (the file is expected to be opened O_DSYNC; if it still has a volatile cache,
 * every write is followed by a flush).
 */
import type { ImageFile, SyncFileIo } from './image-file.js';
import { CheckedStorage } from './checked.js';
import { type StorageCapabilities, type SyncBlockBatch, type SyncBlockIo, SECTOR_SIZE, checkWritable, storageError } from './types.js';

export type RawCacheMode = 'writeback' | 'writethrough';

export interface RawStorageOptions {
  readonly readOnly?: boolean;
  readonly cache?: RawCacheMode;
  readonly logicalBlockSize?: number;
  readonly physicalBlockSize?: number;
}

/** Ranges below this are zeroed by writing, not by spawning `fallocate`. */
export const PUNCH_MIN_BYTES = 256 * 1024;
const DISCARD_GRANULE = 4096;
const ZERO_CHUNK = 1024 * 1024;
const zeroes = new Uint8Array(ZERO_CHUNK);
const NO_BUFS: readonly Uint8Array[] = [];

/** A file op of the batch in flight, rewritten per batch (rawBatch). */
interface FileOpSlot {
  write: boolean;
  offset: number;
  bufs: readonly Uint8Array[];
  bytes: number;
}

export class RawStorage extends CheckedStorage {
  readonly readOnly: boolean;
  readonly logicalBlockSize: number;
  readonly physicalBlockSize: number;
  readonly capabilities: StorageCapabilities;
  readonly description: string;
  private readonly syncEachWrite: boolean;
  private sectors: number;
  /** The file's synchronous path, checked and counted (checked.ts), when it has one. */
  readonly syncIo: SyncBlockIo | undefined;
  /** rawBatch's file ops, one object per op slot reused batch after batch (not one per op). */
  private readonly fileOps: FileOpSlot[] = [];

  private constructor(
    private readonly file: ImageFile,
    sectors: number,
    options: RawStorageOptions,
  ) {
    super();
    this.sectors = sectors;
    this.readOnly = (options.readOnly ?? false) || file.readOnly;
    this.logicalBlockSize = options.logicalBlockSize ?? SECTOR_SIZE;
    this.physicalBlockSize = options.physicalBlockSize ?? 4096;
    this.description = `raw:${file.name}`;
    const cache = options.cache ?? 'writeback';
    this.syncEachWrite = cache === 'writethrough' && file.hasVolatileCache;
    this.capabilities = {
      flush: cache === 'writeback' && file.hasVolatileCache,
      resize: !this.readOnly,
      discard: {
        supported: !this.readOnly,
        granularity: DISCARD_GRANULE,
        alignment: 0,
        discardZeroes: true,
        secureDiscard: false,
      },
    };
    const sync = file.sync;
    this.syncIo =
      sync === undefined
        ? undefined
        : this.checkedSyncIo(
            (sector, dests) => this.syncIoCall('read', () => sync.readv(sector * SECTOR_SIZE, dests)),
            (sector, srcs) => {
              this.syncIoCall('write', () => sync.writev(sector * SECTOR_SIZE, srcs));
              if (this.syncEachWrite) this.syncIoCall('flush', () => sync.flush());
            },
            sync.batch === undefined ? undefined : this.rawBatch(sync),
            sync.engine,
          );
  }

  /** The file's batch in sectors, its errors mapped like the one-by-one path's (writethrough: one flush after). */
  private rawBatch(sync: SyncFileIo): SyncBlockBatch {
    const batch = sync.batch!;
    return {
      maxOps: batch.maxOps,
      maxBuffers: batch.maxBuffers,
      run: (ops, errors) => {
        const fileOps = this.fileOps;
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i]!;
          const f = (fileOps[i] ??= { write: false, offset: 0, bufs: NO_BUFS, bytes: 0 });
          f.write = op.write;
          f.offset = op.sector * SECTOR_SIZE;
          f.bufs = op.bufs;
          f.bytes = op.bytes;
        }
        // A length store is a runtime call even when it changes nothing: most batches are as long as the last.
        if (fileOps.length !== ops.length) fileOps.length = ops.length;
        try {
          batch.run(fileOps, errors);
        } finally {
          // The frontend's pages are not kept alive until the next batch.
          for (let i = 0; i < fileOps.length; i++) fileOps[i]!.bufs = NO_BUFS;
        }
        let wrote = false;
        for (let i = 0; i < ops.length; i++) {
          if (errors[i] !== undefined) errors[i] = this.mapError(ops[i]!.write ? 'write' : 'read', errors[i]);
          else if (ops[i]!.write) wrote = true;
        }
        if (!wrote || !this.syncEachWrite) return;
        // Writethrough: an OKAY promises the write is durable, so a failed flush fails them all.
        try {
          this.syncIoCall('flush', () => sync.flush());
        } catch (err) {
          for (let i = 0; i < ops.length; i++) if (ops[i]!.write && errors[i] === undefined) errors[i] = err;
        }
      },
    };
  }

  /** Serve `file` as a raw disk; its size is rounded down to whole sectors. */
  static async open(file: ImageFile, options: RawStorageOptions = {}): Promise<RawStorage> {
    const bytes = await file.size();
    return new RawStorage(file, Math.floor(bytes / SECTOR_SIZE), options);
  }

  get sectorCount(): number {
    return this.sectors;
  }

  protected async doRead(sectorOffset: number, dest: Uint8Array): Promise<void> {
    await this.io('read', () => this.file.read(sectorOffset * SECTOR_SIZE, dest));
  }

  protected async doWrite(sectorOffset: number, src: Uint8Array): Promise<void> {
    await this.io('write', () => this.file.write(sectorOffset * SECTOR_SIZE, src));
    if (this.syncEachWrite) await this.io('flush', () => this.file.flush());
  }

  protected async doFlush(): Promise<void> {
    if (this.readOnly || !this.file.hasVolatileCache) return;
    await this.io('flush', () => this.file.flush());
  }

  protected async doDiscard(sector: number, count: number): Promise<void> {
    await this.io('discard', () => this.zeroRange(sector * SECTOR_SIZE, (sector + count) * SECTOR_SIZE));
    if (this.syncEachWrite) await this.io('flush', () => this.file.flush());
  }

  async resize(newSectors: number): Promise<void> {
    checkWritable('resize', this.readOnly, this.description);
    if (!Number.isSafeInteger(newSectors) || newSectors < 0) throw storageError('ERANGE', `resize: bad size ${newSectors}`);
    await this.io('resize', () => this.file.truncate(newSectors * SECTOR_SIZE));
    if (this.file.hasVolatileCache && !this.capabilities.flush) await this.io('flush', () => this.file.flush());
    this.sectors = newSectors;
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  private async zeroRange(start: number, end: number): Promise<void> {
    const punchStart = Math.ceil(start / DISCARD_GRANULE) * DISCARD_GRANULE;
    const punchEnd = Math.floor(end / DISCARD_GRANULE) * DISCARD_GRANULE;
    if (punchEnd - punchStart >= PUNCH_MIN_BYTES && (await this.file.punchHole(punchStart, punchEnd - punchStart))) {
      await this.zeroByWriting(start, punchStart);
      await this.zeroByWriting(punchEnd, end);
      return;
    }
    await this.zeroByWriting(start, end);
  }

  /** Overwrite with zeroes only the granules that do not already read as zero. */
  private async zeroByWriting(start: number, end: number): Promise<void> {
    const buf = new Uint8Array(Math.min(ZERO_CHUNK, end - start));
    for (let at = start; at < end; at += buf.byteLength) {
      const chunk = buf.subarray(0, Math.min(buf.byteLength, end - at));
      await this.file.read(at, chunk);
      for (let g = 0; g < chunk.byteLength; g += DISCARD_GRANULE) {
        const piece = chunk.subarray(g, Math.min(chunk.byteLength, g + DISCARD_GRANULE));
        if (!isZero(piece)) await this.file.write(at + g, zeroes.subarray(0, piece.byteLength));
      }
    }
  }

  /** File errors become EIO (ENOSPC kept) with the operation named. */
  private async io<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.mapError(op, err);
    }
  }

  private syncIoCall(op: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      throw this.mapError(op, err);
    }
  }

  private mapError(op: string, err: unknown): unknown {
    const code = (err as { code?: unknown }).code;
    if (code === 'EROFS' || code === 'ERANGE' || code === 'EOPNOTSUPP') return err;
    const mapped = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' ? 'ENOSPC' : 'EIO';
    return storageError(mapped, `${this.description}: ${op} failed: ${String(code ?? err)}`, { op, code }, err);
  }
}

export function isZero(bytes: Uint8Array): boolean {
  // Compare 4 bytes at a time where the view allows it.
  if (bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
    return true;
  }
  for (const b of bytes) if (b !== 0) return false;
  return true;
}
