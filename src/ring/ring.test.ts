import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackRing } from './back.js';
import { FrontRing } from './front.js';
import { encodesEveryByte } from './codec-check.js';
import { PagedMemory } from './memory.js';
import { ringEntries, SRING_REQ_EVENT, SRING_REQ_PROD, SRING_RSP_EVENT, SRING_RSP_PROD, type RingBroken, type RingCodec } from './sring.js';
import { scatteredPages, testCodec, type TestRequest, type TestResponse } from './test-support.js';

function pair(entrySize: number, pages = 1) {
  const mem = new PagedMemory(scatteredPages(pages));
  const codec = testCodec(entrySize);
  const front = FrontRing.init(mem, codec);
  const back = BackRing.attach(mem, codec);
  return { mem, front, back };
}

test('ring sizes follow __CONST_RING_SIZE for the real protocols', () => {
  // protocols.md 0.1, computed against the C headers.
  assert.equal(ringEntries(4096, 112), 32); // blkif
  assert.equal(ringEntries(2 * 4096, 112), 64);
  assert.equal(ringEntries(16 * 4096, 112), 512);
  assert.equal(ringEntries(4096, 12), 256); // netif tx
  assert.equal(ringEntries(4096, 8), 256); // netif rx
  assert.equal(ringEntries(4096, 16), 128); // netif ctrl
});

test('only the front initialises the shared ring; the back attaches without writing', () => {
  const pages = scatteredPages(1);
  pages[0]!.fill(0xa5);
  const mem = new PagedMemory(pages);
  FrontRing.init(mem, testCodec(64));
  assert.equal(mem.load32(SRING_REQ_PROD), 0);
  assert.equal(mem.load32(SRING_RSP_PROD), 0);
  assert.equal(mem.load32(SRING_REQ_EVENT), 1);
  assert.equal(mem.load32(SRING_RSP_EVENT), 1);
  assert.deepEqual([...pages[0]!.subarray(16, 64)], new Array(48).fill(0));
  assert.equal(pages[0]![64], 0xa5, 'entries are not touched by SHARED_RING_INIT');
  const before = pages[0]!.slice();
  BackRing.attach(mem, testCodec(64));
  assert.deepEqual(pages[0], before);
});

test('a request and its response round-trip, with ring.h notifications', () => {
  const { front, back } = pair(64);
  assert.equal(front.size, 32);
  assert.ok(front.putRequest({ id: 7, words: [1, 2, 3] }));
  assert.equal(front.pushRequests(), true, 'req_event = 1 asks for the first request');
  const req = back.nextRequest();
  assert.equal(req?.id, 7);
  assert.deepEqual(req?.words.slice(0, 4), [1, 2, 3, 0]);
  assert.equal(back.nextRequest(), undefined);
  assert.ok(back.putResponse({ id: 7, status: -1 }));
  assert.equal(back.pushResponses(), true);
  assert.deepEqual(front.nextResponse(), { id: 7, status: -1 });
  // Nobody re-armed: a second request is not signalled until the back's final check.
  front.putRequest({ id: 8, words: [] });
  assert.equal(front.pushRequests(), false);
  assert.equal(back.finalCheckForRequests(), true, 'work found: do not sleep');
  assert.equal(back.nextRequest()?.id, 8);
  assert.equal(back.finalCheckForRequests(), false);
  front.putRequest({ id: 9, words: [] });
  assert.equal(front.pushRequests(), true, 'the back armed req_event before sleeping');
});

test('the front stops at RING_FULL and the back answers at most what it took', () => {
  const { front, back } = pair(64);
  for (let i = 0; i < 32; i++) assert.ok(front.putRequest({ id: i, words: [] }));
  assert.equal(front.putRequest({ id: 99, words: [] }), false);
  assert.ok(front.isFull());
  front.pushRequests();
  assert.equal(back.unconsumedRequests(), 32);
  assert.throws(() => {
    const fresh = pair(64);
    fresh.back.putResponse({ id: 0, status: 0 });
  }, /no request consumed/);
});

test('entries are built in zeroed slots: no stale byte reaches the peer (XSA-216)', () => {
  // An encoder that writes only the id: every other byte of the slot must read 0, although
  // the page held a canary pattern before (1 page: direct slots; 2 pages of 20-byte entries:
  // some slots straddle and go through the private buffer).
  for (const [entry, pages] of [
    [64, 1],
    [20, 2],
  ] as const) {
    const idOnly: RingCodec<number, number> = {
      requestSize: entry,
      responseSize: 8,
      encodeRequest: (id, out) => out.setUint32(0, id, true),
      decodeRequest: (b) => b.getUint32(0, true),
      encodeResponse: (id, out) => out.setUint32(0, id, true),
      decodeResponse: (b) => b.getUint32(0, true),
    };
    const raw = scatteredPages(pages);
    for (const p of raw) p.fill(0xa5);
    const mem = new PagedMemory(raw);
    const front = FrontRing.init(mem, idOnly);
    const back = BackRing.attach(mem, idOnly);
    for (let i = 0; i < front.size; i++) front.putRequest(i);
    front.pushRequests();
    const slot = new Uint8Array(entry);
    for (let i = 0; i < front.size; i++) {
      mem.copyOut(64 + i * entry, slot, 0, entry);
      assert.equal(new DataView(slot.buffer).getUint32(0, true), i);
      assert.ok(slot.subarray(4).every((b) => b === 0), `slot ${i} of ${entry}-byte entries`);
      assert.equal(back.nextRequest(), i);
      back.putResponse(i);
      mem.copyOut(64 + i * entry, slot, 0, 8);
      assert.ok(slot.subarray(4, 8).every((b) => b === 0));
    }
  }
});

test('requestLength: the back copies a request only as far as its head says, never past its slot', () => {
  // A request's head (its first word) gives its length in bytes in the upper half. The
  // producer writes every word; the consumer's copy must hold only the named ones (the rest
  // is what the private copy held before), on direct slots (1 page of 64-byte entries) and on
  // slots straddling a page (2 pages of 120-byte entries: index 33 spans the boundary).
  for (const [entry, pages] of [
    [64, 1],
    [120, 2],
  ] as const) {
    const codec: RingCodec<TestRequest, TestResponse> = { ...testCodec(entry), requestLength: (head) => head.getUint32(0, true) >>> 16 };
    const mem = new PagedMemory(scatteredPages(pages));
    const front = FrontRing.init(mem, codec);
    const back = BackRing.attach(mem, codec);
    const filler = (i: number): number[] => Array.from({ length: (entry - 4) / 4 }, (_, k) => 1000 * (i + 1) + k);
    // A length is rounded up to whole words (3 bytes: the head alone); 0 and 2^15 - 1 are
    // not lengths a request of this slot can have: the whole request is copied.
    const lengths = [8, 12, 4, 3, 0, entry, 0x7fff];
    for (let i = 0; i < front.size; i++) {
      const bytes = lengths[i % lengths.length]!;
      front.putRequest({ id: (bytes << 16) | i, words: filler(i) });
      front.pushRequests();
      const got = back.nextRequest()!;
      const copied = bytes >= 1 && bytes <= entry ? Math.ceil(bytes / 4) - 1 : (entry - 4) / 4;
      assert.equal(got.id & 0xffff, i);
      assert.deepEqual(got.words.slice(0, copied), filler(i).slice(0, copied), `entry ${entry}, slot ${i}: the request's words`);
      for (let k = copied; k < got.words.length; k++) assert.notEqual(got.words[k], filler(i)[k], `entry ${entry}, slot ${i}: word ${k} past the request was read`);
      back.putResponse({ id: i, status: 0 });
      back.pushResponses();
      front.nextResponse();
    }
  }
});

test('encodesEveryByte tells a codec that writes every byte from one that does not', () => {
  const full = testCodec(64);
  assert.ok(encodesEveryByte(full, [{ id: 1, words: [] }], [{ id: 1, status: -5 }]));
  const partial = { ...testCodec(64), encodeRequest: (r: { id: number }, out: DataView) => out.setUint32(0, r.id, true) };
  assert.equal(encodesEveryByte(partial, [{ id: 1 }], []), false);
});

test('a response producer beyond the requests published breaks the front, nothing thrown', () => {
  const { mem, front } = pair(64);
  const seen: RingBroken[] = [];
  const f = FrontRing.attach(mem, testCodec(64), 0, { onBroken: (b) => seen.push(b) });
  f.putRequest({ id: 1, words: [] });
  f.pushRequests();
  mem.store32(SRING_RSP_PROD, 2);
  assert.equal(f.nextResponse(), undefined);
  assert.equal(f.broken?.reason, 'response-prod-overflow');
  assert.equal(seen.length, 1);
  assert.equal(f.finalCheckForResponses(), false);
  assert.equal(f.pushRequests(), false);
  assert.equal(front.broken, undefined, 'another ring object is unaffected');
});

test('a producer index moving back behind a value already read breaks the reader', () => {
  const { mem, front, back } = pair(64);
  for (let i = 0; i < 4; i++) front.putRequest({ id: i, words: [] });
  front.pushRequests();
  assert.equal(back.nextRequest()?.id, 0); // read req_prod = 4, consumed 1
  mem.store32(SRING_REQ_PROD, 2); // still ahead of req_cons, but behind the 4 already seen
  assert.equal(back.unconsumedRequests(), 0);
  assert.equal(back.broken?.reason, 'request-prod-overflow');

  const p = pair(64);
  for (let i = 0; i < 4; i++) p.front.putRequest({ id: i, words: [] });
  p.front.pushRequests();
  for (let i = 0; i < 4; i++) p.back.nextRequest();
  for (let i = 0; i < 4; i++) p.back.putResponse({ id: i, status: 0 });
  p.back.pushResponses();
  assert.equal(p.front.nextResponse()?.id, 0); // read rsp_prod = 4
  p.mem.store32(SRING_RSP_PROD, 2);
  assert.equal(p.front.unconsumedResponses(), 0);
  assert.equal(p.front.broken?.reason, 'response-prod-overflow');
});

test('finalCheckForResponses(ahead): rsp_event ahead by that many; the back notifies only when it is crossed', () => {
  const { mem, front, back } = pair(64);
  for (let i = 0; i < 8; i++) front.putRequest({ id: i, words: [] });
  front.pushRequests();
  assert.equal(front.finalCheckForResponses(4), false);
  assert.equal(mem.load32(SRING_RSP_EVENT), 4);
  for (let i = 0; i < 3; i++) back.putResponse({ id: back.nextRequest()!.id, status: 0 });
  assert.equal(back.pushResponses(), false, 'three responses: below the moderated event');
  back.putResponse({ id: back.nextRequest()!.id, status: 0 });
  assert.equal(back.pushResponses(), true, 'the fourth crosses it');
  assert.equal(front.finalCheckForResponses(0), true, 'responses waiting: no sleep');
});

test('snapshot reports private and shared indices as they move (the stall report)', () => {
  const { front, back } = pair(64);
  front.putRequest({ id: 1, words: [] });
  front.putRequest({ id: 2, words: [] });
  assert.deepEqual(front.snapshot(), { reqProdPvt: 2, reqPushed: 0, rspCons: 0, reqProd: 0, reqEvent: 1, rspProd: 0, rspEvent: 1 });
  front.pushRequests();
  back.nextRequest();
  back.putResponse({ id: 1, status: 0 });
  back.pushResponses();
  front.nextResponse();
  front.finalCheckForResponses(3);
  assert.deepEqual(front.snapshot(), { reqProdPvt: 2, reqPushed: 2, rspCons: 1, reqProd: 2, reqEvent: 1, rspProd: 1, rspEvent: 4 });
});
