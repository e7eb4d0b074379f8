/**
 * The byte-addressed file under an image format (raw or qcow2): a host file, or memory in
 * tests and in the crash harness. Offsets are bytes; the file grows when written past its end.
 *
 * Durability of a file follows the same two shapes as `BlockStorage` (types.ts): with
 * `hasVolatileCache`, written bytes survive a power cut only after `flush()` resolves; without,
 * they survive once `write` resolves.
 */
import { storageError, type SyncBatch, type SyncTransfer } from './types.js';

export interface ImageFile {
  /** For messages: the path, or "memory". */
  readonly name: string;
  readonly readOnly: boolean;
  readonly hasVolatileCache: boolean;
  /** Current length in bytes. */
  size(): Promise<number>;
  /** Fill `dest` from `offset`; bytes past the end of the file read as zero. Returns bytes that came from the file. */
  read(offset: number, dest: Uint8Array): Promise<number>;
  write(offset: number, src: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  truncate(size: number): Promise<void>;
  /**
   * Deallocate [offset, offset+length) keeping the size; the range then reads as zeroes.
   * Resolves false (and changes nothing) if the file cannot punch holes.
   */
  punchHole(offset: number, length: number): Promise<boolean>;
  close(): Promise<void>;
  /**
   * Optional synchronous data path (sync-file.ts): `read`/`write`/`flush` on the calling
   * thread, over several buffers back to back from `offset` (preadv/pwritev).
   */
  readonly sync?: SyncFileIo;
}

export interface SyncFileIo {
  /** Like `read` over `dests` back to back; bytes past the end of the file read as zero. */
  readv(offset: number, dests: readonly Uint8Array[]): void;
  writev(offset: number, srcs: readonly Uint8Array[]): void;
  flush(): void;
  /** Present where many transfers go in one system call (sync-file.ts, Linux AIO). */
  readonly batch?: SyncFileBatch;
  /** What moves the data, for the log: "io_uring + Linux AIO", or "preadv/pwritev (why not AIO)". */
  readonly engine: string;
}

/** A batch transfer from byte `offset` of the file. */
export interface SyncFileOp extends SyncTransfer {
  readonly offset: number;
}

/** readv/writev for each op, together (types.ts SyncBatch). */
export type SyncFileBatch = SyncBatch<SyncFileOp>;

/** Bytes in memory; grows on write past the end. No volatile cache. */
export class MemoryImageFile implements ImageFile {
  readonly name = 'memory';
  readonly hasVolatileCache = false;
  private buf: Uint8Array;
  private length: number;

  constructor(
    initial: Uint8Array = new Uint8Array(0),
    readonly readOnly = false,
    private readonly maxBytes = 1024 ** 3,
  ) {
    this.buf = new Uint8Array(Math.max(initial.byteLength, 4096));
    this.buf.set(initial);
    this.length = initial.byteLength;
  }

  /** A copy of the current contents. */
  snapshot(): Uint8Array {
    return this.buf.slice(0, this.length);
  }

  async size(): Promise<number> {
    return this.length;
  }

  async read(offset: number, dest: Uint8Array): Promise<number> {
    const n = Math.max(0, Math.min(dest.byteLength, this.length - offset));
    if (n > 0) dest.set(this.buf.subarray(offset, offset + n));
    dest.fill(0, n);
    return n;
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    if (this.readOnly) throw storageError('EROFS', 'memory file is read-only');
    this.ensure(offset + src.byteLength);
    this.buf.set(src, offset);
    this.length = Math.max(this.length, offset + src.byteLength);
  }

  async flush(): Promise<void> {}

  async truncate(size: number): Promise<void> {
    if (this.readOnly) throw storageError('EROFS', 'memory file is read-only');
    this.ensure(size);
    if (size < this.length) this.buf.fill(0, size, this.length);
    this.length = size;
  }

  async punchHole(offset: number, length: number): Promise<boolean> {
    const end = Math.min(offset + length, this.length);
    if (end > offset) this.buf.fill(0, offset, end);
    return true;
  }

  async close(): Promise<void> {}

  private ensure(size: number): void {
    if (size > this.maxBytes) throw storageError('ENOSPC', `memory file would exceed ${this.maxBytes} bytes`);
    if (size <= this.buf.byteLength) return;
    const next = new Uint8Array(Math.min(this.maxBytes, Math.max(size, this.buf.byteLength * 2)));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
}
