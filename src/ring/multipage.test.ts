import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BackRing } from './back.js';
import { FrontRing } from './front.js';
import { PagedMemory, RING_PAGE_SIZE } from './memory.js';
import { SRING_ENTRIES } from './sring.js';
import { scatteredPages, testCodec } from './test-support.js';

test('paged memory over scattered pages behaves as one flat range', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.array(fc.record({ at: fc.nat(), data: fc.uint8Array({ minLength: 1, maxLength: 9000 }) }), { maxLength: 12 }),
      (count, writes) => {
        const pages = scatteredPages(count);
        const mem = new PagedMemory(pages);
        const flat = new Uint8Array(count * RING_PAGE_SIZE);
        for (const { at, data } of writes) {
          const off = at % flat.length;
          const len = Math.min(data.length, flat.length - off);
          mem.copyIn(off, data, 0, len);
          flat.set(data.subarray(0, len), off);
          const back = new Uint8Array(len);
          mem.copyOut(off, back, 0, len);
          assert.ok(Buffer.from(back).equals(Buffer.from(flat.subarray(off, off + len))));
        }
        // Each byte sits in the page the ring's page list says, whatever the buffer order.
        pages.forEach((p, i) => {
          assert.ok(Buffer.from(p).equals(Buffer.from(flat.subarray(i * RING_PAGE_SIZE, (i + 1) * RING_PAGE_SIZE))));
        });
      },
    ),
    { numRuns: 100 },
  );
});

test('a multi-page ring with entries straddling non-adjacent pages round-trips them intact', () => {
  for (const [entry, pages] of [
    [20, 2],
    [36, 4],
    [100, 16],
    [112, 16],
  ] as const) {
    const mem = new PagedMemory(scatteredPages(pages));
    const codec = testCodec(entry);
    const front = FrontRing.init(mem, codec);
    const back = BackRing.attach(mem, codec);
    let straddling = 0;
    for (let i = 0; i < front.size; i++) {
      const at = SRING_ENTRIES + i * entry;
      if (Math.floor(at / RING_PAGE_SIZE) !== Math.floor((at + entry - 1) / RING_PAGE_SIZE)) straddling++;
    }
    if (entry !== 112) assert.ok(straddling > 0, `entry ${entry} over ${pages} pages straddles`);
    const words = (entry - 4) / 4;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < front.size; i++) {
        const id = round * 100000 + i;
        assert.ok(front.putRequest({ id, words: Array.from({ length: words }, (_, k) => (id * 31 + k) >>> 0) }));
      }
      front.pushRequests();
      for (let i = 0; i < front.size; i++) {
        const req = back.nextRequest();
        const id = round * 100000 + i;
        assert.equal(req?.id, id);
        assert.deepEqual(req.words, Array.from({ length: words }, (_, k) => (id * 31 + k) >>> 0));
        back.putResponse({ id, status: i });
      }
      back.pushResponses();
      for (let i = 0; i < front.size; i++) assert.deepEqual(front.nextResponse(), { id: round * 100000 + i, status: i });
    }
    assert.equal(front.size, { 20: 256, 36: 256, 100: 512, 112: 512 }[entry]);
  }
});
