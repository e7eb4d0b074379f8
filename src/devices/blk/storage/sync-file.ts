/**
 * A host file whose data path is synchronous pread/pwrite/fdatasync on the calling thread,
 * for a backend that has a thread of its own (one dom0 worker per guest device, DESIGN.md §3).
 *
 * Why: through libuv's pool every 4 KiB read costs the backend's thread 13-20 µs to submit
 * and complete, plus two thread hand-offs, where a page-cache pread costs ~1-1.5 µs
 * (performance.md 2.5). On a thread that serves only this device, blocking for one pread
 * blocks nobody else's event loop: it is what "storage off the backend's event loop" asks
 * for, done by giving the device its own thread rather than by a pool.
 *
 * Size, truncate, hole punching and close stay on the wrapped async file (rare, and
 * fallocate runs as a child process anyway); a second descriptor with the same flags
 * carries the data. O_DIRECT files are not wrapped (their aligned bounce pool is async).
 */
import { closeSync, constants, fdatasyncSync, openSync, readSync, readvSync, writeSync, writevSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { ImageFile, SyncFileIo, SyncFileOp } from './image-file.js';
import type { BatchEngine } from './linux-aio.js';
import { byteLengthOf, storageError } from './types.js';

export class SyncImageFile implements ImageFile {
  private fd: number | undefined;
  /** The data path without promises, for a caller on this thread (storage `syncIo`). */
  readonly sync: SyncFileIo;
  /** Per-op results of the last AIO run (reused: no array per batch). */
  private readonly results: number[] = [];

  /**
   * `dsync`: the wrapped file was opened O_DSYNC (writethrough); the data descriptor must be too.
   * `aio`: a batch engine (this file closes it), or undefined for none; `why`: what is missing
   * and why, for the log (SyncFileIo.engine).
   */
  constructor(
    private readonly inner: ImageFile,
    dsync: boolean,
    private readonly aio?: BatchEngine,
    why = '',
  ) {
    const sync: SyncFileIo = {
      readv: (offset, dests) => this.readvSync(offset, dests),
      writev: (offset, srcs) => this.writevSync(offset, srcs),
      flush: () => {
        if (!this.readOnly) fdatasyncSync(this.open());
      },
      engine: `${aio === undefined ? 'preadv/pwritev' : aio.name}${why === '' ? '' : ` (${why})`}`,
    };
    this.sync = aio === undefined ? sync : { ...sync, batch: { maxOps: aio.maxOps, maxBuffers: aio.maxBuffers, run: (ops, errors) => this.batch(aio, ops, errors) } };
    let flags = inner.readOnly ? constants.O_RDONLY : constants.O_RDWR;
    if (dsync && !inner.readOnly) flags |= constants.O_DSYNC;
    try {
      this.fd = openNoAtime(inner.name, flags);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw storageError('EINVAL', `cannot open ${inner.name}: ${code}`, { path: inner.name, code }, err);
    }
    // `close` closes the engine before this descriptor (BatchEngine.registerFile's rule).
    aio?.registerFile?.(this.fd);
  }

  get name(): string {
    return this.inner.name;
  }

  get readOnly(): boolean {
    return this.inner.readOnly;
  }

  get hasVolatileCache(): boolean {
    return this.inner.hasVolatileCache;
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  async read(offset: number, dest: Uint8Array): Promise<number> {
    return this.readvSync(offset, [dest]);
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    this.writevSync(offset, [src]);
  }

  async flush(): Promise<void> {
    this.sync.flush();
  }

  /**
   * preadv over `dests` back to back from `offset`. A short count (a signal, the end of the
   * file) continues from where it stopped; what lies past the end reads as zero. Returns the
   * bytes that came from the file.
   */
  private readvSync(offset: number, dests: readonly Uint8Array[]): number {
    const fd = this.open();
    let iov = dests;
    let at = offset;
    for (;;) {
      const want = byteLengthOf(iov);
      if (want === 0) return at - offset;
      const n = iov.length === 1 ? readSync(fd, iov[0]!, 0, want, at) : readvSync(fd, iov as Uint8Array[], at);
      if (n === want) return at + n - offset;
      if (n === 0) {
        for (const d of iov) d.fill(0);
        return at - offset;
      }
      iov = advance(iov, n);
      at += n;
    }
  }

  /**
   * All of `ops` in one io_submit. A short transfer (the end of the file, a signal) is
   * finished the way readvSync/writevSync finish theirs; a failed one gets its errno as the
   * `code` a Node fs call would have thrown.
   */
  private batch(aio: BatchEngine, ops: readonly SyncFileOp[], errors: unknown[]): void {
    if (this.readOnly && ops.some((op) => op.write)) throw storageError('EROFS', `${this.name} is open read-only`);
    // AIO lost its context (a renewal's io_setup failed): each op by itself, as without AIO.
    if (!aio.usable) {
      for (let i = 0; i < ops.length; i++) errors[i] = this.finish(ops[i]!, 0);
      return;
    }
    const results = this.results;
    aio.run(this.open(), ops, results);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const done = results[i]!;
      errors[i] = undefined;
      if (done < 0) errors[i] = errnoError(-done, op.write ? 'pwritev' : 'preadv');
      else if (done < op.bytes) errors[i] = this.finish(op, done);
    }
  }

  /** The rest of a short batch transfer, synchronously: its error, or undefined. */
  private finish(op: SyncFileOp, done: number): unknown {
    try {
      const rest = done === 0 ? op.bufs : advance(op.bufs, done);
      if (op.write) this.writevSync(op.offset + done, rest);
      else this.readvSync(op.offset + done, rest);
      return undefined;
    } catch (err) {
      return err;
    }
  }

  private writevSync(offset: number, srcs: readonly Uint8Array[]): void {
    if (this.readOnly) throw storageError('EROFS', `${this.name} is open read-only`);
    const fd = this.open();
    let iov = srcs;
    let at = offset;
    for (;;) {
      const want = byteLengthOf(iov);
      if (want === 0) return;
      const n = iov.length === 1 ? writeSync(fd, iov[0]!, 0, want, at) : writevSync(fd, iov as Uint8Array[], at);
      if (n === want) return;
      iov = advance(iov, n);
      at += n;
    }
  }

  truncate(size: number): Promise<void> {
    return this.inner.truncate(size);
  }

  punchHole(offset: number, length: number): Promise<boolean> {
    return this.inner.punchHole(offset, length);
  }

  async close(): Promise<void> {
    this.aio?.close();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    await this.inner.close();
  }

  private open(): number {
    if (this.fd === undefined) throw storageError('EINVAL', `${this.name} is closed`);
    return this.fd;
  }
}

/** errno `n` as the error a Node fs call throws (`code` = its name), for the storage's error mapping. */
function errnoError(n: number, syscall: string): NodeJS.ErrnoException {
  const names = osConstants.errno as Record<string, number>;
  const code = Object.keys(names).find((k) => names[k] === n) ?? `E${n}`;
  return Object.assign(new Error(`${code}: ${syscall} failed`), { code, errno: -n, syscall });
}

/** The buffers left after `done` bytes of `iov` were transferred (the first one cut). */
function advance(iov: readonly Uint8Array[], done: number): Uint8Array[] {
  let i = 0;
  while (done >= iov[i]!.byteLength) done -= iov[i++]!.byteLength;
  return [iov[i]!.subarray(done), ...iov.slice(i + 1)];
}

/**
 * Open with O_NOATIME where the kernel allows it (the file's owner, or CAP_FOWNER), else
 * without: a guest's reads need not touch the image's access time, which cost ~2.5 % of a
 * disk thread's CPU per 4 KiB pread (touch_atime, atime_needs_update, current_time in perf).
 */
function openNoAtime(path: string, flags: number): number {
  const noAtime = constants.O_NOATIME;
  if (noAtime === undefined) return openSync(path, flags);
  try {
    return openSync(path, flags | noAtime);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    return openSync(path, flags);
  }
}
