/**
 * frameMemoryOf: a bridge's pool buffers in dom0's own pages on the sim (bridge/slab.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withHypervisor } from '../../hv/sim/testing.js';
import { FramePool } from './bridge/index.js';
import { frameMemoryOf } from './frame-memory.js';

test("frame memory: dom0's pages in machine memory, copies between them exact, given back; none left means V8 buffers", () =>
  withHypervisor(async (hv) => {
    const dom0 = hv.dom0;
    const memory = frameMemoryOf(dom0);
    assert.ok(memory !== undefined, 'the sim has one');
    const free = dom0.memory.freeCount;
    const pool = new FramePool(2048, 4, memory, 4);
    // A frame in machine memory (as netback's tx batch pages are), at an odd offset.
    const [src] = dom0.memory.allocPages(1);
    const frame = dom0.memory.page(src!).subarray(2, 2 + 1514);
    frame.forEach((_, i) => (frame[i] = (i * 13) & 0xff));
    const b = pool.copy(frame)!;
    assert.equal(b.current.buffer, hv.table.machine.sab, 'the copy lies in machine memory');
    assert.deepEqual(b.current, frame);
    assert.equal(b.current.byteOffset % 8, 2);
    assert.equal(dom0.memory.freeCount, free - 2, 'one page for the pool, one for the frame');
    pool.dispose();
    dom0.memory.freePages([src!]);
    assert.equal(dom0.memory.freeCount, free, 'the pool gave its page back');
    // dom0 with no page to spare.
    const hog = dom0.memory.allocPages(dom0.memory.freeCount);
    const starved = new FramePool(2048, 4, memory, 4);
    const c = starved.copy(Uint8Array.of(1, 2, 3))!;
    assert.notEqual(c.current.buffer, hv.table.machine.sab);
    assert.deepEqual([...c.current], [1, 2, 3]);
    assert.equal(starved.pageCount, 0);
    dom0.memory.freePages(hog);
  }));
