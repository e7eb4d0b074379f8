/**
 * Netback's grant-copy batches keep a frame's address mod 8 from the sender's page to the
 * receiver's buffer (V8 copies shared memory word by word only between addresses equal mod 8),
 * with the bytes exact and the rx response offset saying where the frame starts; with the
 * batch's pages private or in machine memory (where the copies are memory.copy's).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GNTST_okay } from '../../abi/grant_table.js';
import type { DomId, Frame } from '../../base/index.js';
import type { DomainTable } from '../../memory/index.js';
import { SimGrantOps } from '../../grant/ops.js';
import { grantTestTable } from '../../grant/test-support.js';
import { PAGE_SIZE } from '../../hv/platform.js';
import { RxBatch } from './rx-batch.js';
import { TX_BATCH, TxBatch, takeBatchPages } from './tx-batch.js';
import { withHypervisor } from '../../hv/sim/testing.js';

const FRONT = 0 as DomId;
const BACK = 1 as DomId;

function sides(): { front: SimGrantOps; back: SimGrantOps; table: DomainTable } {
  const t = grantTestTable(2);
  return { front: new SimGrantOps(t, FRONT, t.newTid()), back: new SimGrantOps(t, BACK, t.newTid()), table: t };
}

/** TX_BATCH pages: private, or machine frames past every domain's (as dom0's own pages are). */
function batchPages(where: 'private' | 'machine', table: DomainTable): Uint8Array[] {
  return Array.from({ length: TX_BATCH }, (_, i) => (where === 'private' ? new Uint8Array(PAGE_SIZE) : table.machine.bytes(1000 + i)));
}

function pattern(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (i * 7 + seed) & 0xff);
}

for (const where of ['private', 'machine'] as const) test(`tx batch (${where} pages): each packet copied out of its page at the page offset mod 8, bytes exact`, () => {
  const { front, back, table } = sides();
  const pages = batchPages(where, table);
  const batch = new TxBatch(FRONT, pages);
  const cases = [
    { offset: 0, size: 1514 },
    { offset: 2, size: 1514 },
    { offset: 13, size: 60 },
    { offset: PAGE_SIZE - 100, size: 100 },
  ];
  const refs = cases.map((c, i) => {
    front.view(FRONT).page(3 + i).set(pattern(c.size, i), c.offset);
    return front.grantAccess(BACK, (3 + i) as Frame, true);
  });
  cases.forEach((c, i) => batch.stage({ gref: refs[i]!, offset: c.offset, size: c.size, id: i, flags: 0 }));
  assert.deepEqual(batch.copy(back).slice(0, batch.size), cases.map(() => GNTST_okay));
  cases.forEach((c, i) => {
    const f = batch.frame(i);
    assert.equal(f.byteOffset & 7, c.offset & 7, `packet ${i}`);
    assert.equal(f.buffer, pages[i]!.buffer, `packet ${i} is in its batch page`);
    assert.deepEqual(f, pattern(c.size, i), `packet ${i}`);
  });
  batch.clear();
  for (const r of refs) assert.ok(front.endAccess(r));
});

for (const where of ['private', 'machine'] as const) test(`rx batch (${where} frames): a frame goes at its own address mod 8 in the posted buffer when it fits, else at 0`, () => {
  const { front, back, table } = sides();
  const idle = new Uint8Array(8);
  const batch = new RxBatch(FRONT, idle);
  const arena = where === 'private' ? new Uint8Array(4 * PAGE_SIZE) : table.machine.bytes(1000, 4);
  const frames = [
    arena.subarray(0, 1514),
    arena.subarray(PAGE_SIZE + 2, PAGE_SIZE + 2 + 1514),
    arena.subarray(2 * PAGE_SIZE + 3, 3 * PAGE_SIZE + 2), // 4095 bytes: at 3 it would cross the page
  ];
  frames.forEach((f, i) => f.set(pattern(f.length, 40 + i)));
  const refs = frames.map((_, i) => front.grantAccess(BACK, (3 + i) as Frame, false));
  frames.forEach((f, i) => batch.stage(f, refs[i]!, i, 0));
  assert.deepEqual(batch.copy(back).slice(0, batch.size), frames.map(() => GNTST_okay));
  assert.deepEqual(frames.map((_, i) => batch.offset(i)), [0, 2, 0]);
  frames.forEach((f, i) => {
    const page = front.view(FRONT).page(3 + i);
    assert.deepEqual(page.subarray(batch.offset(i), batch.offset(i) + f.length), pattern(f.length, 40 + i), `frame ${i}`);
  });
  batch.clear();
  // The next batch: the same views in the same slots keep their offsets; another view in a
  // slot has its own looked up.
  frames.forEach((f, i) => batch.stage(f, refs[i]!, i, 0));
  assert.deepEqual(frames.map((_, i) => batch.offset(i)), [0, 2, 0]);
  batch.clear();
  batch.stage(arena.subarray(5, 105), refs[0]!, 0, 0);
  batch.stage(arena.subarray(PAGE_SIZE, PAGE_SIZE + 100), refs[1]!, 1, 0);
  assert.deepEqual([batch.offset(0), batch.offset(1)], [5, 0]);
  assert.deepEqual(batch.copy(back).slice(0, batch.size), [GNTST_okay, GNTST_okay]);
  assert.deepEqual(front.view(FRONT).page(3).subarray(5, 105), arena.subarray(5, 105));
  batch.release();
  for (const r of refs) assert.ok(front.endAccess(r));
});

test("batch pages: dom0's own pages on the sim (in machine memory), given back on dispose; private ones when dom0 has none to spare", () =>
  withHypervisor(async (hv) => {
    const dom0 = hv.dom0;
    const free = dom0.memory.freeCount;
    const taken = takeBatchPages(dom0);
    assert.equal(taken.pages.length, TX_BATCH);
    assert.equal(dom0.memory.freeCount, free - TX_BATCH);
    assert.ok(taken.pages.every((p) => p.buffer === hv.table.machine.sab && p.length === PAGE_SIZE));
    // dom0 with fewer than TX_BATCH pages left: private pages, nothing taken.
    const hog = dom0.memory.allocPages(dom0.memory.freeCount - 10);
    const privatePages = takeBatchPages(dom0);
    assert.equal(privatePages.pages.length, TX_BATCH);
    assert.ok(privatePages.pages.every((p) => p.buffer !== hv.table.machine.sab && p.length === PAGE_SIZE));
    assert.equal(dom0.memory.freeCount, 10);
    privatePages.dispose();
    dom0.memory.freePages(hog);
    taken.dispose();
    taken.dispose();
    assert.equal(dom0.memory.freeCount, free, 'given back once');
  }));
