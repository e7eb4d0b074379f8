/**
 * SyncRun (back-sync.ts) on its own, with a batching store: every request is answered exactly
 * once and every mapping released exactly once, whether its batch moved (by filling up, or at
 * flush) or the queue closed with runs still waiting (discard: released, never answered).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLKIF_OP_READ, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import { BATCH_RUNS, SyncRun } from './back-sync.js';
import type { SyncBlockIo } from './storage/types.js';

interface Ledger {
  readonly released: number[];
  readonly answered: [number, number][];
  readonly batches: number[];
}

/** A run over a store whose batch only counts; reads are one-page, scattered (one run each). */
function setup(): { run: SyncRun; ledger: Ledger; add: (id: number) => void } {
  const ledger: Ledger = { released: [], answered: [], batches: [] };
  const io: SyncBlockIo = {
    readv: () => undefined,
    writev: () => undefined,
    batch: { maxOps: 64, maxBuffers: 2048, run: (ops) => void ledger.batches.push(ops.length) },
  };
  const run = new SyncRun(io, { done: (e, status) => void ledger.answered.push([e.idLow, status]), log: () => undefined });
  const add = (id: number): void => {
    const entry = run.entry();
    entry.idLow = id;
    entry.operation = BLKIF_OP_READ;
    // Sectors 16 apart: never adjacent, so each request is a run of its own.
    entry.sector = id * 16;
    entry.sectors = 8;
    entry.mapped = { pages: [new Uint8Array(4096)], release: () => void ledger.released.push(id) };
    run.add(entry, 1, [0], [7]);
  };
  return { run, ledger, add };
}

const ids = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

test('SyncRun batching: a full batch moves while the pass goes on, flush moves the rest; each request answered and released once', () => {
  const { run, ledger, add } = setup();
  const n = 2 * BATCH_RUNS + 3;
  for (const id of ids(n)) add(id);
  assert.deepEqual(ledger.batches, [BATCH_RUNS, BATCH_RUNS], 'two full batches moved before the flush');
  run.flush();
  run.flush();
  assert.deepEqual(ledger.batches, [BATCH_RUNS, BATCH_RUNS, 3]);
  assert.deepEqual(ledger.answered, ids(n).map((id) => [id, BLKIF_RSP_OKAY]));
  assert.deepEqual(ledger.released, ids(n));
});

test('SyncRun batching: the queue closing with sealed and open runs waiting releases each mapping once and answers none of them', () => {
  const { run, ledger, add } = setup();
  const n = BATCH_RUNS + 4;
  for (const id of ids(n)) add(id);
  assert.deepEqual(ledger.batches, [BATCH_RUNS]);
  run.discard();
  run.discard();
  run.flush();
  assert.deepEqual(ledger.batches, [BATCH_RUNS], 'nothing moves after the discard');
  assert.deepEqual(ledger.answered, ids(BATCH_RUNS).map((id) => [id, BLKIF_RSP_OKAY]));
  assert.deepEqual([...ledger.released].sort((a, b) => a - b), ids(n));
});
