/**
 * Netback's tx slot decoding (TX_RING_CODEC): one ring slot read both ways, as a request and
 * as the extra-info overlay of the same 8 bytes, each exactly as the abi codec reads them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeNetifExtraInfo, decodeNetifTxRequest } from '../../abi/io/netif-codec.js';
import { TX_RING_CODEC } from './protocol.js';

test('property: a tx slot decodes as the request and as the extra-info overlay the abi codec reads from its bytes', () => {
  const typeByte = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 255 }));
  fc.assert(
    fc.property(typeByte, fc.uint8Array({ minLength: TX_RING_CODEC.requestSize - 1, maxLength: TX_RING_CODEC.requestSize - 1 }), (type, rest) => {
      const bytes = Uint8Array.of(type, ...rest);
      const v = new DataView(bytes.buffer);
      const slot = TX_RING_CODEC.decodeRequest(v);
      const { gref, offset, flags, id, size } = slot.req;
      assert.deepEqual({ gref, offset, flags, id, size }, decodeNetifTxRequest(v, 0));
      assert.deepEqual(slot.extra(), decodeNetifExtraInfo(v, 0));
    }),
    { numRuns: 500 },
  );
});
