/**
 * Persistent BlkBuffers (blk-buffer.ts): with feature-persistent and a trusted backend a
 * buffer's own pages are its persistent grants, granted once and kept mapped by blkback, so
 * repeated I/O on it needs neither a copy through the pool nor a map per request. Their grants
 * end when the buffer is freed, and its frames go back only once the backend has let go (R8).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DomId, Frame } from '../../base/index.js';
import { BlkBuffer } from './blk-buffer.js';
import { GrantReclaimer } from './front-grants.js';
import { MAX_KEPT_BYTES } from './protocol.js';
import { MemoryStorage } from './storage/memory.js';
import { pattern, startPair, until, withBlkEnv, type BlkEnv } from './test-support.js';

/** Count grantAccess calls per frame from now on. */
function watchGrants(env: BlkEnv): { counts: Map<number, number>; stop: () => void } {
  const counts = new Map<number, number>();
  const grants = env.guest.grants;
  const orig = grants.grantAccess.bind(grants);
  grants.grantAccess = (remote, frame, ro) => {
    counts.set(frame, (counts.get(frame) ?? 0) + 1);
    return orig(remote, frame, ro);
  };
  return { counts, stop: () => (grants.grantAccess = orig) };
}

test('persistent BlkBuffer: its own pages are granted once and serve every request, with no pool page', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(4096);
    const { front } = await startPair(env, disk, { back: { maxQueues: 1 }, front: { persistent: true, maxQueues: 1 } });
    const out = front.allocBuffer(8 * 4096, { persistent: true });
    const into = front.allocBuffer(8 * 4096, { persistent: true });
    assert.equal(out.persistent, true);
    const watch = watchGrants(env);
    for (let round = 0; round < 3; round++) {
      const sector = 64 * round;
      out.copyIn(0, pattern(sector, 64, round));
      await front.write(sector, out);
      assert.deepEqual(disk.bytes.subarray(sector * 512, (sector + 64) * 512), pattern(sector, 64, round));
      await front.read(sector, into);
      assert.deepEqual(into.toBytes(), pattern(sector, 64, round));
    }
    watch.stop();
    const own = new Set<number>([...out.frames, ...into.frames]);
    for (const f of own) assert.equal(watch.counts.get(f), 1, `frame ${f} granted once for three rounds`);
    const others = [...watch.counts.keys()].filter((f) => !own.has(f));
    assert.deepEqual(others, [], 'no pool or transient page granted for the data');
    out.free();
    into.free();
    await front.close(2000);
  }));

test('persistent BlkBuffer freed while blkback still maps it: its frames come back only after the backend lets go (R8)', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(1024);
    const { front } = await startPair(env, disk, { back: { maxQueues: 1 }, front: { persistent: true, maxQueues: 1 } });
    const buf = front.allocBuffer(4 * 4096, { persistent: true });
    await front.read(0, buf);
    const freeBefore = env.guest.memory.freeCount;
    buf.free();
    assert.equal(buf.isFreed, true);
    assert.equal(front.unreclaimedGrants, 4, 'blkback keeps the pages mapped: their grants cannot end yet');
    assert.equal(env.guest.memory.freeCount, freeBefore, 'so no frame of the buffer is freed');
    await assert.rejects(front.read(0, buf), /EBUSY|freed/);
    await front.close(2000);
    await until(() => front.unreclaimedGrants === 0, 3000, 'grants reclaimed after disconnect');
    assert.equal(env.guest.memory.freeCount >= freeBefore + 4, true, 'the buffer frames are back');
  }));

test('persistent BlkBuffer with trusted=0: never granted, bounced like any buffer', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(1024);
    const { front } = await startPair(env, disk, { vbd: { trusted: false }, back: { maxQueues: 1 }, front: { persistent: true, maxQueues: 1 } });
    const buf = front.allocBuffer(4 * 4096, { persistent: true });
    const watch = watchGrants(env);
    buf.copyIn(0, pattern(8, 32, 5));
    await front.write(8, buf);
    await front.read(8, buf);
    watch.stop();
    assert.deepEqual(buf.toBytes(), pattern(8, 32, 5));
    assert.equal(buf.frames.some((f: Frame) => watch.counts.has(f)), false, "the caller's pages are never granted");
    buf.free();
    await front.close(2000);
  }));

test(`persistent buffers are bounded per device (MAX_KEPT_BYTES): past it allocBuffer gives a plain buffer`, () =>
  withBlkEnv(async (env) => {
    const bytes = MAX_KEPT_BYTES / 4;
    const disk = new MemoryStorage(bytes / 512);
    const { front } = await startPair(env, disk, { back: { maxQueues: 1 }, front: { persistent: true, maxQueues: 1 } });
    const kept = [0, 1, 2, 3].map(() => front.allocBuffer(bytes, { persistent: true }));
    assert.deepEqual(kept.map((b) => b.persistent), [true, true, true, true]);
    const over = front.allocBuffer(bytes, { persistent: true });
    assert.equal(over.persistent, false, 'over the bound');
    kept[0]!.free();
    const again = front.allocBuffer(bytes, { persistent: true });
    assert.equal(again.persistent, true, 'room again once one is freed');
    // The plain one still does I/O (through the pool).
    over.copyIn(0, pattern(0, bytes / 512, 9));
    await front.write(0, over);
    assert.deepEqual(disk.bytes.subarray(0, bytes), pattern(0, bytes / 512, 9));
    for (const b of [...kept.slice(1), over, again]) b.free();
    await front.close(2000);
  }, 2048 + (MAX_KEPT_BYTES * 3) / 2 / 4096));

test('persistent BlkBuffer moved to another backend domain while the old one still maps a page: held, and its frames go back only after every grant ended (R8)', () =>
  withBlkEnv(async (env) => {
    const reclaimer = new GrantReclaimer(env.guest);
    let freedCalls = 0;
    const buf = new BlkBuffer(env.guest, 2 * 4096, { reclaimer, freed: () => freedCalls++ });
    const old = buf.keptPage(0 as DomId, 0);
    buf.keptPage(0 as DomId, 1);
    const mapping = env.dom0.grants.map(env.guestId, [old.ref], true); // the old backend keeps page 0 mapped
    try {
      const moved = buf.keptPage(env.guestId, 0); // reconnected to another backend domain
      assert.notEqual(moved.ref, old.ref);
      assert.equal(buf.held, 1, 'the page the old backend maps holds the buffer');
      assert.equal(reclaimer.pending, 1);
      const freeBefore = env.guest.memory.freeCount;
      assert.throws(() => buf.free(), /still mapped/);
      mapping.dispose();
      assert.equal(reclaimer.retry(), 0);
      assert.equal(buf.held, 0);
      buf.free();
      assert.equal(freedCalls, 1);
      assert.equal(env.guest.memory.freeCount, freeBefore + 2, 'both frames back once every grant ended');
    } finally {
      mapping.dispose();
      reclaimer.dispose();
    }
  }));

test('persistent BlkBuffer larger than a request: each indirect chunk uses its own stretch of the buffer\'s pages, every page granted once', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(4096);
    // 16 segments a request: a 48-page buffer is three indirect requests at pages 0, 16 and 32.
    const { front } = await startPair(env, disk, { back: { maxQueues: 1 }, front: { persistent: true, maxQueues: 1, maxIndirectSegments: 16 } });
    assert.equal(front.info.features.indirectSegments, 16);
    const out = front.allocBuffer(48 * 4096, { persistent: true });
    const into = front.allocBuffer(48 * 4096, { persistent: true });
    const watch = watchGrants(env);
    for (let round = 0; round < 2; round++) {
      const sector = 512 * round + 8;
      out.copyIn(0, pattern(sector, 384, round + 1));
      await front.write(sector, out);
      assert.deepEqual(disk.bytes.subarray(sector * 512, (sector + 384) * 512), pattern(sector, 384, round + 1), 'each chunk wrote its own pages');
      await front.read(sector, into);
      assert.deepEqual(into.toBytes(), pattern(sector, 384, round + 1), 'each chunk read into its own pages');
    }
    watch.stop();
    for (const f of [...out.frames, ...into.frames]) assert.equal(watch.counts.get(f), 1, `frame ${f} granted once`);
    out.free();
    into.free();
    await front.close(2000);
  }));
