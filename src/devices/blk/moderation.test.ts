/**
 * Completion moderation (front-queue.ts wakeAfter / boundModeration): with many requests in
 * flight the frontend asks to be woken after a quarter of them, and blkback publishes its
 * answers as it goes (back-queue.ts PUBLISH_EVERY). A response the next few do not follow
 * must still arrive, within the moderation's time bound, not when the others complete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRawBack } from './raw-back.js';
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
    // while it waits for a quarter of the 15 left (3): only the time bound can deliver it.
    await release();
    await release();
    assert.equal(done.size, 2, 'the 14 others are still held at storage');
    while (held.length > 0) await release();
    await Promise.all(reads);
    bufs.forEach((b, s) => assert.deepEqual(b, pattern(s, 1, 3)));
    await front.close(2000);
  }));

test('moderation is set through rsp_event, turned off when its bound expires, and on again after a burst', () =>
  withBlkEnv(async (env) => {
    const { raw, front, started } = await startRawBack(env);
    await started;
    // rsp_event as the frontend left it after taking each answer (read in the read's own
    // continuation: the 1 ms bound may expire before a poll would look).
    const armed = new Map<bigint, number>();
    const reads = Array.from({ length: 16 }, (_, s) => front.read(s, new Uint8Array(512)));
    const reqs = await raw.waitRequests(16);
    reads.forEach((r, i) => void r.then(() => armed.set(reqs[i]!.id, raw.rspEvent), () => undefined));
    const answer = async (...rs: typeof reqs): Promise<number> => {
      raw.respond(...rs.map((r) => ({ id: r.id, operation: 0, status: 0 })));
      await until(() => rs.every((r) => armed.has(r.id)), 1000, 'answers taken');
      return armed.get(rs.at(-1)!.id)!;
    };
    // One answer taken, 15 in flight: wake me after a quarter of them (rsp_cons 1 + 3).
    assert.equal(await answer(reqs[0]!), 1 + 3);
    // Nothing follows within the bound: the frontend asks for the next response instead...
    await until(() => raw.rspEvent === 2, 1000, 'bound expired: rsp_event = rsp_cons + 1');
    // ...and stays unmoderated while answers come one at a time (14 in flight, yet + 1).
    assert.equal(await answer(reqs[1]!), 2 + 1);
    // A burst of four in one wake-up turns it back on: rsp_cons 6 + a quarter of the 10 left.
    assert.equal(await answer(...reqs.slice(2, 6)), 6 + 2);
    await answer(...reqs.slice(6));
    await Promise.all(reads);
    raw.dispose();
  }));
