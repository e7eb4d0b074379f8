import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameParser } from './parser.js';
import { decodeHeader, encodeHeader, encodeMessage, type XsMessage } from './header.js';
import { HEADER_SIZE, PAYLOAD_MAX, XsOp } from './ops.js';

test('header golden bytes: little-endian type, req_id, tx_id, len', () => {
  const bytes = encodeHeader({ type: XsOp.read, reqId: 0x01020304, txId: 7, len: 5 });
  assert.deepEqual([...bytes], [2, 0, 0, 0, 4, 3, 2, 1, 7, 0, 0, 0, 5, 0, 0, 0]);
  assert.deepEqual(decodeHeader(bytes), { type: 2, reqId: 0x01020304, txId: 7, len: 5 });
});

test('encodeMessage refuses a payload over XENSTORE_PAYLOAD_MAX', () => {
  assert.throws(() => encodeMessage({ type: 2, reqId: 1, txId: 0, payload: new Uint8Array(PAYLOAD_MAX + 1) }), RangeError);
  assert.equal(encodeMessage({ type: 2, reqId: 1, txId: 0, payload: new Uint8Array(PAYLOAD_MAX) }).length, HEADER_SIZE + PAYLOAD_MAX);
});

test('a zero-length message completes with its header', () => {
  const p = new FrameParser();
  const r = p.push(encodeMessage({ type: 6, reqId: 9, txId: 0, payload: new Uint8Array(0) }));
  assert.equal(r.messages.length, 1);
  assert.equal(r.messages[0]!.payload.length, 0);
  assert.equal(p.pending, 0);
});

test('an oversized header is a framing error that poisons the parser', () => {
  const p = new FrameParser();
  const good = encodeMessage({ type: 2, reqId: 1, txId: 0, payload: new Uint8Array([0x2f, 0]) });
  const badHead = encodeHeader({ type: 2, reqId: 2, txId: 0, len: PAYLOAD_MAX + 1 });
  const both = new Uint8Array([...good, ...badHead, ...good]);
  const r = p.push(both);
  assert.equal(r.messages.length, 1, 'the message before the bad header is delivered');
  assert.equal(r.error?.kind, 'payload-too-large');
  assert.deepEqual(p.push(good).messages, [], 'nothing after the error is parsed');
  p.reset();
  assert.equal(p.push(good).messages.length, 1, 'reset starts over at a boundary');
});

const arbMessage: fc.Arbitrary<XsMessage> = fc.record({
  type: fc.nat(30),
  reqId: fc.nat(0xffffffff),
  txId: fc.nat(0xffffffff),
  payload: fc.uint8Array({ maxLength: 300 }),
});

/** Split `bytes` at the given cut points (sorted, deduplicated, in range). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  return out;
}

test('property: any chunking of a message stream yields the same messages', () => {
  fc.assert(
    fc.property(fc.array(arbMessage, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (msgs, cuts) => {
      const stream = Buffer.concat(msgs.map((m) => encodeMessage(m)));
      const p = new FrameParser();
      const got: XsMessage[] = [];
      for (const chunk of split(new Uint8Array(stream), cuts)) {
        const r = p.push(chunk);
        assert.equal(r.error, undefined);
        got.push(...r.messages);
      }
      assert.equal(got.length, msgs.length);
      got.forEach((m, i) => {
        const want = msgs[i]!;
        assert.deepEqual([m.type, m.reqId, m.txId], [want.type, want.reqId, want.txId]);
        assert.deepEqual([...m.payload], [...want.payload]);
      });
      assert.equal(p.pending, 0);
    }),
    { numRuns: 300 },
  );
});

test('fuzz: random bytes in random chunks never throw and stay bounded', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 9000 }), fc.array(fc.nat(), { maxLength: 30 }), (bytes, cuts) => {
      const p = new FrameParser();
      let errors = 0;
      for (const chunk of split(bytes, cuts)) {
        const r = p.push(chunk);
        if (r.error !== undefined) errors++;
        for (const m of r.messages) assert.ok(m.payload.length <= PAYLOAD_MAX);
        assert.ok(p.pending <= HEADER_SIZE + PAYLOAD_MAX);
      }
      assert.ok(errors <= 1, 'an error is reported once');
    }),
    { numRuns: 500 },
  );
});
