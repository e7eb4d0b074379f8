/**
 * blkback's synchronous path with a store that moves many runs in one call (`syncIo.batch`,
 * Linux AIO on a raw file): runs of adjacent requests still form, a pass's runs go together
 * up to BATCH_RUNS, and every request keeps its own status when a run or the whole batch fails.
 * The store here is an in-memory disk behind a recording batch, so faults can be placed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import { XenpvError } from '../../base/index.js';
import { BATCH_RUNS } from './back-sync.js';
import { MemoryStorage } from './storage/memory.js';
import type { BlockStorage, SyncBlockIo, SyncBlockOp } from './storage/types.js';
import { connectRaw, finishRaw, rw } from './raw-support.js';
import { pattern, withBlkEnv } from './test-support.js';

type Fault = (op: SyncBlockOp) => unknown;

/**
 * The disk's syncIo plus a batch that performs each op through it; calls are recorded. `fault`
 * is the medium's: an op (in a batch or alone) it answers with an error fails.
 */
function batchStorage(disk: MemoryStorage, fault: Fault = () => undefined, throwAll?: () => boolean) {
  const batches: [boolean, number, number][][] = [];
  const singles: [string, number, number][] = [];
  const inner = disk.syncIo!;
  const syncIo: SyncBlockIo = {
    readv: (sector, dests) => {
      singles.push(['readv', sector, dests.length]);
      const err = fault({ write: false, sector, bufs: dests, bytes: dests.length * 4096 });
      if (err !== undefined) throw err;
      inner.readv(sector, dests);
    },
    writev: (sector, srcs) => {
      singles.push(['writev', sector, srcs.length]);
      const err = fault({ write: true, sector, bufs: srcs, bytes: srcs.length * 4096 });
      if (err !== undefined) throw err;
      inner.writev(sector, srcs);
    },
    batch: {
      maxOps: 64,
      maxBuffers: 2048,
      run: (ops, errors) => {
        batches.push(ops.map((op) => [op.write, op.sector, op.bufs.length]));
        if (throwAll?.() === true) throw new Error('the submission itself failed');
        ops.forEach((op, i) => {
          errors[i] = fault(op);
          if (errors[i] !== undefined) return;
          if (op.write) inner.writev(op.sector, op.bufs);
          else inner.readv(op.sector, op.bufs);
        });
      },
    },
  };
  const storage: BlockStorage = Object.assign(Object.create(disk) as BlockStorage, { syncIo });
  return { storage, batches, singles };
}

test('batched sync path: scattered reads and an adjacent pair go in one batch as separate runs, data intact', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(512, { sync: true });
    for (let s = 0; s < 512; s += 8) disk.bytes.set(pattern(s, 8, 7), s * 512);
    const { storage, batches, singles } = batchStorage(disk);
    const { raw } = await connectRaw(env, storage);
    const sectors = [80, 8, 200, 208, 40];
    const into = sectors.map(() => raw.dataPage(true));
    raw.send(...sectors.map((s, i) => rw(BLKIF_OP_READ, BigInt(i), s, into[i]!.ref)));
    const r = await raw.waitResponses(5);
    assert.ok(r.every((x) => x.status === BLKIF_RSP_OKAY));
    assert.deepEqual(batches, [[[false, 80, 1], [false, 8, 1], [false, 200, 2], [false, 40, 1]]], '200 and 208 are one run');
    assert.deepEqual(singles, []);
    sectors.forEach((s, i) => assert.deepEqual(into[i]!.bytes, pattern(s, 8, 7), `request ${i}`));
    await finishRaw(env, raw);
  }));

test(`batched sync path: a pass of scattered requests moves in batches of at most BATCH_RUNS (${BATCH_RUNS})`, () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(1024, { sync: true });
    const { storage, batches } = batchStorage(disk);
    const { raw } = await connectRaw(env, storage);
    const n = BATCH_RUNS + 3;
    const pages = Array.from({ length: n }, () => raw.dataPage(true));
    raw.send(...pages.map((p, i) => rw(BLKIF_OP_READ, BigInt(i), (n - i) * 16, p.ref)));
    assert.ok((await raw.waitResponses(n)).every((x) => x.status === BLKIF_RSP_OKAY));
    assert.equal(batches.flat().length, n, 'every request moved once');
    assert.ok(batches.every((b) => b.length <= BATCH_RUNS), `batch sizes ${batches.map((b) => b.length).join(',')}`);
    await finishRaw(env, raw);
  }));

test('batched sync path: a failed run is redone one request at a time; the other runs of its batch stand', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256, { sync: true });
    // The medium fails any transfer that touches sector 24.
    const { storage, batches, singles } = batchStorage(disk, (op) => (op.sector <= 24 && 24 < op.sector + op.bufs.length * 8 ? new XenpvError('EIO', 'bad sector 24') : undefined));
    const { raw, back } = await connectRaw(env, storage);
    const pages = [0, 1, 2].map((i) => raw.dataPage(false, i + 1));
    raw.send(rw(BLKIF_OP_WRITE, 0n, 16, pages[0]!.ref), rw(BLKIF_OP_WRITE, 1n, 24, pages[1]!.ref), rw(BLKIF_OP_WRITE, 2n, 64, pages[2]!.ref));
    const byId = new Map((await raw.waitResponses(3)).map((r) => [r.id, r.status]));
    assert.deepEqual([0n, 1n, 2n].map((i) => byId.get(i)), [BLKIF_RSP_OKAY, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY]);
    assert.deepEqual(batches, [[[true, 16, 2], [true, 64, 1]]]);
    assert.deepEqual(singles, [['writev', 16, 1], ['writev', 24, 1]], 'only the failed run is redone');
    assert.ok(disk.bytes.subarray(16 * 512, 24 * 512).every((b) => b === 1));
    assert.ok(disk.bytes.subarray(64 * 512, 72 * 512).every((b) => b === 3));
    assert.equal(back.counters.write.errors, 1);
    assert.equal(back.counters.write.requests, 3);
    await finishRaw(env, raw);
  }));

test('batched sync path: a submission that fails as a whole answers ERROR to lone requests, and redoes runs of several', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256, { sync: true });
    for (let s = 0; s < 256; s += 8) disk.bytes.set(pattern(s, 8, 2), s * 512);
    let fail = true;
    const { storage, singles } = batchStorage(disk, undefined, () => fail);
    const { raw } = await connectRaw(env, storage);
    const into = [0, 1, 2].map(() => raw.dataPage(true));
    raw.send(rw(BLKIF_OP_READ, 0n, 8, into[0]!.ref), rw(BLKIF_OP_READ, 1n, 16, into[1]!.ref), rw(BLKIF_OP_READ, 2n, 96, into[2]!.ref));
    const byId = new Map((await raw.waitResponses(3)).map((r) => [r.id, r.status]));
    assert.deepEqual([0n, 1n, 2n].map((i) => byId.get(i)), [BLKIF_RSP_OKAY, BLKIF_RSP_OKAY, BLKIF_RSP_ERROR]);
    assert.deepEqual(singles, [['readv', 8, 1], ['readv', 16, 1]]);
    assert.deepEqual(into[1]!.bytes, pattern(16, 8, 2));
    fail = false;
    const again = raw.dataPage(true);
    raw.send(rw(BLKIF_OP_READ, 3n, 96, again.ref), rw(BLKIF_OP_READ, 4n, 200, into[0]!.ref));
    assert.ok((await raw.waitResponses(5)).slice(3).every((x) => x.status === BLKIF_RSP_OKAY), 'the queue goes on');
    assert.deepEqual(again.bytes, pattern(96, 8, 2));
    await finishRaw(env, raw);
  }));
