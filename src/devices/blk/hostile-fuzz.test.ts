/**
 * Property (the hostile-frontend rule of hostile-front.test.ts): a frontend that puts RANDOM
 * request slots on blkback's ring — any operation byte, nr_segments 0..255, sectors in any
 * order, sector numbers around and far past the end, refs that are good, never granted,
 * revoked, read-only or granted to another domain, indirect requests over random segment
 * lists, discards of any size, slots rewritten after they were pushed, req_prod pushed past the
 * ring, its state node flapped mid-I/O — gets error responses or a closed device; never a
 * crash, a hang, a leak, a second answer, or a write outside what it granted. Run on both of
 * blkback's data paths: the asynchronous one (storage promises, map or copy) and the
 * synchronous one (storage.syncIo, hostile-sync.test.ts).
 *
 * Each case: the frontend writes a canary (sectors 0..7) with a well-formed WRITE, then plays
 * its actions; no generated request names a sector below 8 (only a wrapped u64 or a missed
 * range check could reach them). Afterwards either the ring is still served and a well-formed
 * READ gives the canary back, or req_prod was overflowed and the backend closed with the
 * reason in its log, or the state node flapped and the backend closed. withBlkEnv checks that
 * no mapping, grant, port, watch or transaction is left behind.
 *
 * In the suite a few cases per path run; XENPV_FUZZ_RUNS=20000 runs a campaign
 * (XENPV_FUZZ_SEED and XENPV_FUZZ_PATH replay a case fast-check reports, without shrinking:
 * a case that leaked leaves the process's leak registry dirty, and every later case fails).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BLKIF_REQUEST, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import {
  encodeBlkifDiscardFields,
  encodeBlkifIndirectFields,
  encodeBlkifIndirectGref,
  encodeBlkifRwFields,
  encodeBlkifRwSegment,
  encodeBlkifSegmentFields,
  type BlkifResponse,
} from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import type { DomId } from '../../base/index.js';
import type { BlkBack } from './back.js';
import { backState } from './raw-support.js';
import { SlotFront } from './slot-front.js';
import { MemoryStorage } from './storage/memory.js';
import type { BlockStorage, SyncBlockIo } from './storage/types.js';
import { pattern, until, withBlkEnv, type BlkEnv } from './test-support.js';

const RUNS = Number(process.env['XENPV_FUZZ_RUNS'] ?? 8);
const SEED = process.env['XENPV_FUZZ_SEED'];
const PATH = process.env['XENPV_FUZZ_PATH'];

/** Sectors 0..7 hold the canary; generated requests start at 8 or far past any disk. */
const CANARY_SECTORS = 8;
/** Sector numbers past every disk; base + k (k >= -16) stays above 2^32 and below 2^64. */
const HUGE = [2n ** 32n + 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 80n];
/** Refs the frontend never granted: reserved, unused, beyond any table. */
const BAD_REFS = [0, 1, 7, 3000, 65535, 0x7fffffff, 0xffffffff];
const SEGS_PER_PAGE = 512;

// ---- what a case is made of ----

type Cat = 'rw' | 'ro' | 'foreign' | 'indirect' | 'bad' | 'stale';
/** A grant ref, by kind: resolved against the case's pages (Pool.ref). */
interface RefPick {
  readonly cat: Cat;
  readonly i: number;
}
interface Seg {
  readonly ref: RefPick;
  readonly first: number;
  readonly last: number;
}
/**
 * low: from sector 8 on; edge: where the request's last sector is within 2 of the disk's end,
 * either side; end: around and past the end; huge: far past any disk.
 */
interface SectorPick {
  readonly base: 'low' | 'edge' | 'end' | 'huge';
  readonly k: number;
  readonly align: boolean;
}
/** The fields of a slot that a rewrite may change: everything from sector_number on. */
interface Body {
  readonly sector: SectorPick;
  readonly segs: readonly Seg[];
  readonly count: bigint;
  readonly pages: readonly RefPick[];
  readonly noise: number;
}
/** The fields a rewrite leaves alone (they share bytes with the response written over the slot). */
type Head =
  | { readonly kind: 'rw'; readonly op: number; readonly nr: number; readonly id: bigint }
  | { readonly kind: 'discard'; readonly flag: number; readonly id: bigint }
  | { readonly kind: 'indirect'; readonly op: number; readonly nr: number; readonly id: bigint }
  | { readonly kind: 'unknown'; readonly op: number; readonly id: bigint };
interface Req {
  readonly head: Head;
  readonly body: Body;
}
interface IndirectPage {
  readonly segs: readonly Seg[];
  readonly poison: { readonly at: number; readonly gref: number; readonly first: number; readonly last: number } | null;
}
interface Setup {
  readonly abi: AbiName;
  readonly order: number;
  readonly persistent: boolean;
  readonly copy: boolean;
  readonly readOnly: boolean;
  readonly discard: boolean;
  readonly blockSize: number;
  readonly sectors: number;
  readonly maxIndirect: number;
  readonly slow: boolean;
  readonly indirect: readonly IndirectPage[];
}
type Action =
  | { readonly a: 'put'; readonly req: Req }
  | { readonly a: 'push' }
  /** Rewrite the body of one of the last slots written: now, or during the next storage call. */
  | { readonly a: 'rewrite'; readonly back: number; readonly body: Body; readonly when: 'now' | 'io' }
  | { readonly a: 'wait'; readonly how: 'micro' | 'immediate' | 'timer' }
  | { readonly a: 'overflow'; readonly k: number }
  /** Write these to the frontend's state node (1..8, or nonsense), then close. */
  | { readonly a: 'flap'; readonly states: readonly number[] };
interface Case {
  readonly setup: Setup;
  readonly actions: readonly Action[];
}

// ---- generators ----

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
const refPick = (rwWeight: number, indirectWeight = 1): fc.Arbitrary<RefPick> =>
  fc.record({
    cat: fc.oneof(
      w(rwWeight, fc.constant<Cat>('rw')),
      w(2, fc.constant<Cat>('ro')),
      w(1, fc.constant<Cat>('foreign')),
      w(indirectWeight, fc.constant<Cat>('indirect')),
      w(1, fc.constant<Cat>('bad')),
      w(1, fc.constant<Cat>('stale')),
    ),
    i: fc.nat(15),
  });
/** Mostly first <= last <= 7 (else little would pass and the deep paths would go untried), some just outside. */
const sects = fc.oneof(
  w(8, fc.tuple(fc.nat(7), fc.nat(7)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const)),
  w(2, fc.tuple(fc.nat(15), fc.nat(15))),
  w(1, fc.constantFrom([0, 8], [7, 8], [8, 8], [1, 0], [7, 6], [15, 15])),
);
const seg: fc.Arbitrary<Seg> = fc.tuple(refPick(10), sects).map(([ref, [first, last]]) => ({ ref, first, last }));
/** A segment a well-behaved frontend would write: a writable page, sectors inside it (often all 8). */
const goodSeg: fc.Arbitrary<Seg> = fc
  .tuple(fc.nat(3), fc.oneof(w(2, fc.constant([0, 7] as const)), w(3, sects.filter(([a, b]) => b <= 7 && a <= b))))
  .map(([i, [first, last]]) => ({ ref: { cat: 'rw', i }, first, last }));
/**
 * Segment lists: mostly good ones (else nearly every request would fail its first check and
 * the paths behind it would go untried), some with one hostile segment, some all random.
 */
const segList = (min: number, max: number): fc.Arbitrary<Seg[]> =>
  fc.oneof(
    w(3, fc.array(goodSeg, { minLength: min, maxLength: max })),
    w(2, fc.tuple(fc.array(goodSeg, { minLength: min, maxLength: max }), fc.nat(), seg).map(([g, at, bad]) => g.with(at % g.length, bad))),
    w(1, fc.array(seg, { minLength: min, maxLength: max })),
  );
const sector: fc.Arbitrary<SectorPick> = fc.record({
  base: fc.oneof(w(4, fc.constant('low' as const)), w(3, fc.constant('edge' as const)), w(1, fc.constant('end' as const)), w(1, fc.constant('huge' as const))),
  k: fc.integer({ min: -16, max: 63 }),
  align: fc.boolean(),
});
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const body: fc.Arbitrary<Body> = fc.record({
  sector,
  segs: segList(11, 11),
  count: fc.oneof(w(4, fc.bigInt({ min: 0n, max: 40n })), w(1, fc.constantFrom(2n ** 32n, 2n ** 63n, 2n ** 64n - 8n, 2n ** 64n - 1n)), w(1, u64)),
  pages: fc.tuple(fc.oneof(w(4, fc.record({ cat: fc.constant<Cat>('indirect'), i: fc.nat(3) })), w(1, refPick(1))), fc.array(refPick(1, 4), { minLength: 7, maxLength: 7 })).map(([p, rest]) => [p, ...rest]),
  noise: fc.nat(),
});
/** Mostly distinct random ids; sometimes one that other requests may share. */
const id = fc.oneof(w(5, u64), w(1, fc.constantFrom(0n, 1n, 2n ** 64n - 1n)));
const head: fc.Arbitrary<Head> = fc.oneof(
  w(10, fc.record({
    kind: fc.constant('rw' as const),
    op: fc.oneof(w(4, fc.constantFrom(0, 1)), w(1, fc.constantFrom(2, 3))),
    nr: fc.oneof(w(8, fc.integer({ min: 1, max: 11 })), w(1, fc.constantFrom(0, 12, 255)), w(1, fc.nat(255))),
    id,
  })),
  w(2, fc.record({ kind: fc.constant('discard' as const), flag: fc.oneof(fc.constantFrom(0, 1), fc.nat(255)), id })),
  w(4, fc.record({
    kind: fc.constant('indirect' as const),
    op: fc.oneof(w(6, fc.constantFrom(0, 1)), w(1, fc.nat(255))),
    nr: fc.oneof(w(6, fc.integer({ min: 1, max: 16 })), w(2, fc.integer({ min: 1, max: 256 })), w(1, fc.constantFrom(0, 257, 512, 513, 4096, 65535)), w(1, fc.nat(65535))),
    id,
  })),
  w(1, fc.record({ kind: fc.constant('unknown' as const), op: fc.oneof(fc.constant(4), fc.integer({ min: 7, max: 255 })), id })),
);
const indirectPage: fc.Arbitrary<IndirectPage> = fc.record({
  segs: segList(1, 6),
  poison: fc.option(fc.record({ at: fc.nat(SEGS_PER_PAGE - 1), gref: fc.nat(0xffffffff), first: fc.nat(255), last: fc.nat(255) })),
});
const setup: fc.Arbitrary<Setup> = fc.record({
  abi: fc.oneof(w(3, fc.constant<AbiName>('x86_64')), w(1, fc.constant<AbiName>('x86_32'))),
  order: fc.oneof(w(3, fc.constant(0)), w(1, fc.constant(1))),
  persistent: fc.boolean(),
  copy: fc.boolean(),
  readOnly: fc.oneof(w(5, fc.constant(false)), w(1, fc.constant(true))),
  discard: fc.oneof(w(3, fc.constant(true)), w(1, fc.constant(false))),
  blockSize: fc.oneof(w(4, fc.constant(512)), w(1, fc.constant(4096))),
  sectors: fc.constantFrom(24, 64, 257, 520),
  maxIndirect: fc.oneof(w(6, fc.constant(256)), w(1, fc.constant(11)), w(1, fc.constant(0))),
  slow: fc.boolean(),
  indirect: fc.array(indirectPage, { minLength: 1, maxLength: 3 }),
});
const action: fc.Arbitrary<Action> = fc.oneof(
  w(90, fc.record({ a: fc.constant('put' as const), req: fc.record({ head, body }) })),
  w(24, fc.constant({ a: 'push' as const })),
  w(18, fc.record({ a: fc.constant('rewrite' as const), back: fc.nat(7), body, when: fc.constantFrom('now' as const, 'io' as const) })),
  w(18, fc.record({ a: fc.constant('wait' as const), how: fc.constantFrom('micro' as const, 'immediate' as const, 'timer' as const) })),
  // Rare: each ends the case (together in about one case of four).
  w(1, fc.record({ a: fc.constant('overflow' as const), k: fc.nat(0xffff0000) })),
  w(1, fc.record({ a: fc.constant('flap' as const), states: fc.array(fc.constantFrom(1, 2, 3, 4, 5, 6, 7, 8, 42), { minLength: 1, maxLength: 4 }) })),
);
const fuzzCase: fc.Arbitrary<Case> = fc.record({ setup, actions: fc.array(action, { minLength: 1, maxLength: 48, size: 'max' }) });

// ---- the frontend's pages ----

/** A page of ours the backend can reach, with what it held before the case (to compare after). */
interface Watched {
  readonly what: string;
  readonly ref: number | undefined;
  readonly bytes: Uint8Array;
  readonly before: Uint8Array;
  /** Granted writable to the backend: a READ may write the sectors a segment names. */
  readonly writable: boolean;
}

class Pool {
  readonly refs: Record<Cat, number[]> = { rw: [], ro: [], foreign: [], indirect: [], bad: BAD_REFS, stale: [] };
  /** Refs the backend may map, and how. */
  readonly access = new Map<number, 'rw' | 'ro'>();
  /** The segment list of each indirect page, as refs (512 entries). */
  readonly lists = new Map<number, { gref: number; first: number; last: number }[]>();
  readonly watched: Watched[] = [];

  constructor(front: SlotFront, s: Setup, foreign: DomId) {
    let fill = 0x10;
    const watch = (what: string, bytes: Uint8Array, ref: number | undefined, writable: boolean): void => {
      bytes.fill(fill++);
      this.watched.push({ what, ref, bytes, before: bytes.slice(), writable });
    };
    // Every granted page gets an ungranted neighbour in the guest's memory: a view that ran
    // past the end of its page would land in one.
    const decoy = (): void => watch('an ungranted page', front.ungranted(), undefined, false);
    decoy();
    for (let i = 0; i < 4; i++) {
      const p = front.grant(true);
      this.refs.rw.push(p.ref);
      this.access.set(p.ref, 'rw');
      watch(`writable page ref ${p.ref}`, p.bytes, p.ref, true);
      decoy();
    }
    for (let i = 0; i < 2; i++) {
      const p = front.grant(false);
      this.refs.ro.push(p.ref);
      this.access.set(p.ref, 'ro');
      watch(`read-only page ref ${p.ref}`, p.bytes, p.ref, false);
      const f = front.grant(true, foreign);
      this.refs.foreign.push(f.ref);
      watch(`page ref ${f.ref} granted to dom${foreign}`, f.bytes, f.ref, false);
      decoy();
    }
    const stale = front.revoked();
    this.refs.stale.push(stale.ref);
    watch(`page of revoked ref ${stale.ref}`, stale.bytes, undefined, false);
    const pages = s.indirect.map(() => front.grant(false));
    for (const p of pages) {
      this.refs.indirect.push(p.ref);
      this.access.set(p.ref, 'ro');
    }
    s.indirect.forEach((content, n) => {
      const p = pages[n]!;
      const v = new DataView(p.bytes.buffer, p.bytes.byteOffset, 4096);
      const list = Array.from({ length: SEGS_PER_PAGE }, (_, i) => {
        const poison = content.poison?.at === i ? content.poison : undefined;
        const sg = content.segs[i % content.segs.length]!;
        return poison ?? { gref: this.ref(sg.ref), first: sg.first, last: sg.last };
      });
      list.forEach((e, i) => encodeBlkifSegmentFields(v, i * 8, e.gref, e.first, e.last));
      this.lists.set(p.ref, list);
      this.watched.push({ what: `indirect page ref ${p.ref}`, ref: p.ref, bytes: p.bytes, before: p.bytes.slice(), writable: false });
      decoy();
    });
  }

  ref(p: RefPick): number {
    const list = this.refs[p.cat];
    return list[p.i % list.length]!;
  }
}

// ---- slots ----

/** The sectors a request means to move, read the way a frontend means it (0 when not known). */
function spanOf(h: Head, b: Body, pool: Pool): number {
  const sum = (segs: readonly { first: number; last: number }[]): number => segs.reduce((n, g) => n + Math.max(0, g.last - g.first + 1), 0);
  switch (h.kind) {
    case 'rw':
      return sum(b.segs.slice(0, h.nr));
    case 'discard':
      return b.count < 1024n ? Number(b.count) : 0;
    case 'indirect': {
      const list = pool.lists.get(pool.ref(b.pages[0]!));
      return list === undefined ? 0 : sum(Array.from({ length: Math.min(h.nr, 1024) }, (_, i) => list[i % SEGS_PER_PAGE]!));
    }
    case 'unknown':
      return 0;
  }
}

function sectorOf(h: Head, b: Body, s: Setup, pool: Pool): bigint {
  const p = b.sector;
  if (p.base === 'huge') return HUGE[(p.k + 16) % HUGE.length]! + BigInt(p.k);
  let n =
    p.base === 'low'
      ? CANARY_SECTORS + (Math.abs(p.k) % 32)
      : p.base === 'edge'
        ? Math.max(CANARY_SECTORS, s.sectors - spanOf(h, b, pool) + (p.k % 3))
        : Math.max(CANARY_SECTORS, s.sectors + p.k);
  const block = s.blockSize / 512;
  if (p.align) n -= n % block; // stays >= 8: 8 is a multiple of every block
  return BigInt(n);
}

function encode(r: Req, s: Setup, pool: Pool): Uint8Array {
  const bytes = new Uint8Array(BLKIF_REQUEST.layouts[s.abi].size);
  const v = new DataView(bytes.buffer);
  const { head: h, body: b } = r;
  const sec = sectorOf(h, b, s, pool);
  switch (h.kind) {
    case 'rw':
      encodeBlkifRwFields(v, 0, s.abi, h.op, h.nr, 0, h.id, sec);
      // All 11 segments, whatever nr_segments says: the ones past it are junk to ignore.
      b.segs.forEach((g, i) => encodeBlkifRwSegment(v, 0, s.abi, i, pool.ref(g.ref), g.first, g.last));
      break;
    case 'discard':
      encodeBlkifDiscardFields(v, 0, s.abi, h.flag, 0, h.id, sec, b.count);
      break;
    case 'indirect':
      encodeBlkifIndirectFields(v, 0, s.abi, h.op, h.nr, 0, h.id, sec);
      b.pages.forEach((p, i) => encodeBlkifIndirectGref(v, 0, s.abi, i, pool.ref(p)));
      break;
    case 'unknown': {
      let x = b.noise | 1;
      for (let i = 0; i < bytes.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        bytes[i] = x & 0xff;
      }
      const f = BLKIF_REQUEST.layouts[s.abi].fields;
      v.setUint8(f.operation, h.op);
      v.setBigUint64(f.id, h.id, true);
    }
  }
  return bytes;
}

/**
 * Where a rewrite starts: sector_number is the first field after id on every request layout,
 * and lies past the response (16 bytes on x86_64, 12 on x86_32) that the backend writes over
 * the slot, so a rewrite never eats an answer we have not read yet.
 */
const rewriteFrom = (abi: AbiName): number => BLKIF_REQUEST.layouts[abi].fields.sector_number;

/** The operation a response to `h` carries (an indirect request is answered with its indirect_op). */
function rspOp(h: Head): number {
  return h.kind === 'discard' ? 5 : h.op;
}

// ---- the oracle: when may a request be answered OKAY? ----

/** Sectors the segments span, or -1 when one leaves its page or names a ref the backend may not use so. */
function dataSectors(segs: readonly { gref: number; first: number; last: number }[], write: boolean, pool: Pool): number {
  let n = 0;
  for (const g of segs) {
    const a = pool.access.get(g.gref);
    if (g.first > g.last || g.last > 7 || a === undefined || (!write && a !== 'rw')) return -1;
    n += g.last - g.first + 1;
  }
  return n;
}

/** False when no correct backend answers this version of a request OKAY (an over-approximation of success). */
function mayBeOkay(h: Head, b: Body, s: Setup, pool: Pool): boolean {
  const start = sectorOf(h, b, s, pool);
  const block = BigInt(s.blockSize / 512);
  const fits = (n: bigint): boolean => start + n <= BigInt(s.sectors);
  const aligned = (n: bigint): boolean => start % block === 0n && n % block === 0n;
  switch (h.kind) {
    case 'unknown':
      return false;
    case 'discard':
      return s.discard && !s.readOnly && fits(b.count);
    case 'rw': {
      const flush = h.op === 2 || h.op === 3;
      if (h.op !== 0 && s.readOnly) return false;
      if (h.nr === 0) return flush;
      if (h.nr > 11) return false;
      const n = dataSectors(b.segs.slice(0, h.nr).map((g) => ({ gref: pool.ref(g.ref), first: g.first, last: g.last })), h.op !== 0, pool);
      return n > 0 && fits(BigInt(n)) && aligned(BigInt(n));
    }
    case 'indirect': {
      if (s.maxIndirect === 0 || (h.op !== 0 && h.op !== 1) || h.nr === 0 || h.nr > s.maxIndirect) return false;
      if (h.op === 1 && s.readOnly) return false;
      const pages = b.pages.slice(0, Math.ceil(h.nr / SEGS_PER_PAGE)).map((p) => pool.ref(p));
      if (pages.some((r) => !pool.access.has(r))) return false;
      const segs = [];
      for (let i = 0; i < h.nr; i++) {
        const list = pool.lists.get(pages[Math.floor(i / SEGS_PER_PAGE)]!);
        // A data page named as a segment list: its bytes change with the I/O, so any answer goes.
        if (list === undefined) return true;
        segs.push(list[i % SEGS_PER_PAGE]!);
      }
      const n = dataSectors(segs, h.op === 1, pool);
      return n > 0 && fits(BigInt(n)) && aligned(BigInt(n));
    }
  }
}

/** One request put on the ring: its fixed head and every body its slot has held. */
interface Sent {
  /** Its ring index. */
  readonly index: number;
  readonly head: Head;
  readonly bodies: Body[];
  matched: boolean;
}

/**
 * Pair each response with a request put that it can answer: same id, same operation, a status
 * that request may get. OKAY goes only to a request some version of which could succeed;
 * an error prefers one that could not, so a later OKAY still finds its request.
 */
function matchResponses(rsps: readonly BlkifResponse[], sent: readonly Sent[], s: Setup, pool: Pool): string[] {
  const problems: string[] = [];
  for (const r of rsps) {
    if (r.status !== BLKIF_RSP_OKAY && r.status !== BLKIF_RSP_ERROR && r.status !== BLKIF_RSP_EOPNOTSUPP) problems.push(`response ${r.id}: status ${r.status}`);
    const candidates = sent.filter((x) => !x.matched && x.head.id === r.id && rspOp(x.head) === r.operation);
    const ok = (x: Sent): boolean => x.bodies.some((b) => mayBeOkay(x.head, b, s, pool));
    const allowed = (x: Sent): boolean => (x.head.kind === 'unknown' ? r.status === BLKIF_RSP_EOPNOTSUPP : r.status !== BLKIF_RSP_OKAY || ok(x));
    const fit = candidates.filter(allowed).sort((a, b) => Number(ok(a)) - Number(ok(b)));
    if (fit.length === 0) {
      problems.push(`response {id ${r.id}, op ${r.operation}, status ${r.status}} answers no request put (${candidates.length} with that id and op)`);
      continue;
    }
    fit[0]!.matched = true;
    const h = fit[0]!.head;
    count(`${h.kind}${h.kind === 'rw' || h.kind === 'indirect' ? ` op ${h.op > 6 ? '>6' : h.op}` : ''} -> ${r.status}`);
  }
  return problems;
}

/**
 * Sectors of each writable page that some READ segment named: the only ones a backend may
 * write. `anyOp`: count every request's segments (after a reconnect the backend may read old
 * slots again, whose first bytes now hold responses: a WRITE's slot may read as a READ).
 */
function mayWrite(sent: readonly Sent[], pool: Pool, anyOp: boolean): Map<number, boolean[]> {
  const marks = new Map<number, boolean[]>();
  const mark = (gref: number, first: number, last: number): void => {
    if (first > last || last > 7) return;
    const m = marks.get(gref) ?? Array<boolean>(8).fill(false);
    for (let i = first; i <= last; i++) m[i] = true;
    marks.set(gref, m);
  };
  for (const x of sent) {
    if (anyOp || (x.head.kind === 'rw' && x.head.op === 0)) for (const b of x.bodies) for (const g of b.segs) mark(pool.ref(g.ref), g.first, g.last);
  }
  // Indirect READs: any entry of any segment list (a data page read as one holds entries
  // copied from these, or zeros). Over-approximate rather than follow which page was named.
  if (anyOp || sent.some((x) => x.head.kind === 'indirect' && x.head.op === 0)) {
    for (const list of pool.lists.values()) for (const e of list) mark(e.gref, e.first, e.last);
  }
  return marks;
}

// ---- storage that watches what it is asked ----

type Phase = 'canary' | 'fuzz';

/**
 * `disk` with every call checked (inside the disk; never the canary sectors during the fuzz;
 * nothing written on a read-only vbd) and `hooks` run at each call (rewrites timed "during the
 * I/O"). Async calls may first yield (`slow`), widening every window.
 */
function watchedStorage(disk: MemoryStorage, s: Setup, phase: { now: Phase }, hooks: (() => void)[], violations: string[]): BlockStorage {
  const check = (what: string, sector: number, bytes: number): void => {
    const n = bytes / 512;
    if (!(sector >= 0 && sector + n <= disk.sectorCount)) violations.push(`storage ${what} of ${sector}+${n}: outside the disk`);
    if (phase.now === 'fuzz' && sector < CANARY_SECTORS) violations.push(`storage ${what} of ${sector}+${n}: the canary's sectors`);
    if (what !== 'read' && s.readOnly) violations.push(`storage ${what} of ${sector}+${n} on a read-only vbd`);
    for (const h of hooks.splice(0)) h();
  };
  const pause = (): Promise<void> => (s.slow ? new Promise((r) => setImmediate(r)) : Promise.resolve());
  const len = (bufs: readonly Uint8Array[]): number => bufs.reduce((n, b) => n + b.byteLength, 0);
  const inner = disk.syncIo;
  const syncIo: SyncBlockIo | undefined =
    inner === undefined
      ? undefined
      : {
          readv: (sector, dests) => {
            check('read', sector, len(dests));
            inner.readv(sector, dests);
          },
          writev: (sector, srcs) => {
            check('write', sector, len(srcs));
            inner.writev(sector, srcs);
          },
        };
  return Object.assign(Object.create(disk) as BlockStorage, {
    syncIo,
    read: async (sector: number, dest: Uint8Array) => {
      check('read', sector, dest.byteLength);
      await pause();
      return disk.read(sector, dest);
    },
    write: async (sector: number, src: Uint8Array) => {
      check('write', sector, src.byteLength);
      await pause();
      return disk.write(sector, src);
    },
    discard: async (sector: number, count: number, options?: { secure?: boolean }) => {
      check('discard', sector, count * 512);
      await pause();
      return disk.discard(sector, count, options);
    },
    flush: async () => {
      for (const h of hooks.splice(0)) h();
      await pause();
      return disk.flush();
    },
  });
}

// ---- one case ----

const CANARY_TAG = 0x5c;

/** A well-formed one-page READ (0) or WRITE (1) of sectors 0..7, for the canary. */
function canarySlot(abi: AbiName, op: 0 | 1, id: bigint, gref: number): Uint8Array {
  const bytes = new Uint8Array(BLKIF_REQUEST.layouts[abi].size);
  const v = new DataView(bytes.buffer);
  encodeBlkifRwFields(v, 0, abi, op, 1, 0, id, 0);
  encodeBlkifRwSegment(v, 0, abi, 0, gref, 0, 7);
  return bytes;
}

/** Wait until `n` responses have come (the backend notifies; we look too). */
function responses(front: SlotFront, back: BlkBack, n: number, what: string): Promise<void> {
  return until(() => {
    front.collect();
    return front.responses.length >= n || front.problems.length > 0 || !back.isConnected;
  }, 3000, what);
}

/** What the cases reached (printed after a campaign, so that a run that tried nothing deep shows). */
const reached = new Map<string, number>();
const count = (what: string): void => void reached.set(what, (reached.get(what) ?? 0) + 1);

function diff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function runCase(env: BlkEnv, sync: boolean, c: Case, uncaught: unknown[]): Promise<void> {
  const s = c.setup;
  const logs: string[] = [];
  const violations: string[] = [];
  const hooks: (() => void)[] = [];
  const phase = { now: 'canary' as Phase };
  const disk = new MemoryStorage(s.sectors, { sync, logicalBlockSize: s.blockSize });
  const canary = pattern(0, CANARY_SECTORS, CANARY_TAG);
  await env.addVbd({ mode: s.readOnly ? 'r' : 'w', backKeys: s.discard ? {} : { 'discard-enable': 0 } });
  const back = env.newBack(watchedStorage(disk, s, phase, hooks, violations), {
    // The copy data path has no synchronous variant: the sync test always maps.
    dataPath: s.copy && !sync ? 'copy' : 'map',
    maxIndirectSegments: s.maxIndirect,
    log: (m) => logs.push(m),
  });
  await back.start();
  const front = new SlotFront(env, s.abi);
  try {
    const pool = new Pool(front, s, (env.guestId + 1) as DomId);
    await front.connect(s.order, { 'feature-persistent': s.persistent ? '1' : '0' });
    await until(async () => (await backState(env)) === '4', 3000, 'backend Connected');
    const why = (): string => `\n  backend log:\n    ${logs.slice(-12).join('\n    ')}`;

    // The canary, written the way any frontend writes (on a read-only vbd, put on the disk).
    if (s.readOnly) disk.bytes.set(canary);
    else {
      const src = front.grant(false);
      src.bytes.set(canary);
      front.put(canarySlot(s.abi, 1, 0xca4a7n, src.ref));
      front.push();
      await responses(front, back, 1, 'the canary WRITE answered');
      assert.deepEqual(front.responses[0], { id: 0xca4a7n, operation: 1, status: BLKIF_RSP_OKAY }, `canary WRITE${why()}`);
    }
    const first = front.responses.length;
    phase.now = 'fuzz';

    const sent: Sent[] = [];
    /** How the actions ended: all played, req_prod overflowed, or the state node written. */
    let ended: 'played' | 'overflow' | 'flap' = 'played';
    for (const act of c.actions) {
      if (act.a === 'put') {
        front.collect();
        if (front.free === 0) {
          front.push();
          await until(() => (front.collect(), front.free > 0 || front.problems.length > 0 || !back.isConnected), 3000, `a free slot${why()}`);
          if (front.free === 0) break;
        }
        sent.push({ index: front.put(encode(act.req, s, pool)), head: act.req.head, bodies: [act.req.body], matched: false });
      } else if (act.a === 'push') {
        front.push();
      } else if (act.a === 'rewrite') {
        const n = Math.min(sent.length, front.size);
        if (n === 0) continue;
        const x = sent[sent.length - 1 - (act.back % n)]!;
        const apply = (): void => {
          // A deferred rewrite must not land on a later request that took the slot since.
          if (((front.written - x.index) >>> 0) > front.size) return;
          x.bodies.push(act.body);
          count(`rewrite ${act.when}`);
          front.rewrite(x.index, encode({ head: x.head, body: act.body }, s, pool), rewriteFrom(s.abi));
        };
        if (act.when === 'now') apply();
        else hooks.push(apply);
      } else if (act.a === 'wait') {
        if (act.how === 'micro') await Promise.resolve();
        else if (act.how === 'immediate') await new Promise((r) => setImmediate(r));
        else await new Promise((r) => setTimeout(r, 1));
      } else if (act.a === 'overflow') {
        front.setReqProd(front.published + front.size + 1 + act.k);
        ended = 'overflow';
        count('req_prod overflowed');
        break;
      } else {
        // Answers from now on are not checked: a backend that reconnects serves the ring from
        // index 0 again (the frontend did not re-initialise it), which is the frontend's loss.
        front.collect();
        front.stopReading();
        for (const st of act.states) await env.xsGuest.write(`${env.frontPath}/state`, String(st));
        await env.xsGuest.write(`${env.frontPath}/state`, '6');
        ended = 'flap';
        count('state flapped');
        break;
      }
    }

    if (ended === 'played') {
      front.push();
      await responses(front, back, first + sent.length, `an answer to each of the ${sent.length} requests${why()}`);
    }
    hooks.length = 0;
    const fuzzAnswers = front.responses.slice(first);
    assert.deepEqual(front.problems, [], `the ring${why()}`);
    assert.deepEqual(matchResponses(fuzzAnswers, sent, s, pool), [], `responses${why()}`);
    assert.deepEqual(violations, [], `storage calls${why()}`);

    if (ended === 'overflow') {
      await until(async () => (await backState(env)) === '5', 3000, 'backend Closing after req_prod overflowed');
      assert.equal(back.isConnected, false);
      assert.ok(logs.some((l) => /request-prod-overflow/.test(l)), `the reason is logged${why()}`);
    } else if (ended === 'flap') {
      // Watch events still in flight may start one more step: wait until the backend is quiet.
      await until(async () => {
        await new Promise((r) => setTimeout(r, 20));
        await back.idle();
        return ['5', '6'].includes(await backState(env)) && env.hv.dom0.grants.maptrack.live().length === 0;
      }, 3000, `backend settles closed and unmapped after the state node flapped${why()}`);
      assert.equal(back.isConnected, false);
    } else {
      assert.equal(back.isConnected, true, `a ring whose req_prod was never overflowed is still served${why()}`);
      assert.equal(fuzzAnswers.length, sent.length, 'one answer per request');
      // The device still works: the canary reads back.
      phase.now = 'canary';
      const into = front.grant(true);
      front.put(canarySlot(s.abi, 0, 0xca4a8n, into.ref));
      front.push();
      await responses(front, back, first + sent.length + 1, `the canary READ answered${why()}`);
      assert.deepEqual(front.responses.at(-1), { id: 0xca4a8n, operation: 0, status: BLKIF_RSP_OKAY }, `canary READ${why()}`);
      assert.equal(diff(into.bytes, canary), -1, 'the canary reads back intact');
    }

    // Pages: nothing the backend could not write was written.
    const marks = mayWrite(sent, pool, ended === 'flap');
    for (const p of pool.watched) {
      const m = p.writable && p.ref !== undefined ? marks.get(p.ref) : undefined;
      for (let sct = 0; sct < 8; sct++) {
        if (m?.[sct] === true) continue;
        const at = diff(p.bytes.subarray(sct * 512, sct * 512 + 512), p.before.subarray(sct * 512, sct * 512 + 512));
        assert.equal(at, -1, `${p.what}: sector ${sct} byte ${at} written, though no READ named it${why()}`);
      }
    }

    // Close from the frontend: the backend lets go of everything (withBlkEnv then checks leaks).
    await env.xsGuest.write(`${env.frontPath}/state`, '6');
    await until(async () => ['5', '6'].includes(await backState(env)), 3000, 'backend closes');
    await until(() => env.hv.dom0.grants.maptrack.live().length === 0, 3000, 'backend unmaps every grant');
    assert.equal(back.info().inFlight, 0);
    await front.dispose();
  } catch (err) {
    // Let go of everything here, or the leak registry (one per process) would fail every
    // later case, and fast-check would shrink towards whatever case ran next.
    await back.destroy();
    await front.dispose().catch(() => undefined);
    const thrown = uncaught.splice(0);
    // What escaped the backend is the likelier cause of whatever failed after it.
    if (thrown.length > 0) throw new Error(`thrown out of the backend: ${thrown.map((e) => (e instanceof Error ? e.stack : String(e))).join('\n')}`, { cause: err });
    throw err;
  }
  assert.deepEqual(uncaught.splice(0), [], 'nothing thrown out of the backend');
}

function fuzz(sync: boolean): Promise<void> {
  const uncaught: unknown[] = [];
  const catcher = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', catcher);
  process.on('unhandledRejection', catcher);
  const params: fc.Parameters<[Case]> = { numRuns: RUNS, includeErrorInReport: true, ...(SEED === undefined ? {} : { seed: Number(SEED) }), ...(PATH === undefined ? {} : { path: PATH, endOnFailure: true }) };
  const started = Date.now();
  let ran = 0;
  return fc
    .assert(
      fc.asyncProperty(fuzzCase, (c) => {
        ran++;
        return withBlkEnv((env) => runCase(env, sync, c, uncaught));
      }),
      params,
    )
    .finally(() => {
      process.off('uncaughtException', catcher);
      process.off('unhandledRejection', catcher);
      if (RUNS <= 100) return;
      console.log(`${sync ? 'sync' : 'async'} path: ${ran} cases in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      for (const [what, n] of [...reached].sort()) console.log(`  ${what}: ${n}`);
      reached.clear();
    });
}

test('fuzz: random hostile request slots on the asynchronous path get errors or a closed device, never a crash, leak, double answer or stray write', () =>
  fuzz(false));

test('fuzz: random hostile request slots on the synchronous path get errors or a closed device, never a crash, leak, double answer or stray write', () =>
  fuzz(true));
