/**
 * Optional operations and their edges: EOPNOTSUPP withdraws the feature (R19), WRITE_BARRIER
 * ordering (blkif.h), sector-size > 512 with 512-byte units, online resize.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import { errorCode } from '../../base/index.js';
import { MemoryStorage } from './storage/memory.js';
import { storageError, type BlockStorage } from './storage/types.js';
import { startRawBack } from './raw-back.js';
import { RawFront } from './raw-front.js';
import { pattern, startPair, until, withBlkEnv } from './test-support.js';

function withCache(disk: MemoryStorage, overrides: Partial<BlockStorage>): BlockStorage {
  const caps = { ...disk.capabilities, flush: true };
  return Object.assign(Object.create(disk) as BlockStorage, { capabilities: caps }, overrides);
}

test('EOPNOTSUPP from storage: answered as such, and the feature node is withdrawn', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256);
    const storage = withCache(disk, {
      flush: () => Promise.reject(storageError('EOPNOTSUPP', 'no flush here')),
      discard: () => Promise.reject(storageError('EOPNOTSUPP', 'no discard here')),
    });
    const { back, front } = await startPair(env, storage);
    assert.equal(front.info.features.flush, true);
    await assert.rejects(front.flush(), (e) => errorCode(e) === 'EOPNOTSUPP');
    await assert.rejects(front.discard(0, 8), (e) => errorCode(e) === 'EOPNOTSUPP');
    await until(async () => (await env.xs0.readString(`${env.backPath}/feature-flush-cache`)) === '0', 2000, 'flush withdrawn');
    await until(async () => (await env.xs0.readString(`${env.backPath}/feature-discard`)) === '0', 2000, 'discard withdrawn');
    assert.equal(front.info.features.flush, false, 'the frontend stops sending flushes');
    assert.equal(front.info.features.discard, false);
    await assert.rejects(front.discard(0, 8), (e) => errorCode(e) === 'EOPNOTSUPP', 'refused locally now');
    assert.equal(back.info().counters.flush.errors, 1);
    await front.close(2000);
  }));

test('WRITE_BARRIER: earlier writes complete before it, later writes wait for it', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256);
    const log: string[] = [];
    const storage = withCache(disk, {
      write: async (sector: number, src: Uint8Array) => {
        const copy = src.slice();
        log.push(`write ${sector} start`);
        await new Promise((r) => setTimeout(r, sector === 0 ? 30 : 1));
        await disk.write(sector, copy);
        log.push(`write ${sector} end`);
      },
      flush: async () => {
        log.push('flush');
      },
    });
    await env.addVbd();
    const back = env.newBack(storage, { persistent: false });
    await back.start();
    const raw = new RawFront(env);
    await raw.connect();
    await until(async () => (await env.xs0.readString(`${env.backPath}/state`)) === '4', 2000, 'Connected');
    assert.equal(await env.xs0.readString(`${env.backPath}/feature-barrier`), '1');
    const pages = [raw.dataPage(false, 1), raw.dataPage(false, 2), raw.dataPage(false, 3)];
    const w = (id: bigint, op: 1 | 2, sector: number, gref: number) =>
      ({ kind: 'rw', operation: op, nr_segments: 1, handle: 0, id, sector_number: BigInt(sector), seg: [{ gref, first_sect: 0, last_sect: 7 }] }) as const;
    raw.send(w(1n, BLKIF_OP_WRITE, 0, pages[0]!.ref), w(2n, BLKIF_OP_WRITE_BARRIER, 8, pages[1]!.ref), w(3n, BLKIF_OP_WRITE, 16, pages[2]!.ref));
    const rsps = await raw.waitResponses(3);
    assert.deepEqual(rsps.map((r) => [r.id, r.status]), [[1n, BLKIF_RSP_OKAY], [2n, BLKIF_RSP_OKAY], [3n, BLKIF_RSP_OKAY]], 'answered in barrier order');
    assert.deepEqual(log, ['write 0 start', 'write 0 end', 'flush', 'write 8 start', 'write 8 end', 'flush', 'write 16 start', 'write 16 end']);
    await env.xsGuest.write(`${env.frontPath}/state`, '6');
    await until(() => env.hv.dom0.grants.maptrack.live().length === 0, 2000, 'unmapped');
    await raw.dispose();
  }));

test('sector-size 4096: sector fields stay 512-byte units, I/O must be whole blocks', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(512, { logicalBlockSize: 4096 });
    const { front } = await startPair(env, disk);
    assert.equal(front.info.sectorSize, 4096);
    assert.equal(front.info.sectors, 512, '512-byte units, as Xen 4.20 and Linux');
    await front.write(8, pattern(8, 16, 4));
    assert.deepEqual(disk.bytes.subarray(8 * 512, 24 * 512), pattern(8, 16, 4));
    await assert.rejects(front.write(1, pattern(1, 8, 4)), (e) => errorCode(e) === 'EINVAL');
    await assert.rejects(front.read(8, new Uint8Array(512)), (e) => errorCode(e) === 'EINVAL');
    await front.close(2000);
  }));

test('online resize: the backend rewrites sectors and state, the frontend sees the new size', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256);
    const { back, front } = await startPair(env, disk);
    const seen: number[] = [];
    front.onResize((s) => seen.push(s));
    await front.write(0, pattern(0, 8, 1));
    await assert.rejects(front.write(300, pattern(300, 8, 2)), (e) => errorCode(e) === 'ERANGE');
    await back.resize(1024);
    await until(() => front.info.sectors === 1024, 2000, 'new size seen');
    assert.deepEqual(seen, [1024]);
    await front.write(1000, pattern(1000, 24, 2));
    const buf = new Uint8Array(24 * 512);
    await front.read(1000, buf);
    assert.deepEqual(buf, pattern(1000, 24, 2));
    const first = new Uint8Array(8 * 512);
    await front.read(0, first);
    assert.deepEqual(first, pattern(0, 8, 1), 'data before the resize kept');
    await front.close(2000);
  }));

for (const trusted of [true, false]) {
  test(`persistent pages reused with trusted=${trusted ? 1 : 0}: ${trusted ? 'stale bytes may remain' : 'zeroed, the backend sees payload only (R4)'}`, () =>
    withBlkEnv(async (env) => {
      const disk = new MemoryStorage(256);
      const { front } = await startPair(env, disk, { vbd: { trusted }, front: { persistent: true, maxQueues: 1, maxIndirectSegments: 0 } });
      await front.write(0, new Uint8Array(4096).fill(0xaa));
      await front.write(8, new Uint8Array(512).fill(0x55));
      // The pool is LIFO: the second write reused the first page. Look at it as the backend can.
      const live = env.hv.dom0.grants.maptrack.live().filter((e) => e.granter === env.guestId);
      const pages = live.map((e) => env.dom0.grants.map(env.guestId, [e.ref as never], false));
      const reused = pages.find((m) => m.pages[0]![0] === 0x55);
      assert.ok(reused !== undefined, 'found the reused persistent page');
      const tail = reused.pages[0]!.subarray(512);
      if (trusted) assert.ok(tail.every((b) => b === 0xaa), 'trusted: the previous payload is still there');
      else assert.ok(tail.every((b) => b === 0), 'trusted=0: nothing but this request\'s payload');
      for (const m of pages) m.dispose();
      await front.close(2000);
    }));
}

test('discard-enable = 0 (toolstack veto): no feature-discard, and DISCARD is refused', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256);
    disk.bytes.fill(7, 0, 4096);
    const { front } = await startPair(env, disk, { vbd: { backKeys: { 'discard-enable': 0 } } });
    assert.equal(await env.xs0.readString(`${env.backPath}/feature-discard`), '0');
    assert.equal(front.info.features.discard, false);
    await assert.rejects(front.discard(0, 8), (e) => errorCode(e) === 'EOPNOTSUPP');
    assert.ok(disk.bytes.subarray(0, 4096).every((b) => b === 7));
    await front.close(2000);
  }));

test('discard with the secure flag: offered by the memory store, honoured end to end', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256);
    disk.bytes.fill(9);
    const { back, front } = await startPair(env, disk);
    assert.equal(front.info.features.discardSecure, true);
    assert.equal(front.info.features.discardGranularity, 512);
    await front.discard(16, 16, { secure: true });
    assert.ok(disk.bytes.subarray(16 * 512, 32 * 512).every((b) => b === 0));
    assert.ok(disk.bytes.subarray(0, 16 * 512).every((b) => b === 9), 'nothing outside the range');
    assert.equal(back.info().counters.discard.requests, 1);
    await front.close(2000);
  }));

test('a backend offering only feature-barrier gets flushes as empty WRITE_BARRIERs', () =>
  withBlkEnv(async (env) => {
    const { raw, front, started } = await startRawBack(env, { 'feature-flush-cache': 0, 'feature-barrier': 1 });
    await started;
    assert.deepEqual([front.info.features.flush, front.info.features.barrier], [false, true]);
    const flushed = front.flush();
    const [req] = await raw.waitRequests(1);
    assert.ok(req !== undefined && req.kind === 'rw');
    if (req.kind !== 'rw') return;
    assert.deepEqual([req.operation, req.nr_segments], [BLKIF_OP_WRITE_BARRIER, 0]);
    raw.respond({ id: req.id, operation: BLKIF_OP_WRITE_BARRIER, status: BLKIF_RSP_OKAY });
    await flushed;
    raw.dispose();
  }));
