/** The hostile-frontend fuzz's cases (hostile-fuzz.test.ts): what one is made of, and fast-check's generators of them. */
import fc from 'fast-check';
import type { AbiName } from '../../abi/layout.js';


/** Sectors 0..7 hold the canary; generated requests start at 8 or far past any disk. */
export const CANARY_SECTORS = 8;
/** Sector numbers past every disk; base + k (k >= -16) stays above 2^32 and below 2^64. */
export const HUGE = [2n ** 32n + 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 80n];
/** Refs the frontend never granted: reserved, unused, beyond any table. */
export const BAD_REFS = [0, 1, 7, 3000, 65535, 0x7fffffff, 0xffffffff];
export const SEGS_PER_PAGE = 512;

// ---- what a case is made of ----

export type Cat = 'rw' | 'ro' | 'foreign' | 'indirect' | 'bad' | 'stale';
/** A grant ref, by kind: resolved against the case's pages (Pool.ref). */
export interface RefPick {
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
export interface Body {
  readonly sector: SectorPick;
  readonly segs: readonly Seg[];
  readonly count: bigint;
  readonly pages: readonly RefPick[];
  readonly noise: number;
}
/** The fields a rewrite leaves alone (they share bytes with the response written over the slot). */
export type Head =
  | { readonly kind: 'rw'; readonly op: number; readonly nr: number; readonly id: bigint }
  | { readonly kind: 'discard'; readonly flag: number; readonly id: bigint }
  | { readonly kind: 'indirect'; readonly op: number; readonly nr: number; readonly id: bigint }
  | { readonly kind: 'unknown'; readonly op: number; readonly id: bigint };
export interface Req {
  readonly head: Head;
  readonly body: Body;
}
interface IndirectPage {
  readonly segs: readonly Seg[];
  readonly poison: { readonly at: number; readonly gref: number; readonly first: number; readonly last: number } | null;
}
export interface Setup {
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
export interface Case {
  readonly setup: Setup;
  readonly actions: readonly Action[];
}

// ---- generators ----

export const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
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
export const sector: fc.Arbitrary<SectorPick> = fc.record({
  base: fc.oneof(w(4, fc.constant('low' as const)), w(3, fc.constant('edge' as const)), w(1, fc.constant('end' as const)), w(1, fc.constant('huge' as const))),
  k: fc.integer({ min: -16, max: 63 }),
  align: fc.boolean(),
});
export const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
export const body: fc.Arbitrary<Body> = fc.record({
  sector,
  segs: segList(11, 11),
  count: fc.oneof(w(4, fc.bigInt({ min: 0n, max: 40n })), w(1, fc.constantFrom(2n ** 32n, 2n ** 63n, 2n ** 64n - 8n, 2n ** 64n - 1n)), w(1, u64)),
  pages: fc.tuple(fc.oneof(w(4, fc.record({ cat: fc.constant<Cat>('indirect'), i: fc.nat(3) })), w(1, refPick(1))), fc.array(refPick(1, 4), { minLength: 7, maxLength: 7 })).map(([p, rest]) => [p, ...rest]),
  noise: fc.nat(),
});
/** Mostly distinct random ids; sometimes one that other requests may share. */
export const id = fc.oneof(w(5, u64), w(1, fc.constantFrom(0n, 1n, 2n ** 64n - 1n)));
export const head: fc.Arbitrary<Head> = fc.oneof(
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
export const setup: fc.Arbitrary<Setup> = fc.record({
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
export const fuzzCase: fc.Arbitrary<Case> = fc.record({ setup, actions: fc.array(action, { minLength: 1, maxLength: 48, size: 'max' }) });
