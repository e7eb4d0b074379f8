/**
 * The frontend's ring codec writes a request straight from its shadow slot: the bytes must be
 * those abi's encodeBlkifRequest writes for the equivalent record (the ABI, golden-tested in
 * abi/io/blkif-codec.test.ts), on both ABIs, and it must write every byte of the slot (the
 * ring skips zeroing for it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BLKIF_DISCARD_SECURE,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_REQUEST,
} from '../../abi/io/blkif.js';
import { decodeBlkifResponse, encodeBlkifRequest, encodeBlkifResponse, encodeBlkifSegmentFields, type BlkifRequestOut, type BlkifResponseWords } from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import type { Frame, GrantRef } from '../../base/index.js';
import { encodesEveryByte } from '../../ring/index.js';
import type { GrantedPage } from './front-grants.js';
import type { Chunk } from './front-queue.js';
import { frontRingCodec, Slot, writeSegmentList } from './front-slot.js';

const page = (ref: number): GrantedPage => ({ frame: 0 as Frame, ref: ref as GrantRef, bytes: new Uint8Array(0), readonly: false });

interface Case {
  readonly kind: Chunk['kind'];
  readonly id: number;
  readonly sector: number;
  readonly sectors: number;
  readonly secure: boolean;
  readonly refs: readonly number[];
}

/** A slot as FrontQueue fills it: data pages, then (past 11 segments) one indirect page per 512. */
function slotOf(c: Case): Slot {
  const s = new Slot(c.id);
  const chunk: Chunk = { kind: c.kind, sector: c.sector, sectors: c.sectors, offset: 0, seq: 0, secure: c.secure };
  const op = { read: BLKIF_OP_READ, write: BLKIF_OP_WRITE, flush: BLKIF_OP_FLUSH_DISKCACHE, barrier: 2, discard: BLKIF_OP_DISCARD }[c.kind];
  s.begin(chunk, op);
  if (c.kind === 'discard') return s;
  const nseg = Math.ceil(c.sectors / 8);
  for (let i = 0; i < nseg; i++, s.segments++) s.addPage(page(c.refs[i % c.refs.length]!), i % 2 === 0);
  for (let k = 0; s.indirect && k < Math.ceil(nseg / 512); k++) s.addPage(page(0x1000 + k), false);
  return s;
}

/** The same request as abi's record. */
function recordOf(c: Case, s: Slot): BlkifRequestOut {
  const id = BigInt(c.id);
  const sector_number = BigInt(c.sector);
  if (c.kind === 'discard') {
    return { kind: 'discard', operation: BLKIF_OP_DISCARD, flag: c.secure ? BLKIF_DISCARD_SECURE : 0, handle: 0, id, sector_number, nr_sectors: BigInt(c.sectors) };
  }
  if (s.indirect) {
    const grefs = s.pages.slice(s.segments, s.pageCount).map((p) => p!.ref as number);
    return { kind: 'indirect', operation: BLKIF_OP_INDIRECT, indirect_op: s.operation, nr_segments: s.segments, id, sector_number, handle: 0, indirect_grefs: grefs };
  }
  const seg = s.pages.slice(0, s.segments).map((p, i) => ({ gref: p!.ref as number, first_sect: 0, last_sect: Math.min(8, c.sectors - 8 * i) - 1 }));
  return { kind: 'rw', operation: s.operation as 0 | 1 | 2 | 3, nr_segments: s.segments, handle: 0, id, sector_number, seg };
}

const cases = fc.record({
  kind: fc.constantFrom<Chunk['kind']>('read', 'write', 'flush', 'barrier', 'discard'),
  id: fc.nat({ max: 511 }),
  sector: fc.oneof(fc.nat({ max: 0xffffffff }), fc.maxSafeNat()),
  sectors: fc.integer({ min: 1, max: 8 * 600 }),
  secure: fc.boolean(),
  refs: fc.array(fc.nat({ max: 0xffffffff }), { minLength: 1, maxLength: 16 }),
}).map((c): Case => (c.kind === 'flush' || c.kind === 'barrier' ? { ...c, sectors: 0 } : c));

test('front slots encode to the bytes of the equivalent blkif record as far as the request goes, and leave the rest of the slot, both ABIs (property)', () => {
  fc.assert(
    fc.property(cases, fc.constantFrom<AbiName>('x86_64', 'x86_32'), (c, abi) => {
      const s = slotOf(c);
      const size = BLKIF_REQUEST.layouts[abi].size;
      const want = new Uint8Array(size).fill(0xee);
      encodeBlkifRequest(new DataView(want.buffer), 0, abi, recordOf(c, s));
      const got = new Uint8Array(size).fill(0x5a);
      const codec = frontRingCodec(abi);
      codec.encodeRequest(s, new DataView(got.buffer));
      const n = codec.requestLength!(new DataView(got.buffer));
      const f = BLKIF_REQUEST.layouts[abi].fields;
      const directRw = (c.kind === 'read' || c.kind === 'write') && !s.indirect;
      // A READ/WRITE of k segments is its header and those k; anything else the whole struct.
      assert.equal(n, directRw ? f.seg + 8 * s.segments : size);
      assert.deepEqual(got.subarray(0, n), want.subarray(0, n));
      assert.ok(got.subarray(n).every((b) => b === 0x5a), 'the unused segment slots are not written');
    }),
    { numRuns: 300 },
  );
});

test('a 4 KiB read is one segment; 12 pages go indirect; a partial last page ends at its last sector', () => {
  const one = slotOf({ kind: 'read', id: 3, sector: 8, sectors: 8, secure: false, refs: [9] });
  assert.equal(one.indirect, false);
  assert.equal(one.lastSect(0), 7);
  const twelve = slotOf({ kind: 'write', id: 3, sector: 8, sectors: 8 * 11 + 3, secure: false, refs: [9] });
  assert.equal(twelve.segments, 12);
  assert.equal(twelve.indirect, true);
  assert.equal(twelve.lastSect(11), 2);
  assert.equal(twelve.pageCount, 13, 'twelve data pages and one indirect page');
  twelve.clear();
  assert.equal(twelve.chunk, undefined);
  assert.equal(twelve.pages[0], undefined, 'a free slot keeps no page');
});

test('the front codec writes every byte of a slot and decodes responses into one reused record', () => {
  const samples = [
    slotOf({ kind: 'read', id: 1, sector: 8, sectors: 8, secure: false, refs: [9] }),
    slotOf({ kind: 'write', id: 31, sector: 2 ** 40, sectors: 8 * 11, secure: false, refs: [1, 2] }),
    slotOf({ kind: 'write', id: 2, sector: 0, sectors: 8 * 100, secure: false, refs: [7] }),
    slotOf({ kind: 'flush', id: 0, sector: 0, sectors: 0, secure: false, refs: [1] }),
    slotOf({ kind: 'discard', id: 5, sector: 16, sectors: 2 ** 33, secure: true, refs: [1] }),
  ];
  const words: BlkifResponseWords[] = [
    { idLow: 5, idHigh: 0, operation: BLKIF_OP_READ, status: 0 },
    { idLow: 0xffffffff, idHigh: 0x80000000, operation: BLKIF_OP_WRITE, status: -1 },
  ];
  for (const abi of ['x86_64', 'x86_32'] as const) {
    const codec = frontRingCodec(abi);
    assert.equal(codec.encodesEveryByte, true);
    assert.ok(encodesEveryByte(codec, samples, words), abi);
    const view = new DataView(new ArrayBuffer(16));
    encodeBlkifResponse(view, 0, abi, { id: 2n ** 40n + 7n, operation: BLKIF_OP_WRITE, status: -2 });
    const a = codec.decodeResponse(view);
    assert.deepEqual({ ...a }, { idLow: 7, idHigh: 2 ** 8, operation: BLKIF_OP_WRITE, status: -2 });
    assert.equal(decodeBlkifResponse(view, 0, abi).id, (BigInt(a.idHigh) << 32n) | BigInt(a.idLow));
    assert.equal(codec.decodeResponse(view), a, 'the same record each time');
  }
});

test('indirect pages: writeSegmentList writes the bytes of encodeBlkifSegmentFields, fast path and fallback (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 12, max: 8 * 600 }),
      fc.array(fc.nat({ max: 0xffffffff }), { minLength: 1, maxLength: 16 }),
      fc.constantFrom(0, 4096 + 2),
      (sectors, refs, at) => {
        const s = slotOf({ kind: 'read', id: 1, sector: 0, sectors, secure: false, refs });
        const memory = new Uint8Array(new SharedArrayBuffer(3 * 4096));
        const want = new Uint8Array(4096);
        for (let first = 0; first < s.segments; first += 512) {
          const end = Math.min(s.segments, first + 512);
          const page = memory.subarray(at, at + 4096).fill(0xee);
          want.fill(0xee);
          const view = new DataView(want.buffer);
          for (let i = first; i < end; i++) encodeBlkifSegmentFields(view, (i - first) * 8, s.pages[i]!.ref, 0, s.lastSect(i));
          writeSegmentList(page, s, first, end);
          assert.deepEqual(page, want, `segments ${first}..${end} at page offset ${at}`);
        }
      },
    ),
  );
});

test('a slot on a persistent buffer names its data pages by the buffer\'s refs: direct and indirect encodings as for the same pages added one by one', () => {
  const refs = Uint32Array.from({ length: 600 }, (_, i) => 0x10000 + i * 7);
  const buf = { keptRefs: (_remote: unknown, _first: number, _n: number) => refs };
  for (const [first, sectors] of [[0, 64], [3, 8 * 11], [40, 8 * 300 - 3]] as const) {
    const chunk: Chunk = { kind: 'read', sector: 100, sectors, offset: first * 4096, seq: 0 };
    const kept = new Slot(5);
    kept.begin(chunk, BLKIF_OP_READ);
    kept.addKept(buf as never, 0 as never, first, Math.ceil(sectors / 8));
    const plain = new Slot(5);
    plain.begin(chunk, BLKIF_OP_READ);
    for (let i = 0; i < Math.ceil(sectors / 8); i++, plain.segments++) plain.addPage(page(refs[first + i]!), false);
    for (const s of [kept, plain]) for (let k = 0; s.indirect && k < Math.ceil(s.segments / 512); k++) s.addPage(page(0x9000 + k), false);
    assert.deepEqual(Array.from({ length: kept.pageCount }, (_, i) => kept.ref(i)), Array.from({ length: plain.pageCount }, (_, i) => plain.ref(i)));
    const size = BLKIF_REQUEST.layouts.x86_64.size;
    const [a, b] = [new Uint8Array(size), new Uint8Array(size)];
    frontRingCodec('x86_64').encodeRequest(kept, new DataView(a.buffer));
    frontRingCodec('x86_64').encodeRequest(plain, new DataView(b.buffer));
    assert.deepEqual(a, b, `ring slot, ${sectors} sectors from page ${first}`);
    for (let f = 0; f < kept.segments; f += 512) {
      const end = Math.min(kept.segments, f + 512);
      const [pa, pb] = [new Uint8Array(4096), new Uint8Array(4096)];
      writeSegmentList(pa, kept, f, end);
      writeSegmentList(pb, plain, f, end);
      assert.deepEqual(pa, pb, `indirect page from segment ${f}`);
    }
  }
});
