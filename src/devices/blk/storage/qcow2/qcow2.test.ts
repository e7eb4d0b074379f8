import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { NodeImageFile } from '../node-file.js';
import { openStorage } from '../open.js';
import { noQemuImg, qemuImg, qemuIo, tempDir } from '../test-util.js';
import type { BlockStorage } from '../types.js';
import { checkQcow2 } from './check.js';

const MiB = 1024 * 1024;
const dir = tempDir('qcow2');
after(() => dir.remove());

function create(name: string, size: string, opts = ''): string {
  const path = dir.file(name);
  const args = ['create', '-q', '-f', 'qcow2', ...(opts === '' ? [] : ['-o', opts]), path, size];
  const r = qemuImg(...args);
  assert.equal(r.status, 0, r.stderr);
  return path;
}

/** `qemu-img check` must find nothing at all: no corruption, no leaks (exit 0). */
function assertCheckClean(path: string): void {
  const r = qemuImg('check', path);
  assert.equal(r.status, 0, `qemu-img check ${path}: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /No errors were found/);
}

function assertSameAsRaw(qcow: string, raw: Uint8Array): void {
  const rawPath = `${qcow}.raw`;
  writeFileSync(rawPath, raw);
  const r = qemuImg('compare', '-f', 'qcow2', '-F', 'raw', qcow, rawPath);
  assert.equal(r.status, 0, `qemu-img compare: ${r.stdout}${r.stderr}`);
}

let seed = 12345;
function rand(n: number): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return Math.floor((seed / 2 ** 32) * n);
}

function pattern(bytes: number, tag: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4) b[i] = (tag + i / 4) & 0xff || 1;
  return b;
}

/** Random writes and discards mirrored into `model`, with a flush now and then. */
async function randomWorkload(store: BlockStorage, model: Uint8Array, ops: number, maxSectors: number): Promise<void> {
  for (let i = 0; i < ops; i++) {
    const n = 1 + rand(maxSectors);
    const sector = rand(store.sectorCount - n);
    if (rand(8) === 0) {
      await store.discard(sector, n);
      model.fill(0, sector * 512, (sector + n) * 512);
    } else {
      const data = pattern(n * 512, i);
      await store.write(sector, data);
      model.set(data, sector * 512);
    }
    if (rand(16) === 0) await store.flush();
  }
}

async function readAll(store: BlockStorage): Promise<Uint8Array> {
  const out = new Uint8Array(store.sectorCount * 512);
  await store.read(0, out);
  return out;
}

describe('qcow2 written by us passes qemu-img check and compare', { skip: noQemuImg }, () => {
  for (const [name, opts, size] of [
    ['v3 default', '', 64 * MiB],
    ['v2 (compat=0.10)', 'compat=0.10', 16 * MiB],
    ['512-byte clusters, refcount table grows', 'cluster_size=512,refcount_bits=64', 4 * MiB],
    ['refcount_bits=1', 'cluster_size=4096,refcount_bits=1', 8 * MiB],
    ['refcount_bits=64', 'cluster_size=4096,refcount_bits=64', 8 * MiB],
    ['2 MiB clusters', 'cluster_size=2M', 16 * MiB],
  ] as const) {
    test(name, async () => {
      const path = create(`w-${name.replace(/\W+/g, '_')}.qcow2`, String(size), opts);
      const model = new Uint8Array(size);
      const reftableBefore = readFileSync(path).readBigUInt64BE(48);
      const store = await openStorage({ format: 'qcow2', target: path });
      assert.equal(store.sectorCount, size / 512);
      await randomWorkload(store, model, 100, 256);
      if (opts.startsWith('cluster_size=512')) {
        // 3 MiB of 512-byte clusters overflows the one-cluster refcount table: 64 blocks of
        // 64 entries cover 2 MiB of host.
        for (let at = 0; at < 3 * MiB; at += 64 * 1024) {
          const data = pattern(64 * 1024, at);
          await store.write(at / 512, data);
          model.set(data, at);
        }
      }
      assert.ok(Buffer.from(await readAll(store)).equals(Buffer.from(model)), 'read back before close');
      await store.close();
      if (opts.startsWith('cluster_size=512')) {
        assert.notEqual(readFileSync(path).readBigUInt64BE(48), reftableBefore, 'the refcount table moved');
      }
      assertCheckClean(path);
      assertSameAsRaw(path, model);
      const reopened = await openStorage({ format: 'qcow2', target: path, readOnly: true });
      assert.ok(Buffer.from(await readAll(reopened)).equals(Buffer.from(model)), 'read back after reopen');
      await reopened.close();
    });
  }

  test('through O_DIRECT (metadata updates go through the aligned bounce pool)', async () => {
    const path = create('direct.qcow2', '8M', 'cluster_size=4096');
    const model = new Uint8Array(8 * MiB);
    const store = await openStorage({ format: 'qcow2', target: path, direct: true });
    await randomWorkload(store, model, 60, 64);
    await store.close();
    assertCheckClean(path);
    assertSameAsRaw(path, model);
  });

  test('our own checker agrees: no corruption, no leaks', async () => {
    const path = create('own-check.qcow2', '8M', 'cluster_size=4096');
    const store = await openStorage({ format: 'qcow2', target: path });
    await randomWorkload(store, new Uint8Array(8 * MiB), 100, 64);
    await store.close();
    const file = await NodeImageFile.open(path, { readOnly: true });
    const result = await checkQcow2(file);
    await file.close();
    assert.deepEqual(result.corruptions, []);
    assert.equal(result.leaks, 0);
    assert.ok(result.referenced > 10);
  });

  for (const [what, opts] of [
    ['within the L1 table', 'cluster_size=65536'],
    ['moving the L1 table', 'cluster_size=512'],
  ] as const) {
    test(`online resize (grow) ${what}`, async () => {
      const path = create(`grow-${opts}.qcow2`, '4M', opts);
      const l1Before = readFileSync(path).readBigUInt64BE(40);
      const store = await openStorage({ format: 'qcow2', target: path });
      const model = new Uint8Array(8 * MiB);
      const head = pattern(4096, 1);
      await store.write(0, head);
      model.set(head, 0);
      assert.ok(store.resize !== undefined);
      await store.resize(16384);
      assert.equal(store.sectorCount, 16384);
      const tail = pattern(8192, 2);
      await store.write(16384 - 16, tail);
      model.set(tail, 8 * MiB - 8192);
      await assert.rejects(store.resize(100), /grow only/);
      await store.close();
      assert.equal(readFileSync(path).readBigUInt64BE(24), BigInt(8 * MiB));
      assert.equal(readFileSync(path).readBigUInt64BE(40) !== l1Before, opts === 'cluster_size=512', 'L1 moved iff it had to');
      assertCheckClean(path);
      assertSameAsRaw(path, model);
    });
  }

  test('writethrough mode: metadata durable per write, image consistent without a flush', async () => {
    const path = create('wt.qcow2', '4M', 'cluster_size=4096');
    const store = await openStorage({ format: 'qcow2', target: path, cache: 'writethrough' });
    assert.equal(store.capabilities.flush, false);
    const data = pattern(8192, 3);
    await store.write(100, data);
    // Check the file while the store is still open: nothing is left to a later flush.
    assertCheckClean(path);
    await store.close();
  });
});

describe('qcow2 written by qemu, read by us', { skip: noQemuImg }, () => {
  test('qemu-io writes, zero clusters, then our read equals the expected bytes', async (t) => {
    const path = create('qio.qcow2', '8M');
    const r = qemuIo('-f', 'qcow2', '-c', 'write -P 0xab 65536 200k', '-c', 'write -P 0x11 3M 4k', '-c', 'write -z 131072 64k', path);
    if (r.status !== 0) return t.skip(`qemu-io failed: ${r.stderr}`);
    const want = new Uint8Array(8 * MiB);
    want.fill(0xab, 65536, 65536 + 200 * 1024);
    want.fill(0x11, 3 * MiB, 3 * MiB + 4096);
    want.fill(0, 131072, 131072 + 65536);
    const store = await openStorage({ format: 'qcow2', target: path, readOnly: true });
    assert.ok(Buffer.from(await readAll(store)).equals(Buffer.from(want)));
    await store.close();
  });

  for (const compressed of [false, true]) {
    test(`qemu-img convert${compressed ? ' -c (compressed clusters)' : ''} from raw: read back equal, then overwrite`, async () => {
      const raw = new Uint8Array(4 * MiB);
      for (let i = 0; i < raw.length; i += 7) raw[i] = (i >> 9) & 0xff;
      raw.fill(0, MiB, 2 * MiB);
      const rawPath = dir.file(`src-${compressed}.raw`);
      writeFileSync(rawPath, raw);
      const path = dir.file(`conv-${compressed}.qcow2`);
      const r = qemuImg('convert', '-f', 'raw', '-O', 'qcow2', ...(compressed ? ['-c'] : []), rawPath, path);
      assert.equal(r.status, 0, r.stderr);
      const store = await openStorage({ format: 'qcow2', target: path });
      assert.ok(Buffer.from(await readAll(store)).equals(Buffer.from(raw)));
      // Partial writes into (compressed) clusters copy them out; discard frees them.
      const data = pattern(1536, 9);
      await store.write(11, data);
      raw.set(data, 11 * 512);
      await store.discard(2 * 128, 128);
      raw.fill(0, 2 * 65536, 3 * 65536);
      await store.close();
      assertCheckClean(path);
      assertSameAsRaw(path, raw);
    });
  }

  test('backing file: reads fall through, partial writes copy up, v3 discard reads zero', async () => {
    const base = new Uint8Array(2 * MiB).fill(0x5a);
    const basePath = dir.file('base.raw');
    writeFileSync(basePath, base);
    const path = dir.file('overlay.qcow2');
    assert.equal(qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', path, '2M').status, 0);
    const store = await openStorage({ format: 'qcow2', target: path });
    const want = base.slice();
    const data = pattern(512, 1);
    await store.write(3, data);
    want.set(data, 3 * 512);
    await store.discard(256, 128);
    want.fill(0, 256 * 512, 384 * 512);
    assert.ok(Buffer.from(await readAll(store)).equals(Buffer.from(want)));
    await store.close();
    assertCheckClean(path);
    assertSameAsRaw(path, want);
    assert.deepEqual([...readFileSync(basePath).subarray(0, 4)], [0x5a, 0x5a, 0x5a, 0x5a], 'base untouched');
  });
});
