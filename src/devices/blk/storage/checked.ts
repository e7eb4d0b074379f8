/**
 * The part of the BlockStorage contract every store enforces the same way, in one place:
 * each request is counted (requests, bytes, time, errors), writes and discards are refused
 * on a read-only store, ranges are checked against the current size, and a secure discard
 * is refused where `capabilities.discard.secureDiscard` does not promise it. A store
 * implements only the `do*` methods, which see requests that passed those checks.
 */
import { performance } from 'node:perf_hooks';
import {
  type BlockStorage,
  type DiscardOptions,
  type StorageCapabilities,
  type SyncBlockBatch,
  type SyncBlockIo,
  type SyncBlockOp,
  SECTOR_SIZE,
  SYNC_IOV_MAX,
  byteLengthOf,
  checkDiscardRange,
  checkRange,
  checkWritable,
  counted,
  newCounters,
  storageError,
} from './types.js';

export abstract class CheckedStorage implements BlockStorage {
  readonly counters = newCounters();
  abstract readonly sectorCount: number;
  abstract readonly logicalBlockSize: number;
  abstract readonly physicalBlockSize: number;
  abstract readonly readOnly: boolean;
  abstract readonly capabilities: StorageCapabilities;
  abstract readonly description: string;

  /** `dest` lies inside the disk. */
  protected abstract doRead(sectorOffset: number, dest: Uint8Array): Promise<void>;
  /** `src` lies inside the disk, and the store is writable. */
  protected abstract doWrite(sectorOffset: number, src: Uint8Array): Promise<void>;
  protected abstract doFlush(): Promise<void>;
  /** The range lies inside the disk, the store is writable, and `secure` is one it offers. */
  protected abstract doDiscard(sector: number, count: number): Promise<void>;
  abstract close(): Promise<void>;

  read(sectorOffset: number, dest: Uint8Array): Promise<void> {
    return counted(this.counters.read, dest.byteLength, async () => {
      checkRange('read', sectorOffset, dest.byteLength, this.sectorCount);
      await this.doRead(sectorOffset, dest);
    });
  }

  write(sectorOffset: number, src: Uint8Array): Promise<void> {
    return counted(this.counters.write, src.byteLength, async () => {
      checkWritable('write', this.readOnly, this.description);
      checkRange('write', sectorOffset, src.byteLength, this.sectorCount);
      await this.doWrite(sectorOffset, src);
    });
  }

  flush(): Promise<void> {
    return counted(this.counters.flush, 0, () => this.doFlush());
  }

  /**
   * A store's synchronous data path with the same checks and counters as `read`/`write`;
   * `readv`/`writev` see only requests that passed them.
   */
  protected checkedSyncIo(
    readv: (sectorOffset: number, dests: readonly Uint8Array[]) => void,
    writev: (sectorOffset: number, srcs: readonly Uint8Array[]) => void,
    batch?: SyncBlockBatch,
    engine?: string,
  ): SyncBlockIo {
    const io: SyncBlockIo = {
      readv: (sectorOffset, dests) => this.syncCall(false, sectorOffset, dests, readv),
      writev: (sectorOffset, srcs) => this.syncCall(true, sectorOffset, srcs, writev),
      ...(engine === undefined ? {} : { engine }),
    };
    if (batch === undefined) return io;
    return { ...io, batch: { maxOps: batch.maxOps, maxBuffers: batch.maxBuffers, run: (ops, errors) => this.batchCall(ops, errors, batch) } };
  }

  /**
   * `syncCall`'s checks and counters for each op of a batch; the ops that pass go to the
   * store together. The batch's time is shared out evenly among its ops.
   */
  private batchCall(ops: readonly SyncBlockOp[], errors: unknown[], batch: SyncBlockBatch): void {
    const start = performance.now();
    let passed: SyncBlockOp[] | undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const err = this.syncCheck(op.write, op.sector, op.bufs, op.bytes);
      errors[i] = err;
      if (err !== undefined && passed === undefined) passed = ops.slice(0, i);
      else if (err === undefined && passed !== undefined) passed.push(op);
    }
    try {
      if (passed === undefined) {
        batch.run(ops, errors);
      } else if (passed.length > 0) {
        const inner: unknown[] = [];
        batch.run(passed, inner);
        for (let i = 0, k = 0; i < ops.length; i++) if (errors[i] === undefined) errors[i] = inner[k++];
      }
    } catch (err) {
      // The store failed the submission as a whole: each op that went to it failed with it,
      // and is counted as `syncCall` counts a throw.
      // (With some refused, `errors` holds only their refusals here: the rest are undefined.)
      for (let i = 0; i < ops.length; i++) if (passed === undefined || errors[i] === undefined) errors[i] = err;
    }
    const share = Math.round(((performance.now() - start) * 1e6) / Math.max(1, ops.length));
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const counter = op.write ? this.counters.write : this.counters.read;
      counter.requests++;
      counter.timeNs += share;
      if (errors[i] === undefined) counter.bytes += op.bytes;
      else counter.errors++;
    }
  }

  /** What `syncCall` refuses before any I/O, as an error, or undefined. */
  private syncCheck(write: boolean, sectorOffset: number, bufs: readonly Uint8Array[], bytes: number): unknown {
    const what = write ? 'write' : 'read';
    try {
      if (bufs.length > SYNC_IOV_MAX) throw storageError('ERANGE', `${what}: ${bufs.length} buffers (at most ${SYNC_IOV_MAX})`);
      if (write) checkWritable(what, this.readOnly, this.description);
      checkRange(what, sectorOffset, bytes, this.sectorCount);
      return undefined;
    } catch (err) {
      return err;
    }
  }

  /** One checked, counted synchronous transfer (`counted`'s rules, without a closure or BigInt per call). */
  private syncCall(write: boolean, sectorOffset: number, bufs: readonly Uint8Array[], io: (sectorOffset: number, bufs: readonly Uint8Array[]) => void): void {
    const counter = write ? this.counters.write : this.counters.read;
    const bytes = byteLengthOf(bufs);
    const start = performance.now();
    counter.requests++;
    try {
      const refused = this.syncCheck(write, sectorOffset, bufs, bytes);
      if (refused !== undefined) throw refused;
      io(sectorOffset, bufs);
      counter.bytes += bytes;
    } catch (err) {
      counter.errors++;
      throw err;
    } finally {
      counter.timeNs += Math.round((performance.now() - start) * 1e6);
    }
  }

  discard(sector: number, count: number, options: DiscardOptions = {}): Promise<void> {
    return counted(this.counters.discard, count * SECTOR_SIZE, async () => {
      checkWritable('discard', this.readOnly, this.description);
      if (options.secure === true && !this.capabilities.discard.secureDiscard) {
        // blkif's secure discard promises the data is unrecoverable; a store that cannot keep that promise refuses.
        throw storageError('EOPNOTSUPP', `${this.description}: secure discard is not supported`);
      }
      checkDiscardRange(sector, count, this.sectorCount);
      await this.doDiscard(sector, count);
    });
  }
}
