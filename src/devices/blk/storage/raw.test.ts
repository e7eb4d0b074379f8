import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { XenpvError } from '../../../base/index.js';
import { NodeImageFile } from './node-file.js';
import { openStorage } from './open.js';
import { PUNCH_MIN_BYTES, RawStorage } from './raw.js';
import { tempDir } from './test-util.js';
import type { BlockStorage } from './types.js';

const MiB = 1024 * 1024;
const dir = tempDir('raw');
after(() => dir.remove());

let n = 0;
async function fresh(bytes: number, options: Parameters<typeof NodeImageFile.open>[1] = {}): Promise<{ path: string; store: RawStorage }> {
  const path = dir.file(`d${n++}.img`);
  const file = await NodeImageFile.open(path, { ...options, createSize: bytes });
  return { path, store: await RawStorage.open(file, {}) };
}

/** Allocated 512-byte blocks of a file, as stat reports them. */
const blocks = (path: string): number => statSync(path).blocks;

function filled(bytes: number, seed: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 31 + seed) & 0xff || 1;
  return b;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof XenpvError && err.code === code);
}

describe('raw storage', () => {
  test('creation is sparse and stays sparse under small writes', async () => {
    const { path, store } = await fresh(64 * MiB);
    assert.equal(store.sectorCount, 64 * 2048);
    assert.equal(blocks(path), 0);
    await store.write(32 * 2048, filled(4096, 1));
    await store.flush();
    assert.ok(blocks(path) <= 16, `blocks ${blocks(path)}`);
    await store.close();
  });

  test('round trip at odd sector offsets, through SharedArrayBuffer views', async () => {
    const { path, store } = await fresh(MiB);
    const sab = new SharedArrayBuffer(8192);
    const src = new Uint8Array(sab, 16, 3 * 512);
    src.set(filled(3 * 512, 7));
    await store.write(1, src);
    await store.write(1001, src);
    const dest = new Uint8Array(new SharedArrayBuffer(8192), 48, 5 * 512);
    await store.read(0, dest);
    assert.ok(dest.subarray(0, 512).every((b) => b === 0));
    assert.deepEqual(dest.subarray(512, 4 * 512), src);
    assert.ok(dest.subarray(4 * 512).every((b) => b === 0));
    await store.close();
    assert.deepEqual(new Uint8Array(readFileSync(path).subarray(1001 * 512, 1004 * 512)), src);
  });

  test('out-of-range and malformed requests are refused before touching the file', async () => {
    const { path, store } = await fresh(64 * 512);
    await rejectsWith(store.read(64, new Uint8Array(512)), 'ERANGE');
    await rejectsWith(store.read(63, new Uint8Array(1024)), 'ERANGE');
    await rejectsWith(store.write(-1, new Uint8Array(512)), 'ERANGE');
    await rejectsWith(store.write(Number.NaN, new Uint8Array(512)), 'ERANGE');
    await rejectsWith(store.write(0, new Uint8Array(100)), 'ERANGE');
    await rejectsWith(store.write(2 ** 60, new Uint8Array(512)), 'ERANGE');
    await rejectsWith(store.discard(60, 5), 'ERANGE');
    assert.equal(statSync(path).size, 64 * 512);
    assert.equal(store.counters.write.errors, 4);
    assert.equal(store.counters.write.requests, 4);
    await store.close();
  });

  test('a read-only disk refuses writes and discards with EROFS', async () => {
    const path = dir.file('ro.img');
    writeFileSync(path, filled(8192, 3));
    const store = await openStorage({ format: 'raw', target: path, readOnly: true });
    assert.equal(store.readOnly, true);
    await rejectsWith(store.write(0, new Uint8Array(512)), 'EROFS');
    await rejectsWith(store.discard(0, 1), 'EROFS');
    const buf = new Uint8Array(512);
    await store.read(0, buf);
    assert.deepEqual(buf, filled(8192, 3).subarray(0, 512));
    await store.close();
    assert.deepEqual(new Uint8Array(readFileSync(path)), filled(8192, 3));
  });

  test('discard reads back zero; large aligned ranges punch holes, small ones never allocate', async () => {
    const { path, store } = await fresh(8 * MiB);
    assert.equal(store.capabilities.discard.discardZeroes, true);
    // A small discard of a hole must not write zeroes into it.
    await store.discard(100, 8);
    await store.flush();
    assert.equal(blocks(path), 0);
    await store.write(0, filled(4 * MiB, 5));
    await store.flush();
    const before = blocks(path);
    await store.discard(1, 4 * 2048 - 2); // unaligned edges, aligned 4 MiB - 8 KiB middle
    await store.flush();
    const dest = new Uint8Array(4 * MiB);
    await store.read(0, dest);
    assert.ok(dest.subarray(512, 4 * MiB - 512).every((b) => b === 0));
    assert.deepEqual(dest.subarray(0, 512), filled(4 * MiB, 5).subarray(0, 512));
    assert.ok(4 * MiB - 8192 >= PUNCH_MIN_BYTES);
    assert.ok(blocks(path) < before / 4, `punched: ${before} -> ${blocks(path)} blocks`);
    await rejectsWith(store.discard(0, 8, { secure: true }), 'EOPNOTSUPP');
    await store.close();
  });

  test('cache modes: writeback advertises flush; writethrough (O_DSYNC) does not', async () => {
    const path = dir.file('modes.img');
    writeFileSync(path, new Uint8Array(MiB));
    const wb = await openStorage({ format: 'raw', target: path });
    assert.equal(wb.capabilities.flush, true);
    await wb.close();
    const wt = await openStorage({ format: 'raw', target: path, cache: 'writethrough' });
    assert.equal(wt.capabilities.flush, false);
    await wt.write(8, filled(512, 9));
    await wt.close();
    assert.deepEqual(new Uint8Array(readFileSync(path).subarray(4096, 4608)), filled(512, 9));
  });

  test('O_DIRECT through the aligned bounce pool, from unaligned SAB views', async (t) => {
    const path = dir.file('direct.img');
    writeFileSync(path, new Uint8Array(4 * MiB));
    let store: BlockStorage;
    try {
      store = await openStorage({ format: 'raw', target: path, direct: true });
    } catch (err) {
      // tmpfs and some file systems refuse O_DIRECT; that is an environment fact, not a bug.
      assert.ok(err instanceof XenpvError);
      t.skip(`O_DIRECT refused on this file system: ${err.message}`);
      return;
    }
    const src = new Uint8Array(new SharedArrayBuffer(3 * MiB), 16, 2 * MiB + 1024);
    src.set(filled(src.byteLength, 11));
    await store.write(3, src);
    const dest = new Uint8Array(new SharedArrayBuffer(3 * MiB), 32, src.byteLength);
    await store.read(3, dest);
    assert.deepEqual(dest, src);
    await store.close();
    assert.deepEqual(new Uint8Array(readFileSync(path).subarray(1536, 1536 + src.byteLength)), src);
  });

  test('online resize grows the disk', async () => {
    const { path, store } = await fresh(MiB);
    await store.resize(4096);
    assert.equal(store.sectorCount, 4096);
    assert.equal(statSync(path).size, 2 * MiB);
    await store.write(4095, filled(512, 2));
    await store.close();
  });
});
