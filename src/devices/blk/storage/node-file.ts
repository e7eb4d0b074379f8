/**
 * A host file as an `ImageFile`, through Node's async fs API: every pread/pwrite/fdatasync runs
 * on libuv's thread pool, so the backend's event loop never blocks on the disk.
 *
 * Cache modes (what `hasVolatileCache` then says):
 * - 'writeback': plain open; writes land in the page cache; `flush()` = fdatasync. Volatile.
 * - 'dsync': opened O_DSYNC; every write is durable when it returns. Not volatile; `flush()`
 *   is still an fdatasync (cheap: nothing is dirty) so metadata like the size is covered.
 * `direct` adds O_DIRECT (bypass the page cache) through an aligned bounce pool (direct-io.ts);
 * O_DIRECT alone does not make a write durable (the device may cache), so it does not change
 * the cache mode.
 *
 * Hole punching: Node has no fallocate(2). `punchHole` runs util-linux's `fallocate
 * --punch-hole` (FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE) as a child process: about a
 * millisecond per call, so callers use it only for large ranges (raw.ts decides). If the
 * binary is missing or the file system refuses, it answers false once and is not tried again.
 */
import { execFile } from 'node:child_process';
import { constants, existsSync, promises as fsp } from 'node:fs';
import { AlignedPool, DIRECT_ALIGN } from './direct-io.js';
import type { ImageFile } from './image-file.js';
import { storageError } from './types.js';

export type FileCacheMode = 'writeback' | 'dsync';

export interface NodeFileOptions {
  readonly readOnly?: boolean;
  readonly cache?: FileCacheMode;
  readonly direct?: boolean;
  /** Create the file (it must not exist) with this size, sparse (ftruncate: no block written). */
  readonly createSize?: number;
}

export class NodeImageFile implements ImageFile {
  readonly hasVolatileCache: boolean;
  private holePunch: 'unknown' | 'yes' | 'no' = 'unknown';
  private closed = false;

  private constructor(
    readonly name: string,
    readonly readOnly: boolean,
    cache: FileCacheMode,
    private readonly fh: fsp.FileHandle,
    private readonly pool: AlignedPool | undefined,
  ) {
    this.hasVolatileCache = cache === 'writeback';
  }

  static async open(path: string, options: NodeFileOptions = {}): Promise<NodeImageFile> {
    const readOnly = options.readOnly ?? false;
    const cache = options.cache ?? 'writeback';
    let flags = readOnly ? constants.O_RDONLY : constants.O_RDWR;
    if (options.createSize !== undefined) flags |= constants.O_CREAT | constants.O_EXCL;
    if (cache === 'dsync' && !readOnly) flags |= constants.O_DSYNC;
    const fh = await openOrThrow(path, flags);
    try {
      if (options.createSize !== undefined) await fh.truncate(options.createSize);
      let pool: AlignedPool | undefined;
      if (options.direct === true) {
        const direct = await openOrThrow(path, flags & ~(constants.O_CREAT | constants.O_EXCL) | constants.O_DIRECT);
        await fh.close();
        try {
          pool = await AlignedPool.create(direct, path);
        } catch (err) {
          await direct.close();
          throw err;
        }
        return new NodeImageFile(path, readOnly, cache, direct, pool);
      }
      return new NodeImageFile(path, readOnly, cache, fh, pool);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  get direct(): boolean {
    return this.pool !== undefined;
  }

  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }

  async read(offset: number, dest: Uint8Array): Promise<number> {
    if (this.pool !== undefined) return this.pool.read(this.fh, offset, dest);
    let done = 0;
    while (done < dest.byteLength) {
      const { bytesRead } = await this.fh.read(dest, done, dest.byteLength - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    dest.fill(0, done);
    return done;
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    if (this.readOnly) throw storageError('EROFS', `${this.name} is open read-only`);
    if (this.pool !== undefined) return this.pool.write(this.fh, offset, src);
    let done = 0;
    while (done < src.byteLength) {
      const { bytesWritten } = await this.fh.write(src, done, src.byteLength - done, offset + done);
      done += bytesWritten;
    }
  }

  async flush(): Promise<void> {
    if (this.readOnly) return;
    await this.fh.datasync();
  }

  async truncate(size: number): Promise<void> {
    if (this.readOnly) throw storageError('EROFS', `${this.name} is open read-only`);
    // O_DIRECT files keep their size a multiple of the alignment so later direct I/O works.
    await this.fh.truncate(this.pool === undefined ? size : Math.ceil(size / DIRECT_ALIGN) * DIRECT_ALIGN);
  }

  async punchHole(offset: number, length: number): Promise<boolean> {
    if (this.readOnly) throw storageError('EROFS', `${this.name} is open read-only`);
    if (this.holePunch === 'no' || length <= 0) return false;
    // Through our own descriptor, so a rename or replacement of the path cannot redirect it.
    const target = existsSync(`/proc/${process.pid}/fd/${this.fh.fd}`) ? `/proc/${process.pid}/fd/${this.fh.fd}` : this.name;
    const ok = await runFallocate(target, offset, length);
    this.holePunch = ok ? 'yes' : 'no';
    return ok;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

async function openOrThrow(path: string, flags: number): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(path, flags, 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw storageError(code === 'EROFS' ? 'EROFS' : 'EINVAL', `cannot open ${path}: ${code}`, { path, code }, err);
  }
}

/** util-linux fallocate(1): punch-hole implies KEEP_SIZE. False if unavailable or refused. */
function runFallocate(path: string, offset: number, length: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      'fallocate',
      ['--punch-hole', '--offset', String(offset), '--length', String(length), '--', path],
      { timeout: 30_000 },
      (err) => resolve(err === null),
    );
  });
}
