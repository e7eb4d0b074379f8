/**
 * A shared page that changes under the reader (XSA-155, reliability.md R2).
 *
 * `RewritingMemory` plays a hostile peer: right after the consumer reads any byte of the
 * entry area, the peer rewrites that byte. A consumer that copies an entry once and works on
 * the copy sees exactly what it would have seen on a frozen page; a consumer that reads a
 * field twice (check, then use) sees two different values and acts on one it never checked.
 * The test runs both consumers against a frozen page and the rewriting page and compares
 * their actions; the deliberately naive consumer must be caught, ours must not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BackRing } from './back.js';
import { ByteRingReader, ByteRingWriter } from './byte-ring.js';
import { FrontRing } from './front.js';
import { PagedMemory, type RingMemory } from './memory.js';
import { SRING_ENTRIES, SRING_REQ_PROD, type RingCodec } from './sring.js';
import { scatteredPages } from './test-support.js';
import { XENSTORE_REQ_RING } from './xenstore-page.js';

/** Every read of a byte in [from, to) is followed by the peer flipping that byte. */
class RewritingMemory implements RingMemory {
  reads = 0;
  constructor(
    private readonly inner: PagedMemory,
    private readonly from: number,
    private readonly to = inner.byteLength,
  ) {}
  get byteLength(): number {
    return this.inner.byteLength;
  }
  load32(offset: number): number {
    const v = this.inner.load32(offset);
    this.rewrite(offset, 4);
    return v;
  }
  store32(offset: number, value: number): void {
    this.inner.store32(offset, value);
  }
  copyOut(offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    this.inner.copyOut(offset, dst, dstOffset, length);
    this.rewrite(offset, length);
  }
  copyIn(offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    this.inner.copyIn(offset, src, srcOffset, length);
  }
  private rewrite(offset: number, length: number): void {
    const tmp = new Uint8Array(1);
    for (let a = Math.max(offset, this.from); a < Math.min(offset + length, this.to); a++) {
      this.inner.copyOut(a, tmp, 0, 1);
      tmp[0] = tmp[0]! ^ 0xff;
      this.inner.copyIn(a, tmp, 0, 1);
      this.reads++;
    }
  }
}

/**
 * The same hostile peer under the ring's fast path: a PagedMemory whose page word views (the
 * direct slot copies read them) flip each entry word right after it is read. Copies that go
 * through `copyOut` (slots straddling a page) are rewritten as above.
 */
class RewritingPages extends PagedMemory {
  reads = 0;
  override pageWords(n: number): Int32Array {
    const words = super.pageWords(n);
    return new Proxy(words, {
      get: (target, prop, receiver) => {
        if (typeof prop !== 'string' || !/^[0-9]+$/.test(prop)) return Reflect.get(target, prop, receiver) as unknown;
        const i = Number(prop);
        const v = target[i];
        if (n > 0 || i * 4 >= SRING_ENTRIES) {
          target[i] = ~target[i]!;
          this.reads++;
        }
        return v;
      },
    });
  }
  override load32(offset: number): number {
    const v = super.load32(offset);
    if (offset >= SRING_ENTRIES) super.store32(offset, ~v);
    return v;
  }
  override copyOut(offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    super.copyOut(offset, dst, dstOffset, length);
    const flipped = new Uint8Array(length);
    super.copyOut(offset, flipped, 0, length);
    for (let k = 0; k < length; k++) flipped[k] = flipped[k]! ^ 0xff;
    if (offset >= SRING_ENTRIES) super.copyIn(offset, flipped, 0, length);
    this.reads += length;
  }
}

/** A block-like request: the back must check `segments <= 11` before using it. */
interface Req {
  id: number;
  segments: number;
}
const MAX_SEGMENTS = 11;
const ENTRY = 20; // not a power of two: entries straddle the page boundaries of a 2-page ring
const codec: RingCodec<Req, { id: number }> = {
  requestSize: ENTRY,
  responseSize: 4,
  encodeRequest: (r, out) => {
    out.setUint32(0, r.id, true);
    out.setUint32(4, r.segments, true);
  },
  decodeRequest: (b) => ({ id: b.getUint32(0, true), segments: b.getUint32(4, true) }),
  encodeResponse: (r, out) => out.setUint32(0, r.id, true),
  decodeResponse: (b) => ({ id: b.getUint32(0, true) }),
};

type Action = { id: number; use: number } | { id: number; rejected: true };

/** Ours: copy once (BackRing), check the copy, use the copy. */
function copyOnceConsumer(mem: RingMemory): Action[] {
  const back = BackRing.attach(mem, codec);
  const out: Action[] = [];
  for (let req = back.nextRequest(); req !== undefined; req = back.nextRequest()) {
    out.push(req.segments <= MAX_SEGMENTS ? { id: req.id, use: req.segments } : { id: req.id, rejected: true });
  }
  return out;
}

/** Deliberately wrong: reads `segments` from the shared slot to check it, and again to use it. */
function doubleFetchConsumer(mem: RingMemory): Action[] {
  const size = BackRing.attach(mem, codec).size;
  const prod = mem.load32(SRING_REQ_PROD);
  const out: Action[] = [];
  for (let i = 0; i < prod; i++) {
    const slot = SRING_ENTRIES + (i & (size - 1)) * ENTRY;
    const id = mem.load32(slot);
    if (mem.load32(slot + 4) > MAX_SEGMENTS) out.push({ id, rejected: true });
    else out.push({ id, use: mem.load32(slot + 4) });
  }
  return out;
}

/** Two identical rings (2 scattered pages) holding `reqs`: one frozen, one rewritten on read. */
function rings(reqs: readonly Req[]): { frozen: PagedMemory; hostile: RewritingMemory; hostilePages: RewritingPages } {
  const fill = (mem: PagedMemory): void => {
    const front = FrontRing.init(mem, codec);
    for (const r of reqs) front.putRequest(r);
    front.pushRequests();
  };
  const frozen = new PagedMemory(scatteredPages(2));
  fill(frozen);
  const inner = new PagedMemory(scatteredPages(2));
  fill(inner);
  const hostilePages = new RewritingPages(scatteredPages(2));
  fill(hostilePages);
  return { frozen, hostile: new RewritingMemory(inner, SRING_ENTRIES), hostilePages };
}

const reqsArb = fc.array(fc.record({ id: fc.nat({ max: 0xffffffff }), segments: fc.nat({ max: 20 }) }), {
  minLength: 1,
  maxLength: 300,
});

test('copy-once: the back acts on what it checked, however the page changes under it', () => {
  fc.assert(
    fc.property(reqsArb, (reqs) => {
      const { frozen, hostile, hostilePages } = rings(reqs);
      const want = copyOnceConsumer(frozen);
      assert.equal(want.length, Math.min(reqs.length, BackRing.attach(frozen, codec).size));
      assert.deepEqual(copyOnceConsumer(hostile), want);
      assert.ok(hostile.reads > 0, 'the hostile page was actually read');
      // The fast path (slots inside one page, copied word by word) and the straddling slots.
      assert.deepEqual(copyOnceConsumer(hostilePages), want);
      assert.ok(hostilePages.reads > 0);
    }),
    { numRuns: 100 },
  );
});

test('the harness catches a consumer that reads a field twice', () => {
  // A guard for the test above: the same comparison must fail for a double fetch.
  const { frozen, hostile, hostilePages } = rings([
    { id: 1, segments: 3 },
    { id: 2, segments: 11 },
  ]);
  const want = doubleFetchConsumer(frozen);
  assert.deepEqual(want, [
    { id: 1, use: 3 },
    { id: 2, use: 11 },
  ]);
  const got = doubleFetchConsumer(hostile);
  assert.notDeepEqual(got, want);
  assert.notDeepEqual(doubleFetchConsumer(hostilePages), want);
  // Worse than different: it uses a value its own check would have refused.
  assert.ok(got.some((a) => 'use' in a && a.use > MAX_SEGMENTS));
});

test('copy-once: the front decodes responses from one copy', () => {
  const inner = new PagedMemory(scatteredPages(1));
  const hostile = new RewritingMemory(inner, SRING_ENTRIES);
  const front = FrontRing.init(hostile, codec);
  const back = BackRing.attach(inner, codec);
  for (let i = 0; i < 5; i++) front.putRequest({ id: i, segments: 0 });
  front.pushRequests();
  while (back.nextRequest() !== undefined);
  for (let i = 0; i < 5; i++) back.putResponse({ id: 100 + i });
  back.pushResponses();
  const ids: number[] = [];
  for (let r = front.nextResponse(); r !== undefined; r = front.nextResponse()) ids.push(r.id);
  assert.deepEqual(ids, [100, 101, 102, 103, 104]);
  // The peer did rewrite each response after the front's one read of it.
  assert.equal(inner.load32(SRING_ENTRIES), (100 ^ 0xffffffff) >>> 0);
});

test('copy-once: a byte-ring reader returns the bytes as first read', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 1024 }), fc.nat({ max: 0xffffffff }), (data, start) => {
      const inner = new PagedMemory(scatteredPages(1));
      inner.store32(XENSTORE_REQ_RING.cons, start);
      inner.store32(XENSTORE_REQ_RING.prod, start);
      new ByteRingWriter(inner, XENSTORE_REQ_RING).write(data);
      // Only the data array is hostile; the indices are exercised by the overflow tests.
      const { data: from, size } = XENSTORE_REQ_RING;
      const hostile = new RewritingMemory(inner, from, from + size);
      const reader = new ByteRingReader(hostile, XENSTORE_REQ_RING);
      assert.deepEqual(reader.read(), data);
      assert.ok(hostile.reads >= data.length);
    }),
    { numRuns: 100 },
  );
});
