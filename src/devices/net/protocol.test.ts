/**
 * Netback's tx slot decoding (TX_RING_CODEC): one ring slot read both ways, as a request and
 * as the extra-info overlay of the same 8 bytes, each exactly as the abi codec reads them.
 * The per-ring codecs (txBackRingCodec, rxBackRingCodec) decode the same, into one object per
 * slot that only the same slot's next lap rewrites.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeNetifExtraInfo, decodeNetifRxRequest, decodeNetifTxRequest } from '../../abi/io/netif-codec.js';
import { rxBackRingCodec, TX_RING_CODEC, txBackRingCodec } from './protocol.js';

test('property: a tx slot decodes as the request and as the extra-info overlay the abi codec reads from its bytes', () => {
  const typeByte = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 255 }));
  fc.assert(
    fc.property(typeByte, fc.uint8Array({ minLength: TX_RING_CODEC.requestSize - 1, maxLength: TX_RING_CODEC.requestSize - 1 }), (type, rest) => {
      const bytes = Uint8Array.of(type, ...rest);
      const v = new DataView(bytes.buffer);
      const slot = TX_RING_CODEC.decodeRequest(v, 0);
      const { gref, offset, flags, id, size } = slot.req;
      assert.deepEqual({ gref, offset, flags, id, size }, decodeNetifTxRequest(v, 0));
      assert.deepEqual(slot.extra(), decodeNetifExtraInfo(v, 0));
    }),
    { numRuns: 500 },
  );
});

test('a per-ring codec decodes each slot into an object of that slot: other slots keep theirs until their own index comes round', () => {
  const tx = txBackRingCodec();
  const rx = rxBackRingCodec();
  assert.equal(tx.entries, 256);
  assert.equal(rx.entries, 256);
  const txSlot = (gref: number): DataView => {
    const v = new DataView(new ArrayBuffer(TX_RING_CODEC.requestSize));
    v.setUint32(0, gref, true);
    v.setUint16(4, 2, true); // offset
    v.setUint16(10, 1514, true); // size
    return v;
  };
  const rxSlot = (gref: number): DataView => {
    const v = new DataView(new ArrayBuffer(rx.requestSize));
    v.setUint16(0, gref & 0xffff, true); // id
    v.setUint32(4, gref, true);
    return v;
  };
  // A window of one lap, starting near the 2^32 wrap of the free-running index.
  const first = 0xffff_ff80;
  const held = Array.from({ length: 256 }, (_, k) => tx.decodeRequest(txSlot(1000 + k), (first + k) >>> 0));
  const heldRx = Array.from({ length: 256 }, (_, k) => rx.decodeRequest(rxSlot(2000 + k), (first + k) >>> 0));
  assert.equal(new Set(held).size, 256, 'one object per slot');
  held.forEach((s, k) => assert.deepEqual({ ...s.req }, { ...decodeNetifTxRequest(txSlot(1000 + k), 0) }));
  heldRx.forEach((r, k) => assert.deepEqual(r, decodeNetifRxRequest(rxSlot(2000 + k), 0)));
  // The next lap's first index rewrites the first object only.
  const again = tx.decodeRequest(txSlot(7), (first + 256) >>> 0);
  assert.equal(again, held[0]);
  assert.equal(held[0]!.req.gref, 7);
  assert.equal(held[1]!.req.gref, 1001);
  assert.equal(rx.decodeRequest(rxSlot(9), (first + 257) >>> 0), heldRx[1]);
  assert.equal(heldRx[2]!.gref, 2002);
});
