/**
 * Nothing lost across a backend crash (issue 4 "Nothing lost", reliability.md R20): the
 * backend is killed mid-I/O (mappings and ports vanish, nothing is answered, nothing written
 * to the store) and a new one started on the same device. The new backend takes the
 * frontend through Closing/Closed, the frontend reconnects and replays every request not yet
 * acknowledged. No acknowledged write is lost, every operation completes, nothing hangs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from './storage/memory.js';
import type { BlockStorage } from './storage/types.js';
import { pattern, startPair, until, withBlkEnv } from './test-support.js';

/** Memory storage whose writes take a while (so a crash lands while they are in flight). */
function slowStorage(disk: MemoryStorage, delayMs: () => number): BlockStorage {
  return Object.assign(Object.create(disk) as BlockStorage, {
    write: async (sector: number, src: Uint8Array) => {
      const copy = src.slice();
      await new Promise((r) => setTimeout(r, delayMs()));
      return disk.write(sector, copy);
    },
  });
}

/** Memory storage whose writes wait until `open()` (so a backend can be killed with them in flight). */
function gatedStorage(disk: MemoryStorage): { storage: BlockStorage; open(): void } {
  let hold = true;
  const storage = Object.assign(Object.create(disk) as BlockStorage, {
    write: async (sector: number, src: Uint8Array) => {
      const copy = src.slice();
      while (hold) await new Promise((r) => setTimeout(r, 5));
      return disk.write(sector, copy);
    },
  });
  return { storage, open: () => void (hold = false) };
}

test('reconnect: backend killed with writes in flight; a new backend gets them replayed', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(2048);
    const gate = gatedStorage(disk);
    const { back: back1, front } = await startPair(env, gate.storage, { back: { maxQueues: 2 }, front: { maxQueues: 2, maxIndirectSegments: 64, persistent: true } });
    const pending = [0, 100, 200, 300].map((s, i) => front.write(s, pattern(s, 90, i + 1)));
    await until(() => back1.info().inFlight === 4, 2000, 'writes in flight at the backend');
    await back1.kill();
    // While no backend runs, the guest keeps issuing I/O: it waits in the frontend.
    const during = front.write(1000, pattern(1000, 8, 9));
    gate.open(); // the dead backend's storage calls complete into nothing
    const back2 = env.newBack(disk, { maxQueues: 1 });
    await back2.start();
    await Promise.all([...pending, during]);
    assert.equal(front.pending, 0);
    assert.equal(front.connects, 2);
    assert.equal(front.replayed, 5, 'issued again: the four the dead backend held and the one put on its ring after it died');
    assert.equal(front.info.features.queues, 1, 'features re-read from the new backend');
    for (const [i, s] of [0, 100, 200, 300].entries()) {
      assert.deepEqual(disk.bytes.subarray(s * 512, (s + 90) * 512), pattern(s, 90, i + 1));
    }
    assert.deepEqual(disk.bytes.subarray(1000 * 512, 1008 * 512), pattern(1000, 8, 9));
    const buf = new Uint8Array(90 * 512);
    await front.read(300, buf);
    assert.deepEqual(buf, pattern(300, 90, 4));
    await front.close(2000);
  }));

test('reconnect: a new backend offering fewer indirect segments gets the replayed requests cut to its size', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(2048);
    const gate = gatedStorage(disk);
    const { back: back1, front } = await startPair(env, gate.storage, { back: { maxIndirectSegments: 64 }, front: { maxIndirectSegments: 64 } });
    // 256 sectors: one indirect request of 32 segments for back1.
    const big = front.write(0, pattern(0, 256, 7));
    await until(() => back1.info().inFlight === 1, 2000, 'the write in flight at the backend');
    await back1.kill();
    gate.open();
    // No indirect requests at all: at most 11 segments (88 sectors) per request.
    const back2 = env.newBack(disk, { maxIndirectSegments: 0 });
    await back2.start();
    await big;
    assert.equal(front.info.features.indirectSegments, 0, 'features re-read from the new backend');
    assert.equal(front.pending, 0);
    assert.deepEqual(disk.bytes.subarray(0, 256 * 512), pattern(0, 256, 7));
    const w = back2.info().counters.write;
    assert.deepEqual([w.requests, w.errors], [3, 0], 'cut in three: 88 + 88 + 80 sectors');
    await front.close(2000);
  }));

for (const initialSeed of [12345, 777, 4242]) test(`reconnect: three crashes during a random write workload lose no acknowledged write (seed ${initialSeed})`, () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(4096);
    let seed = initialSeed;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const storage = slowStorage(disk, () => rnd(4));
    await env.addVbd();
    let back = env.newBack(storage);
    const front = env.newFront({ maxQueues: 2, maxRingPageOrder: 1 });
    await back.start();
    await front.start();
    // 64 regions of 64 sectors; each region is written in sequence (awaited), regions run in parallel.
    const model = new Map<number, number>();
    const acked = new Map<number, number>();
    const writer = async (region: number): Promise<void> => {
      for (let v = 1; v <= 6; v++) {
        const s = region * 64;
        const n = 8 + rnd(56);
        model.set(region, v);
        await front.write(s, pattern(s, n, v).subarray(0, n * 512));
        acked.set(region, v);
        // Verify the acknowledged write right away, through the device.
        const back = new Uint8Array(n * 512);
        await front.read(s, back);
        assert.deepEqual(back, pattern(s, n, v), `region ${region} v${v}`);
      }
    };
    const work = Promise.all(Array.from({ length: 64 }, (_, r) => writer(r)));
    for (let crash = 0; crash < 3; crash++) {
      await new Promise((r) => setTimeout(r, 15 + rnd(20)));
      await back.kill();
      back = env.newBack(storage);
      await back.start();
    }
    await work;
    assert.equal(front.pending, 0);
    for (let r = 0; r < 64; r++) assert.equal(acked.get(r), 6, `region ${r} finished`);
    assert.ok(front.connects >= 2 && front.connects <= 4, `connects ${front.connects} (a crash may hit a reconnect in progress)`);
    assert.ok(front.replayed > 0, 'some crash caught requests in flight');
    await front.close(2000);
  }));
