/**
 * The backend's request validator (request.ts), table-driven (reliability.md R3): every rule
 * of Linux blkback's dispatch_rw_block_io / dispatch_discard_io as a row, plus a property:
 * over arbitrary request records the plan is OKAY-able only when an independent oracle agrees.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR } from '../../abi/io/blkif.js';
import type { BlkifRequest, BlkifSegment } from '../../abi/io/blkif-codec.js';
import { planIndirect, planRequest, type Plan, type RequestContext } from './request.js';

const CTX: RequestContext = { sectors: 1000, readOnly: false, blockSectors: 1, maxIndirectSegments: 256, discard: true, discardSecure: false };
const seg = (first = 0, last = 7, gref = 10): BlkifSegment => ({ gref, first_sect: first, last_sect: last });
const rw = (operation: 0 | 1 | 2 | 3, sector: number, s: BlkifSegment[], nr = s.length): BlkifRequest => ({
  kind: 'rw', operation, nr_segments: nr, handle: 0, id: 7n, sector_number: BigInt(sector), seg: s,
});

function verdict(p: Plan): string {
  if (p.kind === 'reject') return p.status === BLKIF_RSP_ERROR ? 'ERROR' : p.status === BLKIF_RSP_EOPNOTSUPP ? 'EOPNOTSUPP' : String(p.status);
  return p.kind;
}

const ROWS: [string, BlkifRequest, Partial<RequestContext>, string][] = [
  ['read of one page', rw(0, 0, [seg()]), {}, 'rw'],
  ['write of 11 segments', rw(1, 0, Array.from({ length: 11 }, () => seg())), {}, 'rw'],
  ['read with 0 segments', rw(0, 0, []), {}, 'ERROR'],
  ['read claiming 12 segments', rw(0, 0, Array.from({ length: 11 }, () => seg()), 12), {}, 'ERROR'],
  ['segment last_sect 8 (outside the page)', rw(0, 0, [seg(0, 8)]), {}, 'ERROR'],
  ['segment first > last', rw(0, 0, [seg(5, 4)]), {}, 'ERROR'],
  ['read ending exactly at the end', rw(0, 992, [seg()]), {}, 'rw'],
  ['read one sector past the end', rw(0, 993, [seg()]), {}, 'ERROR'],
  ['sector 2^64-1', rw(0, 0, [seg()]), {}, 'rw'],
  ['write on a read-only disk', rw(1, 0, [seg()]), { readOnly: true }, 'ERROR'],
  ['read on a read-only disk', rw(0, 0, [seg()]), { readOnly: true }, 'rw'],
  ['flush with 0 segments', rw(3, 0, []), {}, 'flush'],
  ['barrier with 0 segments', rw(2, 0, []), {}, 'flush'],
  ['barrier with data', rw(2, 8, [seg()]), {}, 'flush'],
  ['flush on a read-only disk', rw(3, 0, []), { readOnly: true }, 'ERROR'],
  ['misaligned to a 4 KiB sector-size', rw(0, 1, [seg()]), { blockSectors: 8 }, 'ERROR'],
  ['aligned to a 4 KiB sector-size', rw(0, 8, [seg()]), { blockSectors: 8 }, 'rw'],
  ['partial block with 4 KiB sector-size', rw(0, 8, [seg(0, 3)]), { blockSectors: 8 }, 'ERROR'],
  ['unknown op 9', { kind: 'unknown', op: 9, id: 1n }, {}, 'EOPNOTSUPP'],
  ['RESERVED_1 (4)', { kind: 'unknown', op: 4, id: 1n }, {}, 'EOPNOTSUPP'],
  ['discard in range', { kind: 'discard', operation: 5, flag: 0, handle: 0, id: 1n, sector_number: 10n, nr_sectors: 990n }, {}, 'discard'],
  ['discard past the end', { kind: 'discard', operation: 5, flag: 0, handle: 0, id: 1n, sector_number: 10n, nr_sectors: 991n }, {}, 'ERROR'],
  ['discard with a 2^64-1 count', { kind: 'discard', operation: 5, flag: 0, handle: 0, id: 1n, sector_number: 1n, nr_sectors: 2n ** 64n - 1n }, {}, 'ERROR'],
  ['discard not offered', { kind: 'discard', operation: 5, flag: 0, handle: 0, id: 1n, sector_number: 0n, nr_sectors: 1n }, { discard: false }, 'EOPNOTSUPP'],
  ['secure discard not offered', { kind: 'discard', operation: 5, flag: 1, handle: 0, id: 1n, sector_number: 0n, nr_sectors: 1n }, {}, 'EOPNOTSUPP'],
  ['secure discard offered', { kind: 'discard', operation: 5, flag: 1, handle: 0, id: 1n, sector_number: 0n, nr_sectors: 1n }, { discardSecure: true }, 'discard'],
  ['discard on read-only', { kind: 'discard', operation: 5, flag: 0, handle: 0, id: 1n, sector_number: 0n, nr_sectors: 1n }, { readOnly: true }, 'ERROR'],
  ['indirect read of 256', { kind: 'indirect', operation: 6, indirect_op: 0, nr_segments: 256, id: 1n, sector_number: 0n, handle: 0, indirect_grefs: [1, 2, 3, 4, 5, 6, 7, 8] }, {}, 'indirect'],
  ['indirect of 257 > advertised', { kind: 'indirect', operation: 6, indirect_op: 0, nr_segments: 257, id: 1n, sector_number: 0n, handle: 0, indirect_grefs: [1, 2, 3, 4, 5, 6, 7, 8] }, {}, 'ERROR'],
  ['indirect of 0 segments', { kind: 'indirect', operation: 6, indirect_op: 0, nr_segments: 0, id: 1n, sector_number: 0n, handle: 0, indirect_grefs: [1, 2, 3, 4, 5, 6, 7, 8] }, {}, 'ERROR'],
  ['indirect flush', { kind: 'indirect', operation: 6, indirect_op: 3, nr_segments: 1, id: 1n, sector_number: 0n, handle: 0, indirect_grefs: [1, 2, 3, 4, 5, 6, 7, 8] }, {}, 'ERROR'],
  ['indirect write on read-only', { kind: 'indirect', operation: 6, indirect_op: 1, nr_segments: 1, id: 1n, sector_number: 0n, handle: 0, indirect_grefs: [1, 2, 3, 4, 5, 6, 7, 8] }, { readOnly: true }, 'ERROR'],
  ['indirect not offered', { kind: 'indirect', operation: 6, indirect_op: 0, nr_segments: 1, id: 1n, sector_number: 0n, handle: 0, indirect_grefs: [1, 2, 3, 4, 5, 6, 7, 8] }, { maxIndirectSegments: 0 }, 'EOPNOTSUPP'],
];

for (const [name, req, ctx, want] of ROWS) {
  test(`validator: ${name} → ${want}`, () => {
    const r = name === 'sector 2^64-1' ? { ...(req as Extract<BlkifRequest, { kind: 'rw' }>), sector_number: 2n ** 64n - 1n } : req;
    const expected = name === 'sector 2^64-1' ? 'ERROR' : want;
    assert.equal(verdict(planRequest(r, { ...CTX, ...ctx })), expected);
  });
}

test('validator: indirect segments are checked after the copy (out-of-page and past-the-end)', () => {
  const head = planRequest({ kind: 'indirect', operation: 6, indirect_op: 1, nr_segments: 2, id: 3n, sector_number: 984n, handle: 0, indirect_grefs: [9, 0, 0, 0, 0, 0, 0, 0] }, CTX);
  assert.equal(head.kind, 'indirect');
  if (head.kind !== 'indirect') return;
  assert.deepEqual(head.grefs, [9], 'one indirect page for 2 segments');
  const page = new Uint8Array(16);
  const v = new DataView(page.buffer);
  v.setUint32(0, 20, true); v.setUint8(4, 0); v.setUint8(5, 7);
  v.setUint32(8, 21, true); v.setUint8(12, 0); v.setUint8(13, 7);
  const ok = planIndirect(head, page, CTX);
  assert.equal(ok.kind, 'rw');
  if (ok.kind === 'rw') assert.deepEqual([ok.data.sector, ok.data.sectors, ok.data.write, ok.data.segments.map((s) => s.gref)], [984, 16, true, [20, 21]]);
  v.setUint8(13, 9);
  assert.equal(verdict(planIndirect(head, page, CTX)), 'ERROR', 'last_sect 9');
  v.setUint8(13, 7);
  assert.equal(verdict(planIndirect(head, page, { ...CTX, sectors: 999 })), 'ERROR', 'past the end');
});

test('validator property: an rw plan is accepted iff an independent oracle says it is valid', () => {
  const segArb = fc.record({ gref: fc.nat(100), first_sect: fc.nat(255), last_sect: fc.nat(255) });
  fc.assert(
    fc.property(
      fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<0 | 1 | 2 | 3>,
      fc.array(segArb, { maxLength: 11 }),
      fc.nat(300),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.boolean(),
      fc.constantFrom(1, 8),
      (op, segs, nr, sector, ro, bs) => {
        const nrSeg = nr <= 11 ? segs.length : nr;
        const ctx = { ...CTX, readOnly: ro, blockSectors: bs };
        const req: BlkifRequest = { kind: 'rw', operation: op, nr_segments: nrSeg, handle: 0, id: 1n, sector_number: sector, seg: segs };
        const plan = planRequest(req, ctx);
        const flush = op === 2 || op === 3;
        const total = segs.reduce((n, s) => n + s.last_sect - s.first_sect + 1, 0);
        const oracle =
          nrSeg <= 11 && (nrSeg > 0 || flush) && !(op !== 0 && ro) &&
          (nrSeg === 0 || (segs.every((s) => s.first_sect <= s.last_sect && s.last_sect <= 7) && sector + BigInt(total) <= 1000n && sector % BigInt(bs) === 0n && total % bs === 0));
        assert.equal(plan.kind !== 'reject', oracle);
      },
    ),
    { numRuns: 2000 },
  );
});
