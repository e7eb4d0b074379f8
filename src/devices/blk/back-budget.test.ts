/**
 * R6 on blkback's synchronous path: a serve pass yields to the event loop after
 * BACK_LIMITS.batch requests, or once it has moved BACK_LIMITS.batchSectors, whichever comes
 * first, so that a frontend with a deep ring of large requests cannot hold the backend's
 * thread (and whatever else runs there) for its whole ring at once.
 *
 * Passes are told apart by a setImmediate chain: Node runs one callback of that chain per
 * event-loop turn, and a pass runs inside one turn, so every transfer of a pass sees one
 * turn number.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACK_LIMITS } from './protocol.js';
import { MemoryStorage } from './storage/memory.js';
import type { BlockStorage, SyncBlockIo } from './storage/types.js';
import { startPair, withBlkEnv } from './test-support.js';

const MIB = 1 << 20;

/** `disk` with its syncIo recording the bytes each event-loop turn moved. */
function turnCounting(disk: MemoryStorage): { storage: BlockStorage; bytesPerTurn: Map<number, number>; stop: () => void } {
  let turn = 0;
  let running = true;
  const tick = (): void => {
    turn++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const bytesPerTurn = new Map<number, number>();
  const count = (bufs: readonly Uint8Array[]): void => {
    const bytes = bufs.reduce((n, b) => n + b.length, 0);
    bytesPerTurn.set(turn, (bytesPerTurn.get(turn) ?? 0) + bytes);
  };
  const inner = disk.syncIo!;
  const syncIo: SyncBlockIo = {
    ...inner,
    readv: (sector, dests) => {
      count(dests);
      inner.readv(sector, dests);
    },
    writev: (sector, srcs) => {
      count(srcs);
      inner.writev(sector, srcs);
    },
  };
  const storage = Object.assign(Object.create(disk) as BlockStorage, { syncIo });
  return { storage, bytesPerTurn, stop: () => void (running = false) };
}

test(`sync path budget: 40 writes of 1 MiB queued at once move in passes of at most ${(BACK_LIMITS.batchSectors * 512) / MIB} MiB (+ one request), not in one`, () =>
  withBlkEnv(async (env) => {
    const n = 40;
    const disk = new MemoryStorage((n * MIB) / 512, { sync: true });
    const { storage, bytesPerTurn, stop } = turnCounting(disk);
    try {
      // A 16-page ring (512 slots) of 1 MiB indirect requests: the whole burst fits the ring.
      const { front } = await startPair(env, storage, { front: { maxQueues: 1, maxRingPageOrder: 4, maxIndirectSegments: 256 } });
      const bufs = Array.from({ length: n }, (_, i) => {
        const b = front.allocBuffer(MIB, { persistent: true });
        b.copyIn(0, new Uint8Array(MIB).fill(i + 1));
        return b;
      });
      await Promise.all(bufs.map((b, i) => front.write((i * MIB) / 512, b)));
      for (let i = 0; i < n; i++) assert.ok(disk.bytes.subarray(i * MIB, (i + 1) * MIB).every((x) => x === i + 1), `write ${i}`);
      const turns = [...bytesPerTurn.values()];
      assert.equal(turns.reduce((a, b) => a + b, 0), n * MIB, 'every byte moved once');
      const most = Math.max(...turns);
      assert.ok(most <= BACK_LIMITS.batchSectors * 512 + MIB, `a turn moved ${most / MIB} MiB`);
      assert.ok(turns.length >= 2, `the burst moved in ${turns.length} turn(s)`);
      for (const b of bufs) b.free();
      await front.close(2000);
    } finally {
      stop();
    }
  }, 2 * ((40 * MIB) / 4096)));
