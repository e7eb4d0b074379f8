/**
 * `openStorage(spec)`: from a disk spec (the `format`/`target`/`access` of an xl disk line,
 * already parsed) to a BlockStorage.
 *
 * Cache modes: 'writeback' (default) keeps the host page cache as a volatile cache and
 * advertises flush (fdatasync on FLUSH_DISKCACHE); 'writethrough' opens the file O_DSYNC so
 * every write is durable when it completes, and advertises no flush. `direct` adds O_DIRECT.
 */
import { open } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { MemoryStorage } from './memory.js';
import type { ImageFile } from './image-file.js';
import { NodeImageFile } from './node-file.js';
import { QCOW2_MAGIC } from './qcow2/header.js';
import { Qcow2Storage } from './qcow2/qcow2.js';
import { RawStorage } from './raw.js';
import { IoUring, SplitBatch } from './io-uring.js';
import { LinuxAio, type BatchEngine } from './linux-aio.js';
import { SyncImageFile } from './sync-file.js';
import { type BlockStorage, SECTOR_SIZE, storageError } from './types.js';

export type StorageFormat = 'raw' | 'qcow2' | 'memory';
export type CacheMode = 'writeback' | 'writethrough';

export interface StorageSpec {
  readonly format: StorageFormat;
  /** A path for raw/qcow2; for memory, a size ("64M", "1G", or bytes). */
  readonly target: string;
  readonly readOnly?: boolean;
  readonly direct?: boolean;
  readonly cache?: CacheMode;
  /**
   * The calling thread serves only this disk (a per-device backend worker): move file data
   * with synchronous pread/pwrite on it instead of libuv's pool (sync-file.ts). Not with `direct`.
   */
  readonly sync?: boolean;
  /**
   * With `sync` (raw images): move a backend pass's transfers in one system call where the kernel
   * and koffi allow it: Linux AIO (linux-aio.ts), and io_uring for batches of one-buffer reads
   * (io-uring.ts); default true. Diagnostic switches in the environment, to compare
   * the paths: XENPV_BLK_AIO=0 turns batching off everywhere, XENPV_BLK_URING=0 leaves it all to AIO.
   */
  readonly aio?: boolean;
}

/** Transfers (one per run of adjacent requests) and buffers one AIO submission takes at most: a ring pass. */
const AIO_MAX_OPS = 64;
const AIO_MAX_BUFFERS = 2048;

/** Backing chains longer than this are refused (a loop of backing files must not recurse forever). */
const MAX_BACKING_DEPTH = 8;

export async function openStorage(spec: StorageSpec): Promise<BlockStorage> {
  return openAt(spec, 0);
}

async function openAt(spec: StorageSpec, depth: number): Promise<BlockStorage> {
  switch (spec.format) {
    case 'memory':
      return new MemoryStorage(parseSize(spec.target) / SECTOR_SIZE, { readOnly: spec.readOnly ?? false });
    case 'raw': {
      const file = await openFile(spec, true);
      return RawStorage.open(file, { readOnly: spec.readOnly ?? false, cache: spec.cache ?? 'writeback' });
    }
    case 'qcow2': {
      // Qcow2Storage offers no syncIo, so nothing would ever submit a batch: no AIO context.
      const file = await openFile(spec, false);
      try {
        return await Qcow2Storage.open(file, {
          readOnly: spec.readOnly ?? false,
          cache: spec.cache ?? 'writeback',
          openBacking: (name, format) => openBacking(spec.target, name, format, depth + 1),
        });
      } catch (err) {
        await file.close();
        throw err;
      }
    }
    default:
      throw storageError('EINVAL', `unknown disk format ${String((spec as { format: unknown }).format)}`);
  }
}

/**
 * Linux AIO, with io_uring for the batches of one-buffer reads where the kernel allows it
 * (io-uring.ts SplitBatch: 4 KiB random reads cost blkback's thread ~11 % less); `why` says
 * what is missing and why (for the log). None without `batching` or where batches are turned off.
 */
function batchEngine(spec: StorageSpec, batching: boolean): { engine?: BatchEngine; why: string } {
  if (!batching) return { why: 'a qcow2 image moves its clusters one by one' };
  if (spec.aio === false) return { why: 'batches turned off for this disk' };
  if (process.env['XENPV_BLK_AIO'] === '0') return { why: 'XENPV_BLK_AIO=0' };
  const aio = LinuxAio.create(AIO_MAX_OPS, AIO_MAX_BUFFERS);
  if (typeof aio === 'string') return { why: `no Linux AIO: ${aio}` };
  if (process.env['XENPV_BLK_URING'] === '0') return { engine: aio, why: 'no io_uring: XENPV_BLK_URING=0' };
  const ring = IoUring.create(AIO_MAX_OPS, AIO_MAX_BUFFERS);
  return typeof ring === 'object' ? { engine: new SplitBatch(ring, aio), why: '' } : { engine: aio, why: `no io_uring: ${ring}` };
}

/** `batching`: the store built on the file moves batches (raw), so a sync file gets an AIO context. */
async function openFile(spec: StorageSpec, batching: boolean): Promise<ImageFile> {
  const dsync = spec.cache === 'writethrough';
  const file = await NodeImageFile.open(spec.target, {
    readOnly: spec.readOnly ?? false,
    cache: dsync ? 'dsync' : 'writeback',
    direct: spec.direct ?? false,
  });
  if (spec.sync !== true || file.direct) return file;
  const { engine, why } = batchEngine(spec, batching);
  try {
    // Without an engine (koffi or io_setup unavailable: `why` says so) every run is one preadv/pwritev.
    return new SyncImageFile(file, dsync, engine, why);
  } catch (err) {
    engine?.close();
    await file.close();
    throw err;
  }
}

async function openBacking(image: string, name: string, format: string | undefined, depth: number): Promise<BlockStorage> {
  if (depth > MAX_BACKING_DEPTH) throw storageError('EBADIMG', `backing chain deeper than ${MAX_BACKING_DEPTH} at ${name}`);
  // qemu resolves a relative backing file name against the directory of the image naming it.
  const path = isAbsolute(name) ? name : resolve(dirname(image), name);
  const fmt = format ?? (await probeFormat(path));
  if (fmt !== 'raw' && fmt !== 'qcow2') throw storageError('EBADIMG', `backing file ${path} has unsupported format ${fmt}`);
  return openAt({ format: fmt, target: path, readOnly: true }, depth);
}

async function probeFormat(path: string): Promise<string> {
  const head = Buffer.alloc(4);
  try {
    const fh = await open(path, 'r');
    try {
      await fh.read(head, 0, 4, 0);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw storageError('EBADIMG', `cannot read backing file ${path}`, { path }, err);
  }
  return head.readUInt32BE(0) === QCOW2_MAGIC ? 'qcow2' : 'raw';
}

/** "64M", "1G", "512K", "4096" → bytes; a whole number of sectors. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (m === null) throw storageError('EINVAL', `bad size ${JSON.stringify(text)}`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] ?? '').toLowerCase()] ?? 1;
  const bytes = Number(m[1]) * scale;
  if (!Number.isSafeInteger(bytes) || bytes % SECTOR_SIZE !== 0) throw storageError('EINVAL', `size ${text} is not whole sectors`);
  return bytes;
}
