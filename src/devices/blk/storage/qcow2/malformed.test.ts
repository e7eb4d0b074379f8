import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { XenpvError } from '../../../../base/index.js';
import { MemoryImageFile } from '../image-file.js';
import { noQemuImg, qemuImg, qemuIo, tempDir } from '../test-util.js';
import { Qcow2Storage } from './qcow2.js';

const dir = tempDir('qcow2-bad');
let template: Uint8Array; // 4 MiB v3 image, 64 KiB clusters, some data written by qemu-io
let l1Offset: number;

function patched(edit: (view: DataView, bytes: Uint8Array) => void): MemoryImageFile {
  const bytes = template.slice();
  edit(new DataView(bytes.buffer), bytes);
  return new MemoryImageFile(bytes);
}

async function refused(file: MemoryImageFile, pattern: RegExp, readOnly = false): Promise<void> {
  await assert.rejects(Qcow2Storage.open(file, { readOnly }), (err: unknown) => {
    assert.ok(err instanceof XenpvError, String(err));
    assert.equal(err.code, 'EBADIMG');
    assert.match(err.message, pattern);
    return true;
  });
}

async function ioFails(store: Qcow2Storage, op: () => Promise<void>): Promise<void> {
  await assert.rejects(op(), (err: unknown) => err instanceof XenpvError && err.code === 'EIO');
  await store.close();
}

describe('malformed qcow2 images are refused with clear errors', { skip: noQemuImg }, () => {
  before(() => {
    const path = dir.file('t.qcow2');
    assert.equal(qemuImg('create', '-q', '-f', 'qcow2', path, '4M').status, 0);
    assert.equal(qemuIo('-f', 'qcow2', '-c', 'write -P 0x77 0 128k', path).status, 0);
    template = new Uint8Array(readFileSync(path));
    l1Offset = Number(new DataView(template.buffer).getBigUint64(40));
  });
  after(() => dir.remove());

  const headerCases: Array<[string, (v: DataView, b: Uint8Array) => void, RegExp]> = [
    ['bad magic', (v) => v.setUint32(0, 0x12345678), /bad magic/],
    ['version 4', (v) => v.setUint32(4, 4), /unsupported version 4/],
    ['cluster_bits 8', (v) => v.setUint32(20, 8), /cluster_bits 8/],
    ['cluster_bits 22', (v) => v.setUint32(20, 22), /cluster_bits 22/],
    ['unknown incompatible bit', (v) => v.setBigUint64(72, 1n << 9n), /unknown incompatible features: bit 9/],
    ['corrupt bit', (v) => v.setBigUint64(72, 2n), /marked corrupt/],
    ['external data file', (v) => v.setBigUint64(72, 4n), /external data/],
    ['extended L2', (v) => v.setBigUint64(72, 16n), /extended L2/],
    ['encryption', (v) => v.setUint32(32, 1), /encrypted/],
    ['L1 table past EOF', (v) => v.setBigUint64(40, 1n << 40n), /L1 table .* past the end/],
    ['refcount table overlapping the L1 table', (v) => v.setBigUint64(48, v.getBigUint64(40)), /overlaps/],
    ['huge l1_size', (v) => v.setUint32(36, 0xffffffff), /L1 table of 4294967295 entries/],
    ['huge virtual size', (v) => v.setBigUint64(24, 1n << 62n), /size .* out of range/],
    ['size the L1 table cannot map', (v) => v.setBigUint64(24, 1n << 40n), /l1_size 1 too small/],
    ['refcount_order 7', (v) => v.setUint32(96, 7), /refcount_order 7/],
    ['header_length 100', (v) => v.setUint32(100, 100), /header_length 100/],
    ['huge refcount table', (v) => v.setUint32(56, 0x100000), /refcount table of 1048576 clusters/],
    ['backing name past the first cluster', (v) => {
      v.setBigUint64(8, 65530n);
      v.setUint32(16, 100);
    }, /bad backing file name/],
  ];
  for (const [name, edit, pattern] of headerCases) {
    test(name, async () => refused(patched(edit), pattern));
  }

  test('a file too short for a header', async () => {
    await refused(new MemoryImageFile(template.slice(0, 50)), /too short/);
  });

  test('dirty bit: refused writable, readable read-only', async () => {
    const file = patched((v) => v.setBigUint64(72, 1n));
    await refused(file, /dirty bit/);
    const store = await Qcow2Storage.open(file, { readOnly: true });
    const buf = new Uint8Array(512);
    await store.read(0, buf);
    assert.equal(buf[0], 0x77);
    await store.close();
  });

  test('an L2 table pointer past EOF: open works, I/O through it fails with EIO', async () => {
    const file = patched((v) => v.setBigUint64(l1Offset, (1n << 63n) | (1n << 40n)));
    const store = await Qcow2Storage.open(file);
    await ioFails(store, () => store.read(0, new Uint8Array(512)));
  });

  test('an L1 entry with reserved bits: EIO', async () => {
    const file = patched((v) => v.setUint32(l1Offset, v.getUint32(l1Offset) | 0x01000000));
    const store = await Qcow2Storage.open(file);
    await ioFails(store, () => store.read(0, new Uint8Array(512)));
  });

  test('a data cluster mapped onto the L1 table: writes refused with EIO, metadata untouched', async () => {
    const file = patched((v) => {
      const l2 = Number(v.getBigUint64(l1Offset) & ((1n << 56n) - 512n));
      v.setBigUint64(l2, (1n << 63n) | BigInt(l1Offset));
    });
    const before = file.snapshot();
    const store = await Qcow2Storage.open(file);
    await assert.rejects(store.write(0, new Uint8Array(512).fill(1)), (err: unknown) => err instanceof XenpvError && err.code === 'EIO');
    assert.ok(Buffer.from(file.snapshot().subarray(l1Offset, l1Offset + 512)).equals(Buffer.from(before.subarray(l1Offset, l1Offset + 512))));
    await store.close();
  });

  test('a data cluster mapped onto its own L2 table: writes refused with EIO', async () => {
    let l2 = 0;
    const file = patched((v) => {
      l2 = Number(v.getBigUint64(l1Offset) & ((1n << 56n) - 512n));
      v.setBigUint64(l2, (1n << 63n) | BigInt(l2));
    });
    const store = await Qcow2Storage.open(file);
    await ioFails(store, () => store.write(0, new Uint8Array(512).fill(1)));
    assert.equal(file.snapshot()[l2 + 512], template[l2 + 512], 'the L2 table was not overwritten');
  });

  test('a compressed descriptor claiming a huge size: EIO', async () => {
    const file = patched((v) => {
      const l2 = Number(v.getBigUint64(l1Offset) & ((1n << 56n) - 512n));
      v.setBigUint64(l2, (1n << 62n) | (0xfffn << 54n) | 0x50000n);
    });
    const store = await Qcow2Storage.open(file, { readOnly: true });
    await ioFails(store, () => store.read(0, new Uint8Array(512)));
  });

  test('fuzz: random header and L1 corruption never crashes (XenpvError or success)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 127 }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 63 }), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
        async (headerFlips, l1Flips) => {
          const file = patched((_, b) => {
            for (const f of headerFlips) b[f.at] = f.value;
            for (const f of l1Flips) b[l1Offset + f.at] = f.value;
          });
          let store: Qcow2Storage;
          try {
            store = await Qcow2Storage.open(file, { readOnly: true });
          } catch (err) {
            assert.ok(err instanceof XenpvError, `open threw a non-XenpvError: ${String(err)}`);
            return;
          }
          try {
            const n = Math.min(store.sectorCount, 512);
            await store.read(0, new Uint8Array(n * 512));
          } catch (err) {
            assert.ok(err instanceof XenpvError, `read threw a non-XenpvError: ${String(err)}`);
          } finally {
            await store.close();
          }
        },
      ),
      { numRuns: 150, seed: 99 },
    );
  });
});
