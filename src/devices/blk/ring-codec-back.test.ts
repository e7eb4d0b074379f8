/**
 * blkback's ring codec (ring-codec.ts blkifBackRingCodec) and its numbers-only validator
 * (request.ts checkRwWords) against the general path: over arbitrary slot bytes, on both
 * ABIs, a request that takes the fast path is the request decodeBlkifRequest sees, the same
 * requests are refused (planRequest), accepted ones span the same sectors, and a response
 * written from numbers is the bytes encodeBlkifResponse writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BLKIF_REQUEST, BLKIF_RESPONSE } from '../../abi/io/blkif.js';
import { decodeBlkifRequest, encodeBlkifResponse } from '../../abi/io/blkif-codec.js';
import { checkRwWords, planRequest, type RequestContext } from './request.js';
import { blkifBackRingCodec, fullRequest } from './ring-codec.js';

const CTX: RequestContext = { sectors: 4096, readOnly: false, blockSectors: 1, maxIndirectSegments: 32, discard: true, discardSecure: false };

/** Slot bytes: mostly READ/WRITE with small segment counts and sectors, so all the rules are reached. */
function slotArb(size: number): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      bytes: fc.uint8Array({ minLength: size, maxLength: size }),
      op: fc.constantFrom(0, 1, 1, 0, 2, 3, 5, 6, 9),
      nr: fc.constantFrom(0, 1, 2, 11, 12, 255),
      sectorHigh: fc.constantFrom(0, 0, 0, 1, 0xffff_ffff),
      sectorLow: fc.oneof(fc.nat(5000), fc.nat()),
      lastSects: fc.array(fc.constantFrom(7, 7, 3, 8), { minLength: 11, maxLength: 11 }),
    })
    .map(({ bytes, op, nr, sectorHigh, sectorLow, lastSects }) => {
      const v = new DataView(bytes.buffer);
      const f = BLKIF_REQUEST.layouts[size === 112 ? 'x86_64' : 'x86_32'].fields;
      v.setUint8(f.operation, op);
      v.setUint8(f.nr_segments, nr);
      v.setUint32(f.sector_number, sectorLow, true);
      v.setUint32(f.sector_number + 4, sectorHigh, true);
      lastSects.forEach((last, i) => {
        v.setUint8(f.seg + i * 8 + 4, last === 3 ? 2 : 0); // first_sect
        v.setUint8(f.seg + i * 8 + 5, last);
      });
      return bytes;
    });
}

for (const abi of ['x86_64', 'x86_32'] as const) {
  test(`blkback codec (${abi}): the fast path decodes, refuses and sizes as decodeBlkifRequest + planRequest do`, () => {
    const size = BLKIF_REQUEST.layouts[abi].size;
    const codec = blkifBackRingCodec(abi);
    let fast = 0;
    fc.assert(
      fc.property(slotArb(size), fc.boolean(), fc.constantFrom(1, 8), (bytes, readOnly, blockSectors) => {
        const view = new DataView(bytes.buffer);
        const ctx = { ...CTX, readOnly, blockSectors };
        const req = codec.decodeRequest(view, 0);
        const full = decodeBlkifRequest(view, 0, abi);
        assert.deepEqual(fullRequest(req), full);
        if (req.kind !== 'fast') return;
        fast++;
        const plan = planRequest(full, ctx);
        const sectors = checkRwWords(req, ctx);
        if (plan.kind === 'reject') assert.equal(sectors, plan.why);
        else assert.deepEqual([plan.kind, sectors], ['rw', plan.kind === 'rw' ? plan.data.sectors : -1]);
      }),
      { numRuns: 3000 },
    );
    assert.ok(fast > 500, `the fast path was taken (${fast} times)`);
  });

  test(`blkback codec (${abi}): a request decodes the same whatever the slot holds past its requestLength`, () => {
    const size = BLKIF_REQUEST.layouts[abi].size;
    const codec = blkifBackRingCodec(abi);
    let short = 0;
    fc.assert(
      fc.property(slotArb(size), fc.uint8Array({ minLength: size, maxLength: size }), (bytes, garbage) => {
        const n = codec.requestLength!(new DataView(bytes.buffer));
        assert.ok(n >= 4 && n <= size);
        if (n < size) short++;
        // The same request with other bytes past its length (what the ring's copy holds there: the last request's).
        const other = Uint8Array.from(garbage);
        other.set(bytes.subarray(0, n));
        const a = fullRequest(codec.decodeRequest(new DataView(bytes.buffer), 0));
        const b = fullRequest(codec.decodeRequest(new DataView(other.buffer), 0));
        assert.deepEqual(b, a);
      }),
      { numRuns: 2000 },
    );
    assert.ok(short > 150, `short requests were drawn (${short})`);
  });

  test(`blkback codec (${abi}): a response from numbers is the bytes of encodeBlkifResponse`, () => {
    const size = BLKIF_RESPONSE.layouts[abi].size;
    const codec = blkifBackRingCodec(abi);
    for (const [idLow, idHigh, operation, status] of [[5, 0, 0, 0], [0, 0x8000_0000, 1, -1], [0xffff_ffff, 0xffff_ffff, 2, -2]] as const) {
      const a = new Uint8Array(size).fill(0xaa);
      const b = new Uint8Array(size).fill(0x55);
      codec.encodeResponse({ idLow, idHigh, operation, status }, new DataView(a.buffer));
      encodeBlkifResponse(new DataView(b.buffer), 0, abi, { id: (BigInt(idHigh) << 32n) | BigInt(idLow), operation, status });
      assert.deepEqual(a, b);
    }
  });
}
