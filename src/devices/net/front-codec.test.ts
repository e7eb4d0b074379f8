import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodesEveryByte } from '../../ring/codec-check.js';
import { RX_FRONT_CODEC, TX_FRONT_CODEC, type TxSlotOut } from './protocol.js';
import { rxFrontCodec, txFrontCodec } from './front-codec.js';

const txSlots: TxSlotOut[] = [
  { kind: 'req', req: { gref: 0xdeadbeef, offset: 6, flags: 0x3, id: 255, size: 1514 } },
  { kind: 'extra', extra: { kind: 'gso', flags: 1, size: 1448, type: 1, features: 0 } },
  { kind: 'extra', extra: { kind: 'mcast_add', flags: 0, addr: Uint8Array.of(1, 0, 0x5e, 0, 0, 1) } },
  { kind: 'extra', extra: { kind: 'hash', flags: 0, type: 3, algorithm: 1, value: 0x12345678 } },
];

function encode<T>(size: number, fill: number, f: (v: T, out: DataView) => void, v: T): Uint8Array {
  const b = new Uint8Array(size).fill(fill);
  f(v, new DataView(b.buffer));
  return b;
}

test('front codecs write every byte of a slot (so the ring skips zeroing), the same bytes as protocol.ts', () => {
  const tx = txFrontCodec();
  const rx = rxFrontCodec();
  assert.equal(tx.encodesEveryByte, true);
  assert.ok(encodesEveryByte(tx, txSlots, [{ id: 7, status: -1 }]));
  const rxSlot = RX_FRONT_CODEC.decodeResponse(new DataView(Uint8Array.of(1, 0, 2, 0, 3, 0, 0xff, 0xff).buffer));
  assert.ok(encodesEveryByte(rx, [{ id: 9, gref: 0xfffffffe }], [rxSlot]));
  for (const s of txSlots) {
    assert.deepEqual(encode(12, 0, (v, o) => tx.encodeRequest(v, o), s), encode(12, 0, (v, o) => TX_FRONT_CODEC.encodeRequest(v, o), s));
  }
  assert.deepEqual(encode(8, 0, (v, o) => rx.encodeRequest(v, o), { id: 9, gref: 77 }), encode(8, 0, (v, o) => RX_FRONT_CODEC.encodeRequest(v, o), { id: 9, gref: 77 }));
});

test('front codecs decode any bytes as protocol.ts does, into one reused object per codec', () => {
  const tx = txFrontCodec();
  const rx = rxFrontCodec();
  fc.assert(fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), (bytes) => {
    const v = new DataView(bytes.buffer);
    assert.deepEqual({ ...tx.decodeResponse(v) }, TX_FRONT_CODEC.decodeResponse(v));
    const mine = rx.decodeResponse(v);
    const ref = RX_FRONT_CODEC.decodeResponse(v);
    assert.deepEqual({ ...mine.rsp }, ref.rsp);
    assert.deepEqual(mine.extra(), ref.extra());
  }));
  const a = rx.decodeResponse(new DataView(Uint8Array.of(1, 0, 0, 0, 0, 0, 10, 0).buffer));
  const b = rx.decodeResponse(new DataView(Uint8Array.of(2, 0, 0, 0, 0, 0, 20, 0).buffer));
  assert.equal(a, b, 'the same object, rewritten');
  assert.equal(a.rsp.id, 2);
  assert.equal(a.rsp.status, 20);
});
