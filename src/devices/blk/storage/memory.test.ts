import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { XenpvError } from '../../../base/index.js';
import { MemoryStorage } from './memory.js';

const code = (c: string) => (err: unknown) => err instanceof XenpvError && err.code === c;

describe('memory storage', () => {
  test('behaves like a byte array (random writes, discards, reads against a model)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ kind: fc.constantFrom('write', 'discard', 'read'), sector: fc.integer({ min: 0, max: 63 }), n: fc.integer({ min: 1, max: 8 }), v: fc.integer({ min: 1, max: 255 }) }),
          { maxLength: 40 },
        ),
        async (ops) => {
          const disk = new MemoryStorage(64, { shared: true });
          const model = new Uint8Array(64 * 512);
          for (const op of ops) {
            const n = Math.min(op.n, 64 - op.sector);
            if (op.kind === 'write') {
              const data = new Uint8Array(n * 512).fill(op.v);
              await disk.write(op.sector, data);
              model.set(data, op.sector * 512);
            } else if (op.kind === 'discard') {
              await disk.discard(op.sector, n);
              model.fill(0, op.sector * 512, (op.sector + n) * 512);
            } else {
              const buf = new Uint8Array(n * 512);
              await disk.read(op.sector, buf);
              assert.deepEqual(buf, model.subarray(op.sector * 512, (op.sector + n) * 512));
            }
          }
          assert.deepEqual(disk.bytes, model);
        },
      ),
      { numRuns: 50, seed: 1 },
    );
  });

  test('refuses out-of-range, partial-sector and read-only requests', async () => {
    const disk = new MemoryStorage(8);
    await assert.rejects(disk.read(8, new Uint8Array(512)), code('ERANGE'));
    await assert.rejects(disk.write(7, new Uint8Array(1024)), code('ERANGE'));
    await assert.rejects(disk.write(0, new Uint8Array(10)), code('ERANGE'));
    const ro = new MemoryStorage(8, { readOnly: true });
    await assert.rejects(ro.write(0, new Uint8Array(512)), code('EROFS'));
    await assert.rejects(ro.discard(0, 1), code('EROFS'));
    assert.equal(disk.counters.read.errors + disk.counters.write.errors, 3);
  });

  test('backed by a caller SharedArrayBuffer; resize keeps content', async () => {
    const sab = new SharedArrayBuffer(4 * 512);
    const disk = new MemoryStorage(0, { buffer: sab });
    assert.equal(disk.sectorCount, 4);
    await disk.write(1, new Uint8Array(512).fill(9));
    assert.equal(new Uint8Array(sab)[512], 9);
    await disk.resize(8);
    assert.equal(disk.sectorCount, 8);
    assert.equal(disk.bytes[512], 9);
    assert.equal(disk.capabilities.flush, false);
  });

  test('refuses absurd sizes instead of allocating them', () => {
    assert.throws(() => new MemoryStorage(2 ** 40), code('EINVAL'));
  });
});
