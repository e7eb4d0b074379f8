/** Helpers shared by the storage tests: temporary directories, Debian's qemu-img, the batch engines' common checks. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessInstalled } from '../../../base/testing.js';
import type { BatchEngine } from './linux-aio.js';

export function tempDir(prefix: string): { path: string; file: (name: string) => string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `xenpv-${prefix}-`));
  return { path, file: (name) => join(path, name), remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function qemuImg(...args: string[]): RunResult {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

export function qemuIo(...args: string[]): RunResult {
  const r = spawnSync('qemu-io', args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

/** Skip reason when qemu-img is missing (Debian qemu-utils); undefined when present. */
export const noQemuImg: string | false = skipUnlessInstalled(
  spawnSync('qemu-img', ['--version']).status === 0 ? false : 'qemu-img (Debian qemu-utils) is not installed',
);

/** `bytes` of a pattern that differs per 512-byte sector and per seed. */
export function filled(bytes: number, seed: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 13 + seed * 31 + (i >> 9)) & 0xff;
  return b;
}

/** A file at `path` of `bytes` filled with `seed`'s pattern (as `filled`); its content. */
export function writeFilled(path: string, bytes: number, seed: number): Uint8Array {
  const content = filled(bytes, seed);
  writeFileSync(path, content);
  return content;
}

/**
 * What every batch engine (Linux AIO, io_uring) does on a real file at `path` (made here, 256
 * KiB): writes of one and of two buffers land where pread finds them; on a read-only descriptor
 * the write is refused with EBADF while the reads around it are done, and a read past the end of
 * the file is short. Closes `engine`.
 */
export function checkEngineWrites(engine: BatchEngine, path: string): void {
  writeFileSync(path, new Uint8Array(256 * 1024));
  const rw = openSync(path, 'r+');
  const data = [filled(4096, 2), filled(8192, 3), filled(512, 4)];
  try {
    const results: number[] = [];
    engine.run(
      rw,
      [
        { write: true, offset: 40960, bufs: [data[0]!] },
        { write: true, offset: 4096, bufs: [data[1]!.subarray(0, 4096), data[1]!.subarray(4096)] },
        { write: true, offset: 512 * 301, bufs: [data[2]!] },
      ],
      results,
    );
    assert.deepEqual(results, [4096, 8192, 512]);
    const file = readFileSync(path);
    assert.deepEqual(new Uint8Array(file.subarray(40960, 45056)), data[0]);
    assert.deepEqual(new Uint8Array(file.subarray(4096, 12288)), data[1]);
    assert.deepEqual(new Uint8Array(file.subarray(512 * 301, 512 * 302)), data[2]);
  } finally {
    closeSync(rw);
  }
  const ro = openSync(path, 'r');
  try {
    const pages = [new Uint8Array(4096), new Uint8Array(4096), new Uint8Array(4096), new Uint8Array(4096)];
    const results: number[] = [];
    engine.run(
      ro,
      [
        { write: false, offset: 0, bufs: [pages[0]!] },
        { write: true, offset: 0, bufs: [pages[1]!] },
        { write: false, offset: 40960, bufs: [pages[2]!] },
        { write: false, offset: 256 * 1024 - 1024, bufs: [pages[3]!] },
      ],
      results,
    );
    assert.equal(results[0], 4096);
    assert.equal(results[1], -9, 'EBADF for the write');
    assert.equal(results[2], 4096);
    assert.equal(results[3], 1024, 'short: the file ends');
    assert.deepEqual(pages[2], data[0]);
  } finally {
    engine.close();
    closeSync(ro);
  }
}
