/**
 * An in-memory disk. It has no volatile cache in the contract's sense (a resolved write is
 * as durable as the process), so `capabilities.flush` is false. Optionally backed by a
 * SharedArrayBuffer, so a test or another worker can look at the bytes directly.
 */
import { CheckedStorage } from './checked.js';
import { type StorageCapabilities, type SyncBlockIo, SECTOR_SIZE, checkWritable, storageError } from './types.js';

export interface MemoryStorageOptions {
  readonly readOnly?: boolean;
  /** Use this buffer as the disk (its length must be a multiple of 512). */
  readonly buffer?: SharedArrayBuffer | ArrayBuffer;
  /** Allocate a SharedArrayBuffer rather than an ArrayBuffer. */
  readonly shared?: boolean;
  readonly logicalBlockSize?: number;
  /** Also offer the synchronous data path (`syncIo`), as a backend thread's file does. */
  readonly sync?: boolean;
}

/** In-memory disks above this are refused: a spec from a config file must not exhaust memory. */
export const MEMORY_DISK_MAX_BYTES = 8 * 1024 ** 3;

export class MemoryStorage extends CheckedStorage {
  readonly logicalBlockSize: number;
  readonly physicalBlockSize = 4096;
  readonly readOnly: boolean;
  readonly description = 'memory';
  readonly capabilities: StorageCapabilities = {
    flush: false,
    resize: true,
    discard: { supported: true, granularity: SECTOR_SIZE, alignment: 0, discardZeroes: true, secureDiscard: true },
  };
  private data: Uint8Array;
  private readonly shared: boolean;
  readonly syncIo: SyncBlockIo | undefined;

  constructor(sectors: number, options: MemoryStorageOptions = {}) {
    super();
    this.readOnly = options.readOnly ?? false;
    this.logicalBlockSize = options.logicalBlockSize ?? SECTOR_SIZE;
    if (options.buffer !== undefined) {
      if (options.buffer.byteLength % SECTOR_SIZE !== 0) {
        throw storageError('EINVAL', `memory disk buffer of ${options.buffer.byteLength} bytes is not whole sectors`);
      }
      this.data = new Uint8Array(options.buffer);
      this.shared = options.buffer instanceof SharedArrayBuffer;
    } else {
      this.shared = options.shared ?? false;
      this.data = allocate(sectors, this.shared);
    }
    this.syncIo = options.sync !== true ? undefined : this.checkedSyncIo((sector, dests) => this.copyOut(sector, dests), (sector, srcs) => this.copyIn(sector, srcs));
  }

  private copyOut(sector: number, dests: readonly Uint8Array[]): void {
    let at = sector * SECTOR_SIZE;
    for (const d of dests) {
      d.set(this.data.subarray(at, at + d.byteLength));
      at += d.byteLength;
    }
  }

  private copyIn(sector: number, srcs: readonly Uint8Array[]): void {
    let at = sector * SECTOR_SIZE;
    for (const s of srcs) {
      this.data.set(s, at);
      at += s.byteLength;
    }
  }

  get sectorCount(): number {
    return this.data.byteLength / SECTOR_SIZE;
  }

  /** The disk's bytes (a view; replaced by `resize`). */
  get bytes(): Uint8Array {
    return this.data;
  }

  protected async doRead(sectorOffset: number, dest: Uint8Array): Promise<void> {
    this.copyOut(sectorOffset, [dest]);
  }

  protected async doWrite(sectorOffset: number, src: Uint8Array): Promise<void> {
    this.copyIn(sectorOffset, [src]);
  }

  protected async doFlush(): Promise<void> {}

  protected async doDiscard(sector: number, count: number): Promise<void> {
    // Zeroing memory is also the secure variant: no other copy exists.
    this.data.fill(0, sector * SECTOR_SIZE, (sector + count) * SECTOR_SIZE);
  }

  async resize(newSectors: number): Promise<void> {
    checkWritable('resize', this.readOnly, this.description);
    if (!Number.isSafeInteger(newSectors) || newSectors < 0) throw storageError('ERANGE', `resize: bad size ${newSectors}`);
    const next = allocate(newSectors, this.shared);
    next.set(this.data.subarray(0, Math.min(this.data.byteLength, next.byteLength)));
    this.data = next;
  }

  async close(): Promise<void> {}
}

function allocate(sectors: number, shared: boolean): Uint8Array {
  if (!Number.isSafeInteger(sectors) || sectors < 0 || sectors * SECTOR_SIZE > MEMORY_DISK_MAX_BYTES) {
    throw storageError('EINVAL', `memory disk of ${sectors} sectors refused (max ${MEMORY_DISK_MAX_BYTES} bytes)`);
  }
  const bytes = sectors * SECTOR_SIZE;
  return new Uint8Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
}
