import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { AbiName } from '../layout.js';
import {
  decodeBlkifRequest,
  decodeBlkifResponse,
  decodeBlkifResponseInto,
  encodeBlkifDiscardFields,
  encodeBlkifIndirectFields,
  encodeBlkifIndirectGref,
  encodeBlkifRequest,
  encodeBlkifResponse,
  encodeBlkifRwFields,
  encodeBlkifRwSegment,
  zeroBlkifRequest,
  type BlkifRequestOut,
  type BlkifResponseWords,
} from './blkif-codec.js';
import { BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_REQUEST } from './blkif.js';

/** Hex with spaces allowed; runs of zeros are written as `00*n`. */
function hex(spec: string): Uint8Array {
  const bytes: number[] = [];
  for (const tok of spec.trim().split(/\s+/)) {
    const [b, n] = tok.split('*');
    for (let i = 0; i < Number(n ?? 1); i++) bytes.push(parseInt(b!, 16));
  }
  return Uint8Array.from(bytes);
}

function slot(abi: AbiName): { bytes: Uint8Array; view: DataView } {
  // Pre-filled with garbage: the encoder must zero padding and unused segments.
  const bytes = new Uint8Array(BLKIF_REQUEST.layouts[abi].size).fill(0xee);
  return { bytes, view: new DataView(bytes.buffer) };
}

const write: BlkifRequestOut = {
  kind: 'rw',
  operation: BLKIF_OP_WRITE,
  nr_segments: 2,
  handle: 3,
  id: 0x0102030405060708n,
  sector_number: 0x10n,
  seg: [
    { gref: 0x11223344, first_sect: 0, last_sect: 7 },
    { gref: 5, first_sect: 1, last_sect: 3 },
  ],
};

test('blkif: write request golden bytes, x86_64 (4 bytes of padding before id)', () => {
  const { bytes, view } = slot('x86_64');
  encodeBlkifRequest(view, 0, 'x86_64', write);
  const want = hex(`01 02 03 00 00*4  08 07 06 05 04 03 02 01  10 00*7
    44 33 22 11 00 07 00 00  05 00 00 00 01 03 00 00  00*72`);
  assert.deepEqual(bytes, want);
  assert.deepEqual(decodeBlkifRequest(view, 0, 'x86_64'), write);
});

test('blkif: write request golden bytes, x86_32 (id right after handle)', () => {
  const { bytes, view } = slot('x86_32');
  encodeBlkifRequest(view, 0, 'x86_32', write);
  const want = hex(`01 02 03 00  08 07 06 05 04 03 02 01  10 00*7
    44 33 22 11 00 07 00 00  05 00 00 00 01 03 00 00  00*72`);
  assert.equal(want.length, 108);
  assert.deepEqual(bytes, want);
  assert.deepEqual(decodeBlkifRequest(view, 0, 'x86_32'), write);
});

test('blkif: discard and indirect golden bytes, x86_64', () => {
  const { bytes, view } = slot('x86_64');
  const discard: BlkifRequestOut = {
    kind: 'discard', operation: BLKIF_OP_DISCARD, flag: 1, handle: 0x0102, id: 9n, sector_number: 0x800n, nr_sectors: 0x100n,
  };
  encodeBlkifRequest(view, 0, 'x86_64', discard);
  assert.deepEqual(bytes, hex('05 01 02 01 00*4  09 00*7  00 08 00*6  00 01 00*6  00*80'));
  assert.deepEqual(decodeBlkifRequest(view, 0, 'x86_64'), discard);

  const indirect: BlkifRequestOut = {
    kind: 'indirect', operation: BLKIF_OP_INDIRECT, indirect_op: BLKIF_OP_READ, nr_segments: 600, id: 1n,
    sector_number: 2n, handle: 4, indirect_grefs: [10, 11, 0, 0, 0, 0, 0, 0],
  };
  encodeBlkifRequest(view, 0, 'x86_64', indirect);
  assert.deepEqual(bytes, hex('06 00 58 02 00*4  01 00*7  02 00*7  04 00 00 00  0a 00 00 00 0b 00 00 00 00*24  00*52'));
  assert.deepEqual(decodeBlkifRequest(view, 0, 'x86_64'), indirect);
});

test('blkif: an unknown operation decodes to kind unknown with its id, never throws', () => {
  for (const abi of ['x86_64', 'x86_32'] as const) {
    const { view } = slot(abi);
    encodeBlkifRequest(view, 0, abi, write);
    view.setUint8(0, 4); // BLKIF_OP_RESERVED_1: defined, but not something we decode
    assert.deepEqual(decodeBlkifRequest(view, 0, abi), { kind: 'unknown', op: 4, id: 0x0102030405060708n });
    view.setUint8(0, 200);
    assert.equal(decodeBlkifRequest(view, 0, abi).kind, 'unknown');
  }
});

test('blkif: a peer claiming 255 segments decodes only the 11 the slot holds', () => {
  const { view } = slot('x86_64');
  encodeBlkifRequest(view, 0, 'x86_64', write);
  view.setUint8(1, 255);
  const req = decodeBlkifRequest(view, 0, 'x86_64');
  assert.equal(req.kind, 'rw');
  if (req.kind === 'rw') {
    assert.equal(req.nr_segments, 255);
    assert.equal(req.seg.length, 11);
  }
});

test('blkif: response golden bytes per ABI', () => {
  const rsp = { id: 0x07n, operation: BLKIF_OP_READ, status: -1 };
  const b64 = new Uint8Array(16).fill(0xee);
  encodeBlkifResponse(new DataView(b64.buffer), 0, 'x86_64', rsp);
  assert.deepEqual(b64, hex('07 00*7 00 00 ff ff 00*4'));
  const b32 = new Uint8Array(16).fill(0xee);
  encodeBlkifResponse(new DataView(b32.buffer), 0, 'x86_32', rsp);
  assert.deepEqual(b32, hex('07 00*7 00 00 ff ff ee*4'), 'x86_32 response is 12 bytes');
  assert.deepEqual(decodeBlkifResponse(new DataView(b64.buffer), 0, 'x86_64'), rsp);
  assert.deepEqual(decodeBlkifResponse(new DataView(b32.buffer), 0, 'x86_32'), rsp);
});

test('blkif: read/write requests round-trip on both ABIs (property)', () => {
  const seg = fc.record({ gref: fc.nat({ max: 0xffffffff }), first_sect: fc.nat({ max: 7 }), last_sect: fc.nat({ max: 7 }) });
  const req = fc.record({
    kind: fc.constant('rw' as const),
    operation: fc.constantFrom(BLKIF_OP_READ, BLKIF_OP_WRITE),
    handle: fc.nat({ max: 0xffff }),
    id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    sector_number: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    seg: fc.array(seg, { maxLength: 11 }),
  });
  fc.assert(
    fc.property(req, fc.constantFrom<AbiName>('x86_64', 'x86_32'), (r, abi) => {
      // fast-check builds null-prototype records; compare plain objects.
      const full = { ...r, seg: r.seg.map((x) => ({ ...x })), nr_segments: r.seg.length };
      const { view } = slot(abi);
      encodeBlkifRequest(view, 0, abi, full);
      assert.deepEqual(decodeBlkifRequest(view, 0, abi), full);
    }),
    { numRuns: 200 },
  );
});

test('blkif: the number encoders give the same bytes as the BigInt records for ids and sectors below 2^53 (property)', () => {
  const u53 = fc.oneof(fc.nat({ max: 0xffffffff }), fc.maxSafeNat());
  const arb = fc.record({
    operation: fc.constantFrom(BLKIF_OP_READ, BLKIF_OP_WRITE),
    handle: fc.nat({ max: 0xffff }),
    id: u53,
    sector: u53,
    grefs: fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 11 }),
    nrSectors: u53,
    abi: fc.constantFrom<AbiName>('x86_64', 'x86_32'),
  });
  fc.assert(
    fc.property(arb, (r) => {
      const seg = r.grefs.map((gref, i) => ({ gref, first_sect: i % 8, last_sect: 7 }));
      const cases: [BlkifRequestOut, (v: DataView) => void][] = [
        [
          { kind: 'rw', operation: r.operation, nr_segments: seg.length, handle: r.handle, id: BigInt(r.id), sector_number: BigInt(r.sector), seg },
          (v) => {
            encodeBlkifRwFields(v, 0, r.abi, r.operation, seg.length, r.handle, r.id, r.sector);
            seg.forEach((s, i) => encodeBlkifRwSegment(v, 0, r.abi, i, s.gref, s.first_sect, s.last_sect));
          },
        ],
        [
          { kind: 'discard', operation: BLKIF_OP_DISCARD, flag: 1, handle: r.handle, id: BigInt(r.id), sector_number: BigInt(r.sector), nr_sectors: BigInt(r.nrSectors) },
          (v) => encodeBlkifDiscardFields(v, 0, r.abi, 1, r.handle, r.id, r.sector, r.nrSectors),
        ],
        [
          { kind: 'indirect', operation: BLKIF_OP_INDIRECT, indirect_op: r.operation, nr_segments: 513, id: BigInt(r.id), sector_number: BigInt(r.sector), handle: r.handle, indirect_grefs: r.grefs.slice(0, 8) },
          (v) => {
            encodeBlkifIndirectFields(v, 0, r.abi, r.operation, 513, r.handle, r.id, r.sector);
            r.grefs.slice(0, 8).forEach((g, i) => encodeBlkifIndirectGref(v, 0, r.abi, i, g));
          },
        ],
      ];
      for (const [req, byNumbers] of cases) {
        const want = slot(r.abi);
        encodeBlkifRequest(want.view, 0, r.abi, req);
        const got = slot(r.abi);
        zeroBlkifRequest(got.view, 0, r.abi);
        byNumbers(got.view);
        assert.deepEqual(got.bytes, want.bytes, req.kind);
      }
    }),
    { numRuns: 200 },
  );
});

test('blkif: a u64 from a number must be a safe non-negative integer; segment and gref indices are bounded', () => {
  const { view } = slot('x86_64');
  for (const bad of [-1, 2 ** 53, 1.5, Number.NaN]) {
    assert.throws(() => encodeBlkifRwFields(view, 0, 'x86_64', BLKIF_OP_READ, 1, 0, bad, 0), RangeError, String(bad));
  }
  assert.throws(() => encodeBlkifRwSegment(view, 0, 'x86_64', 11, 1, 0, 7), RangeError);
  assert.throws(() => encodeBlkifIndirectGref(view, 0, 'x86_64', 8, 1), RangeError);
});

test('blkif: decodeBlkifResponseInto reads the same response as decodeBlkifResponse, id as two u32 halves', () => {
  const arb = fc.record({ id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), operation: fc.nat({ max: 255 }), status: fc.integer({ min: -32768, max: 32767 }) });
  const out: BlkifResponseWords = { idLow: -1, idHigh: -1, operation: -1, status: 0 };
  fc.assert(
    fc.property(arb, fc.constantFrom<AbiName>('x86_64', 'x86_32'), (rsp, abi) => {
      const view = new DataView(new Uint8Array(16).fill(0xee).buffer);
      encodeBlkifResponse(view, 0, abi, rsp);
      const want = decodeBlkifResponse(view, 0, abi);
      const got = decodeBlkifResponseInto(view, 0, abi, out);
      assert.equal(got, out, 'the caller\'s record, reused');
      assert.deepEqual(
        { id: (BigInt(got.idHigh) << 32n) | BigInt(got.idLow), operation: got.operation, status: got.status },
        { id: want.id, operation: want.operation, status: want.status },
      );
    }),
    { numRuns: 200 },
  );
});
