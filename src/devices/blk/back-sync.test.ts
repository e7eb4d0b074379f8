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

/** One request as added: its direction, place, and the bytes of each segment (its own ArrayBuffer). */
interface Sent {
  readonly id: number;
  readonly write: boolean;
  readonly sector: number;
  readonly segs: Uint8Array[];
}

/** What a transfer was handed, copied when it was handed (a reused run must not change it after). */
interface Moved {
  readonly write: boolean;
  readonly sector: number;
  readonly bytes: number;
  readonly bufs: Uint8Array[];
}

/**
 * Every transfer moved exactly its requests' segments, back to back from its sector in their
 * direction, with its byte count theirs; every request in exactly one transfer, whole.
 */
function checkMoved(sent: readonly Sent[], moved: readonly Moved[], pass: number): void {
  const owner = new Map(sent.map((s) => [s.segs[0]!.buffer, s]));
  const seen = new Set<number>();
  for (const [k, m] of moved.entries()) {
    const what = `pass ${pass} transfer ${k}`;
    assert.equal(m.bytes, m.bufs.reduce((n, b) => n + b.byteLength, 0), `${what}: bytes are its buffers'`);
    let sector = m.sector;
    for (let b = 0; b < m.bufs.length; ) {
      const s = owner.get(m.bufs[b]!.buffer);
      assert.ok(s !== undefined && !seen.has(s.id), `${what}: buffer ${b} is the start of a request not moved before`);
      seen.add(s.id);
      assert.equal(s.write, m.write, `${what}: request ${s.id}'s direction`);
      assert.equal(s.sector, sector, `${what}: request ${s.id} where the transfer has it`);
      for (const seg of s.segs) {
        const got = m.bufs[b++];
        assert.ok(got !== undefined && got.buffer === seg.buffer && got.byteOffset === seg.byteOffset && got.byteLength === seg.byteLength, `${what}: request ${s.id}'s segment`);
        sector += seg.byteLength / 512;
      }
    }
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), sent.map((s) => s.id), `pass ${pass}: each request moved once`);
}

test('SyncRun reuse: pass after pass of mixed requests (lone and adjacent, reads and writes, whole and partial pages), every transfer carries only its own requests', () => {
  for (const batching of [true, false]) {
    const moved: Moved[] = [];
    const record = (write: boolean, sector: number, bufs: readonly Uint8Array[], bytes = bufs.reduce((n, b) => n + b.byteLength, 0)): void =>
      void moved.push({ write, sector, bytes, bufs: [...bufs] });
    const io: SyncBlockIo = {
      readv: (sector, dests) => record(false, sector, dests),
      writev: (sector, srcs) => record(true, sector, srcs),
      ...(batching ? { batch: { maxOps: 64, maxBuffers: 2048, run: (ops) => ops.forEach((op) => record(op.write, op.sector, op.bufs, op.bytes)) } } : {}),
    };
    let answered = 0;
    const run = new SyncRun(io, { done: () => void answered++, log: () => undefined });
    let seed = 7;
    const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    let id = 0;
    for (let pass = 0; pass < 40; pass++) {
      const sent: Sent[] = [];
      moved.length = 0;
      for (let r = 0; r < 1 + next(14); r++) {
        const prev = sent.at(-1);
        const follows = prev !== undefined && next(2) === 0;
        const write = follows ? prev.write : next(3) === 0;
        const sector = follows ? prev.sector + prev.segs.reduce((n, s) => n + s.byteLength / 512, 0) : next(512) * 8;
        // Whole pages (one to three), or one partial page: sectors first..last of it.
        const first = next(4) === 0 ? 1 + next(3) : 0;
        const last = first === 0 ? 7 : first + next(7 - first);
        const count = first === 0 ? 1 + next(3) : 1;
        const pages = Array.from({ length: count }, () => new Uint8Array(4096));
        const segs = pages.map((p, i) => (i === 0 && first !== 0 ? p.subarray(first * 512, (last + 1) * 512) : p));
        const s: Sent = { id: id++, write, sector, segs };
        const e = run.entry();
        e.idLow = s.id;
        e.write = write;
        e.sector = sector;
        e.sectors = segs.reduce((n, g) => n + g.byteLength / 512, 0);
        e.mapped = { pages, release: () => undefined };
        run.add(e, count, pages.map((_, i) => (i === 0 ? first : 0)), pages.map((_, i) => (i === 0 ? last : 7)));
        sent.push(s);
      }
      run.flush();
      checkMoved(sent, moved, pass);
    }
    assert.equal(answered, id, `batching ${batching}: every request answered`);
  }
});

test('SyncRun: segments next to each other in one buffer move as one view; gaps and partial pages split them; the bytes are the segments\'', () => {
  const memory = new Uint8Array(new SharedArrayBuffer(16 * 4096));
  memory.forEach((_, i) => (memory[i] = (i * 7) & 0xff));
  const moved: Uint8Array[][] = [];
  const io: SyncBlockIo = { readv: (_s, dests) => void moved.push([...dests]), writev: () => undefined };
  const run = new SyncRun(io, { done: () => undefined, log: () => undefined });
  // Pages 2, 3, 4, then 9 (a gap), then 10 from sector 1 (a partial first page), then 11.
  const frames = [2, 3, 4, 9, 10, 11];
  const first = [0, 0, 0, 0, 1, 0];
  const last = [7, 7, 7, 7, 7, 5];
  const entry = run.entry();
  entry.operation = BLKIF_OP_READ;
  entry.sector = 0;
  entry.sectors = frames.reduce((n, _, i) => n + last[i]! - first[i]! + 1, 0);
  entry.mapped = {
    pages: frames.map((f) => memory.subarray(f * 4096, (f + 1) * 4096)),
    buffer: memory.buffer,
    offsets: frames.map((f) => f * 4096),
    release: () => undefined,
  };
  run.add(entry, frames.length, first, last);
  run.flush();
  assert.equal(moved.length, 1);
  const spans = moved[0]!.map((v) => [v.byteOffset, v.byteOffset + v.length]);
  assert.deepEqual(spans, [[2 * 4096, 5 * 4096], [9 * 4096, 10 * 4096], [10 * 4096 + 512, 11 * 4096 + 6 * 512]]);
  assert.ok(moved[0]!.every((v) => v.buffer === memory.buffer));
  // The same segments without `offsets`: one view a segment, the same bytes in the same order.
  const perPage: Uint8Array[][] = [];
  const run2 = new SyncRun({ readv: (_s, dests) => void perPage.push([...dests]), writev: () => undefined }, { done: () => undefined, log: () => undefined });
  const e2 = run2.entry();
  Object.assign(e2, { operation: BLKIF_OP_READ, sector: 0, sectors: entry.sectors, mapped: { pages: entry.mapped.pages, release: () => undefined } });
  run2.add(e2, frames.length, first, last);
  run2.flush();
  assert.equal(perPage[0]!.length, frames.length);
  const concat = (vs: Uint8Array[]): number[] => vs.flatMap((v) => [...v]);
  assert.deepEqual(concat(moved[0]!), concat(perPage[0]!));
});
