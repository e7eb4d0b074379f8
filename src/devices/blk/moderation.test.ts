/**
 * Completion moderation (front-queue.ts wakeAfter / boundModeration): with many requests in
 * flight the frontend asks to be woken after half of them, and blkback publishes its
 * answers as it goes (back-queue.ts PUBLISH_EVERY). A response the next few do not follow
 * must still arrive, within the moderation's time bound, not when the others complete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from './storage/memory.js';
import { pattern, startPair, until, withBlkEnv } from './test-support.js';

test('moderated completions: a lone response among 16 in flight arrives while the rest are still held', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256);
    disk.bytes.set(pattern(0, 16, 3));
    // Reads wait here until released one by one, in the order storage got them.
    const held: { sector: number; go: () => void }[] = [];
    const gated = Object.assign(Object.create(disk) as MemoryStorage, {
      read: async (sector: number, dst: Uint8Array) => {
        await new Promise<void>((go) => held.push({ sector, go }));
        return disk.read(sector, dst);
      },
    });
    const { front } = await startPair(env, gated, { back: { maxQueues: 1 }, front: { maxQueues: 1, persistent: false } });
    const done = new Set<number>();
    const bufs = Array.from({ length: 16 }, () => new Uint8Array(512));
    const reads = bufs.map((b, s) => front.read(s, b).then(() => void done.add(s)));
    await until(() => held.length === 16, 2000, '16 reads at storage');
    const release = async (): Promise<number> => {
      const h = held.shift()!;
      h.go();
      await until(() => done.has(h.sector), 500, `read of sector ${h.sector} answered`);
      return h.sector;
    };
    // The first answer wakes the frontend (nothing was moderated yet); the second comes
    // while it waits for half of the 15 left: only the time bound can deliver it.
    await release();
    await release();
    assert.equal(done.size, 2, 'the 14 others are still held at storage');
    while (held.length > 0) await release();
    await Promise.all(reads);
    bufs.forEach((b, s) => assert.deepEqual(b, pattern(s, 1, 3)));
    await front.close(2000);
  }));
