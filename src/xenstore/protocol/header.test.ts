/**
 * The header codec against a reference written with DataView (little-endian u32s, as
 * xs_wire.h's struct xsd_sockmsg on every Xen host): any values, any offset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeHeader, encodeHeader } from './header.js';

const u32 = fc.nat(0xffffffff);

test('property: encodeHeader writes what a little-endian DataView writes, decodeHeader reads it back', () => {
  fc.assert(
    fc.property(fc.record({ type: u32, reqId: u32, txId: u32, len: u32 }), fc.nat(8), (h, offset) => {
      const ours = new Uint8Array(offset + 16 + 3).fill(0xee);
      encodeHeader(h, ours, offset);
      const ref = new Uint8Array(offset + 16 + 3).fill(0xee);
      const dv = new DataView(ref.buffer, offset, 16);
      [h.type, h.reqId, h.txId, h.len].forEach((v, i) => dv.setUint32(i * 4, v, true));
      assert.deepEqual(ours, ref, 'same bytes, nothing outside the 16 touched');
      assert.deepEqual(decodeHeader(ours, offset), { ...h }); // fast-check records have a null prototype
    }),
    { numRuns: 500 },
  );
});

test('a header needs 16 bytes: short buffers and bad offsets are RangeErrors', () => {
  assert.throws(() => encodeHeader({ type: 1, reqId: 1, txId: 0, len: 0 }, new Uint8Array(15)), RangeError);
  assert.throws(() => encodeHeader({ type: 1, reqId: 1, txId: 0, len: 0 }, new Uint8Array(20), 5), RangeError);
  assert.throws(() => encodeHeader({ type: 1, reqId: 1, txId: 0, len: 0 }, new Uint8Array(20), -1), RangeError);
  assert.throws(() => decodeHeader(new Uint8Array(16), 1), RangeError);
  assert.throws(() => decodeHeader(new Uint8Array(16), -1), RangeError);
  assert.deepEqual(decodeHeader(new Uint8Array(17), 1), { type: 0, reqId: 0, txId: 0, len: 0 });
});
