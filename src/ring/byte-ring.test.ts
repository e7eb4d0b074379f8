import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteRingReader, ByteRingWriter, type ByteRingBroken, type ByteRingLayout } from './byte-ring.js';
import { ConsoleBackPage, ConsoleGuestPage, CONSOLE_OUT_RING } from './console-page.js';
import { PagedMemory } from './memory.js';
import { scatteredPages } from './test-support.js';
import { XenstoreGuestPage, XenstoreServerPage, XENSTORE_REQ_RING, XENSTORE_RSP_RING } from './xenstore-page.js';

function memAt(layout: ByteRingLayout, start: number): PagedMemory {
  const mem = new PagedMemory(scatteredPages(1));
  mem.store32(layout.cons, start);
  mem.store32(layout.prod, start);
  return mem;
}

const startArb = fc.oneof(fc.integer({ min: 0xfffff800, max: 0xffffffff }), fc.constant(0xfffffff0), fc.nat({ max: 0xffffffff }));
const layoutArb = fc.constantFrom(XENSTORE_REQ_RING, XENSTORE_RSP_RING, CONSOLE_OUT_RING);

test('byte rings carry any chunking intact across the 2^32 wrap', () => {
  fc.assert(
    fc.property(
      layoutArb,
      startArb,
      fc.array(fc.record({ write: fc.uint8Array({ maxLength: 1500, size: 'max' }), read: fc.integer({ min: 0, max: 3000 }) }), {
        maxLength: 30,
        size: 'max',
      }),
      (layout, start, steps) => {
        const mem = memAt(layout, start);
        const w = new ByteRingWriter(mem, layout);
        const r = new ByteRingReader(mem, layout);
        const sent: number[] = [];
        const got: number[] = [];
        for (const { write, read } of steps) {
          const space = w.space();
          assert.equal(space + r.available(), layout.size);
          const n = w.write(write);
          assert.equal(n, Math.min(space, write.length));
          sent.push(...write.subarray(0, n));
          const chunk = r.read(read);
          assert.ok(chunk.length <= layout.size);
          got.push(...chunk);
        }
        got.push(...r.read());
        // A short message on failure: a diff of thousands of bytes makes shrinking crawl.
        assert.ok(Buffer.from(got).equals(Buffer.from(sent)), `stream differs (${got.length} vs ${sent.length} bytes)`);
        assert.equal(w.broken ?? r.broken, undefined);
      },
    ),
    { numRuns: 200 },
  );
});

test('a full byte ring is full, not empty (prod == cons + size)', () => {
  const mem = memAt(XENSTORE_REQ_RING, 0xfffffe00);
  const w = new ByteRingWriter(mem, XENSTORE_REQ_RING);
  const r = new ByteRingReader(mem, XENSTORE_REQ_RING);
  assert.equal(w.write(new Uint8Array(1024).fill(7)), 1024);
  assert.equal(w.space(), 0);
  assert.equal(r.available(), 1024);
  assert.equal(w.write(new Uint8Array([1])), 0);
  assert.deepEqual(r.read(), new Uint8Array(1024).fill(7));
});

test('peer indices claiming more than the ring holds break that end, nothing thrown', () => {
  fc.assert(
    fc.property(startArb, fc.nat({ max: 0xffffffff }), (start, bogus) => {
      const mem = memAt(CONSOLE_OUT_RING, start);
      const seen: ByteRingBroken[] = [];
      const r = new ByteRingReader(mem, CONSOLE_OUT_RING, { onBroken: (b) => seen.push(b) });
      mem.store32(CONSOLE_OUT_RING.prod, bogus); // the guest's out_prod
      const bad = ((bogus - start) >>> 0) > CONSOLE_OUT_RING.size;
      const data = r.read();
      assert.equal(r.broken !== undefined, bad);
      assert.equal(seen.length, bad ? 1 : 0);
      assert.equal(data.length, bad ? 0 : (bogus - start) >>> 0);
      if (bad) assert.equal(r.available(), 0, 'broken stays broken');

      const mem2 = memAt(CONSOLE_OUT_RING, start);
      const w = new ByteRingWriter(mem2, CONSOLE_OUT_RING);
      mem2.store32(CONSOLE_OUT_RING.cons, bogus); // the daemon's out_cons, ahead of prod
      const wbad = ((start - bogus) >>> 0) > CONSOLE_OUT_RING.size;
      const n = w.write(new Uint8Array(10));
      assert.equal(w.broken !== undefined, wbad);
      if (wbad) assert.equal(n, 0);
    }),
    { numRuns: 300 },
  );
});

test('xenstore page: guest and server ends, features, reconnect', () => {
  const pages = scatteredPages(1);
  const mem = new PagedMemory(pages);
  mem.store32(XENSTORE_REQ_RING.prod, 0x1234);
  mem.store32(XENSTORE_REQ_RING.cons, 0x1234); // guests must not assume indices start at 0
  const guest = new XenstoreGuestPage(mem);
  const server = new XenstoreServerPage(mem);
  server.addServerFeatures(1);
  server.addServerFeatures(2);
  assert.equal(guest.serverFeatures(), 3);
  assert.equal(guest.requests.write(new TextEncoder().encode('hello')), 5);
  assert.equal(new TextDecoder().decode(server.requests.read()), 'hello');
  assert.equal(server.replies.write(new Uint8Array([1, 2, 3])), 3);
  assert.deepEqual([...guest.replies.read(2)], [1, 2]);
  guest.requestReconnect();
  assert.equal(server.connection(), 1);
  server.resetRings();
  guest.resync();
  assert.equal(guest.connection(), 0);
  assert.equal(guest.replies.available(), 0, 'the unread reply byte was dropped by the reset');
  assert.equal(guest.requests.write(new Uint8Array([9])), 1);
  assert.deepEqual([...server.requests.read()], [9]);
  server.setError(2);
  assert.equal(guest.error(), 2);
  assert.equal(new DataView(pages[0]!.buffer, pages[0]!.byteOffset).getUint32(2072, true), 2);
});

test('console page: guest output reaches the back, input reaches the guest', () => {
  const mem = new PagedMemory(scatteredPages(1));
  const guest = new ConsoleGuestPage(mem);
  const back = new ConsoleBackPage(mem);
  assert.equal(guest.output.space(), 2048);
  assert.equal(back.input.space(), 1024);
  guest.output.write(new TextEncoder().encode('boot ok\n'));
  assert.equal(new TextDecoder().decode(back.output.read()), 'boot ok\n');
  back.input.write(new TextEncoder().encode('ls\n'));
  assert.equal(new TextDecoder().decode(guest.input.read()), 'ls\n');
});
