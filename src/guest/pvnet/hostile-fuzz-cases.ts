/** The hostile-netfront fuzz's cases (hostile-fuzz.test.ts): what one is made of, fast-check's generators of them, and the frames they carry. */
import fc from 'fast-check';
import { xorshift32 } from '../../base/index.js';
import { MARKER, type HostileFeatures } from './hostile-front.js';

/** Low event limits: a storm of a few hundred notifications is deferred, not just counted. */
export const HOSTILE_LIMITS = { eventAllowance: 40, eventWindowMs: 20 };
export const TXF_MORE = 1 << 2;
export const TXF_EXTRA = 1 << 3;

// ---------------------------------------------------------------------------------------------
// What a case is made of

export type MacPick = 'b' | 'c' | 'self' | 'bcast' | 'mcast' | 'linklocal' | 'zero' | 'random';
export type RefPick = { kind: 'page'; page: number } | { kind: 'revoked' | 'foreign'; n: number } | { kind: 'wild'; ref: number };
export type OffPick = { kind: 'zero' | 'fit' | 'edge'; r: number };
type SizePick = { kind: 'delta'; d: number } | { kind: 'any'; v: number };

interface L3Spec {
  readonly v6: boolean;
  readonly tcp: boolean;
  /** IPv4 header length in words (5 is plain; others as they come), TCP data offset. */
  readonly ihl: number;
  readonly doff: number;
  /** The IP length field as the frame's length says, or off by this much. */
  readonly lenDelta: number;
}

/** One data slot of a packet: its share of the frame, where in its page (always inside it). */
interface FragSpec {
  readonly len: number;
  readonly off: OffPick;
}

/** An extra-info slot; valid unless a mutation spoils it. */
export interface ExtraSpec {
  readonly type: 1 | 2 | 3 | 4;
  readonly gsoSize: number;
  readonly gsoType: 1 | 2;
  readonly mac: MacPick;
  /** The union and the slot's tail: whatever a frontend left there. */
  readonly bytes: readonly number[];
}

/**
 * What a hostile frontend does to an otherwise well-formed packet. `at` picks the slot (or
 * extra) modulo their number. Most packets get none: a round of packets that are mostly
 * fine reaches further than one that is fatal at its first packet.
 */
export type Mutation =
  | { readonly kind: 'size'; readonly at: number; readonly size: SizePick } // oversized, short, first size off
  | { readonly kind: 'past'; readonly at: number; readonly r: number } // a fragment crossing its page
  | { readonly kind: 'ref'; readonly at: number; readonly ref: RefPick } // stale, foreign, wild, another page
  | { readonly kind: 'bits'; readonly at: number; readonly bits: number } // checksum and unknown flag bits
  | { readonly kind: 'id'; readonly at: number; readonly id: number }
  | { readonly kind: 'cut'; readonly at: number } // more_data cleared mid-chain
  | { readonly kind: 'extend' } // more_data on the last slot: into the next packet, or past req_prod
  | { readonly kind: 'extraFlag' } // NETTXF_extra_info inverted
  | { readonly kind: 'badExtra'; readonly at: number; readonly how: 'type' | 'gsoSize' | 'gsoType' | 'more'; readonly v: number };

export type PacketSpec =
  | {
      readonly kind: 'frame';
      readonly dst: MacPick;
      readonly src: MacPick;
      readonly macBytes: readonly number[];
      readonly ethertype: number;
      /** IP and TCP/UDP headers over the random bytes, so checksum fill, GSO and hashing look further in. */
      readonly l3: L3Spec | undefined;
      /** NETTXF_csum_blank and NETTXF_data_validated of the first slot. */
      readonly offload: number;
      readonly seed: number;
      readonly frags: readonly FragSpec[];
      readonly extras: readonly ExtraSpec[];
      readonly mutations: readonly Mutation[];
    }
  | { readonly kind: 'garbage'; readonly bytes: readonly number[] };

export interface CtrlSpec {
  readonly id: number;
  readonly type: number;
  readonly data: readonly [number, number, number];
  readonly ref: RefPick | undefined;
  /** The answer netback must give whatever came before, when there is one. */
  readonly status?: number;
}

/** Turn Toeplitz steering on, as a frontend with a control ring does: every step must succeed. */
export interface HashOn {
  readonly flags: number;
  readonly key: readonly number[];
  readonly mapping: number;
}

export interface RoundSpec {
  readonly queue: number;
  readonly packets: readonly PacketSpec[];
  readonly storm: number;
  readonly stormSpread: boolean;
  readonly rxPosts: readonly { readonly count: number; readonly ref: RefPick | 'auto'; readonly id: number | 'seq' }[];
  readonly fromB: readonly { readonly dst: 'hostile' | 'bcast' | 'mcast'; readonly len: number; readonly seed: number; readonly gso: boolean }[];
  readonly ctrl: readonly CtrlSpec[];
  readonly hash: HashOn | undefined;
  /** request-multicast-control rewritten while connected (netback watches it). */
  readonly mcastToggle: boolean | undefined;
  readonly rxStorm: number;
}

/**
 * How a session ends: a clean close; a producer index no ring can hold (tx and control:
 * fatal; rx: fatal once netback looks); or, abruptly, the frontend closing its channels (and
 * perhaps flapping its state) and going Closed while a round of work is still in flight.
 */
export type EndSpec =
  | { kind: 'close' }
  | { kind: 'txJump' | 'txBack' | 'rxJump' | 'rxBack' | 'ctrlJump'; n: number }
  | { kind: 'abrupt'; round: RoundSpec; flap: readonly number[] };

export interface SessionSpec {
  readonly features: HostileFeatures;
  readonly initialRx: number;
  readonly rounds: readonly RoundSpec[];
  readonly end: EndSpec;
}

export const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>): fc.WeightedArbitrary<T> => ({ weight, arbitrary });

const macPick: fc.Arbitrary<MacPick> = fc.oneof(
  w(2, fc.constantFrom<MacPick>('b', 'c')),
  w(2, fc.constant<MacPick>('self')),
  w(1, fc.constantFrom<MacPick>('bcast', 'mcast', 'linklocal', 'zero', 'random')),
);
const srcPick: fc.Arbitrary<MacPick> = fc.oneof(
  w(12, fc.constant<MacPick>('self')),
  w(2, fc.constantFrom<MacPick>('random', 'mcast', 'bcast', 'zero')),
  w(1, fc.constantFrom<MacPick>('b', 'c')),
);
const refPick: fc.Arbitrary<RefPick> = fc.oneof(
  w(20, fc.integer({ min: 0, max: 47 }).map((page): RefPick => ({ kind: 'page', page }))),
  w(1, fc.record({ kind: fc.constantFrom<'revoked' | 'foreign'>('revoked', 'foreign'), n: fc.nat(3) })),
  w(1, fc.oneof(fc.nat(64), fc.nat()).map((ref): RefPick => ({ kind: 'wild', ref }))),
);
const offPick: fc.Arbitrary<OffPick> = fc.record({
  kind: fc.oneof(w(8, fc.constant<'zero'>('zero')), w(6, fc.constant<'fit'>('fit')), w(2, fc.constant<'edge'>('edge'))),
  r: fc.nat(),
});
const sizePick: fc.Arbitrary<SizePick> = fc.oneof(
  w(3, fc.integer({ min: -16, max: 16 }).map((d): SizePick => ({ kind: 'delta', d }))),
  w(1, fc.integer({ min: 0, max: 0xffff }).map((v): SizePick => ({ kind: 'any', v }))),
);
const slotId = fc.oneof(w(6, fc.constant<'seq'>('seq')), w(1, fc.nat(0xffff)));

const firstLen = fc.oneof(
  w(1, fc.constant(0)), w(1, fc.integer({ min: 1, max: 13 })), w(2, fc.integer({ min: 14, max: 60 })),
  w(12, fc.integer({ min: 60, max: 1514 })), w(2, fc.integer({ min: 1515, max: 4096 })),
);
const followLen = fc.oneof(w(2, fc.constant(0)), w(3, fc.integer({ min: 1, max: 100 })), w(3, fc.integer({ min: 101, max: 4096 })), w(1, fc.constant(4096)));
// Follow-on slots: 18 pass, 19 and 20 are dropped with errors, 21 and more are fatal.
const followCount = fc.oneof(
  w(40, fc.constant(0)), w(16, fc.integer({ min: 1, max: 3 })), w(6, fc.integer({ min: 4, max: 17 })),
  w(3, fc.integer({ min: 18, max: 20 })), w(1, fc.integer({ min: 21, max: 25 })),
);

const extraSpec: fc.Arbitrary<ExtraSpec> = fc.record({
  type: fc.oneof(w(4, fc.constant<1>(1)), w(2, fc.constant<2>(2)), w(1, fc.constant<3>(3)), w(1, fc.constant<4>(4))),
  gsoSize: fc.integer({ min: 1, max: 9000 }),
  gsoType: fc.constantFrom<1 | 2>(1, 2),
  mac: fc.constantFrom<MacPick>('mcast', 'bcast', 'b', 'random', 'self'),
  bytes: fc.array(fc.nat(255), { minLength: 10, maxLength: 10 }),
});

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  w(8, fc.record({ kind: fc.constant<'size'>('size'), at: fc.nat(), size: sizePick })),
  w(1, fc.record({ kind: fc.constant<'past'>('past'), at: fc.nat(), r: fc.nat() })),
  w(8, fc.record({ kind: fc.constant<'ref'>('ref'), at: fc.nat(), ref: refPick })),
  w(6, fc.record({ kind: fc.constant<'bits'>('bits'), at: fc.nat(), bits: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.nat(0xffff)) })),
  w(2, fc.record({ kind: fc.constant<'id'>('id'), at: fc.nat(), id: fc.nat(0xffff) })),
  w(2, fc.record({ kind: fc.constant<'cut'>('cut'), at: fc.nat() })),
  w(1, fc.constant<Mutation>({ kind: 'extend' })),
  w(1, fc.constant<Mutation>({ kind: 'extraFlag' })),
  w(1, fc.record({ kind: fc.constant<'badExtra'>('badExtra'), at: fc.nat(), how: fc.constantFrom<'type' | 'gsoSize' | 'gsoType' | 'more'>('type', 'gsoSize', 'gsoType', 'more'), v: fc.nat(255) })),
);

const framePacket: fc.Arbitrary<PacketSpec> = fc.record({
  kind: fc.constant<'frame'>('frame'),
  dst: macPick,
  src: srcPick,
  macBytes: fc.array(fc.nat(255), { minLength: 6, maxLength: 6 }),
  ethertype: fc.oneof(fc.constantFrom(0x0800, 0x0806, 0x86dd, 0x88b5), fc.nat(0xffff)),
  l3: fc.oneof(
    w(1, fc.constant(undefined)),
    w(1, fc.record({
      v6: fc.boolean(), tcp: fc.boolean(),
      ihl: fc.oneof(w(6, fc.constant(5)), w(1, fc.nat(15))),
      doff: fc.oneof(w(6, fc.constant(5)), w(1, fc.nat(15))),
      lenDelta: fc.oneof(w(6, fc.constant(0)), w(1, fc.integer({ min: -64, max: 64 }))),
    })),
  ),
  offload: fc.oneof(w(4, fc.constant(0)), w(1, fc.integer({ min: 1, max: 3 }))),
  seed: fc.nat(),
  frags: fc.tuple(fc.record({ len: firstLen, off: offPick }), followCount.chain((n) => fc.array(fc.record({ len: followLen, off: offPick }), { minLength: n, maxLength: n })))
    .map(([f, rest]) => [f, ...rest]),
  extras: fc.oneof(w(6, fc.constant([])), w(2, fc.array(extraSpec, { minLength: 1, maxLength: 3 }))),
  mutations: fc.oneof(w(9, fc.constant([])), w(1, fc.array(mutation, { minLength: 1, maxLength: 3 }))),
});
const packetSpec: fc.Arbitrary<PacketSpec> = fc.oneof(
  w(80, framePacket),
  w(1, fc.record({ kind: fc.constant<'garbage'>('garbage'), bytes: fc.array(fc.nat(255), { minLength: 12, maxLength: 12 }) })),
);

const ctrlSpec: fc.Arbitrary<CtrlSpec> = fc.record({
  id: fc.nat(0xffff),
  type: fc.oneof(w(6, fc.integer({ min: 1, max: 7 })), w(1, fc.oneof(fc.constantFrom(0, 8, 9, 10), fc.nat(0xffff)))),
  data: fc.tuple(
    fc.oneof(fc.nat(3), fc.nat(200), fc.nat()),
    fc.oneof(fc.nat(64), fc.nat(200), fc.nat()),
    fc.oneof(fc.nat(128), fc.nat()),
  ),
  ref: fc.option(refPick, { nil: undefined }),
});

export const hashOn: fc.Arbitrary<HashOn> = fc.record({
  flags: fc.integer({ min: 1, max: 15 }),
  key: fc.array(fc.nat(255), { minLength: 0, maxLength: 40 }),
  mapping: fc.integer({ min: 1, max: 128 }),
});

const roundSpec: fc.Arbitrary<RoundSpec> = fc.record({
  queue: fc.nat(1),
  packets: fc.array(packetSpec, { maxLength: 12 }),
  storm: fc.oneof(w(6, fc.constant(0)), w(1, fc.integer({ min: 1, max: 400 }))),
  stormSpread: fc.boolean(),
  rxPosts: fc.array(
    fc.record({ count: fc.integer({ min: 0, max: 64 }), ref: fc.oneof(w(8, fc.constant<'auto'>('auto')), w(1, refPick)), id: slotId }),
    { maxLength: 3 },
  ),
  fromB: fc.array(
    fc.record({ dst: fc.constantFrom<'hostile' | 'bcast' | 'mcast'>('hostile', 'hostile', 'bcast', 'mcast'), len: fc.integer({ min: 60, max: 1514 }), seed: fc.nat(), gso: fc.boolean() }),
    { maxLength: 4 },
  ),
  ctrl: fc.oneof(w(3, fc.constant([])), w(1, fc.array(ctrlSpec, { maxLength: 8 }))),
  hash: fc.oneof(w(4, fc.constant(undefined)), w(1, hashOn)),
  mcastToggle: fc.oneof(w(8, fc.constant(undefined)), w(1, fc.boolean())),
  rxStorm: fc.oneof(w(8, fc.constant(0)), w(1, fc.integer({ min: 1, max: 200 }))),
});

const featuresSpec: fc.Arbitrary<HostileFeatures> = fc.record({
  queues: fc.constantFrom<1 | 2>(1, 1, 2),
  split: fc.boolean(),
  sg: fc.oneof(w(3, fc.constant(true)), w(1, fc.constant(false))),
  gsoV4: fc.boolean(),
  gsoV6: fc.boolean(),
  noCsum: fc.oneof(w(3, fc.constant(false)), w(1, fc.constant(true))),
  ipv6Csum: fc.boolean(),
  rxNotify: fc.oneof(w(3, fc.constant(true)), w(1, fc.constant(false))),
  mcastCtrl: fc.boolean(),
  ctrl: fc.boolean(),
  sameRing: fc.oneof(w(30, fc.constant(false)), w(1, fc.constant(true))),
});

const sessionSpec: fc.Arbitrary<SessionSpec> = fc.record({
  features: featuresSpec,
  initialRx: fc.oneof(w(1, fc.constant(0)), w(4, fc.integer({ min: 1, max: 64 })), w(1, fc.integer({ min: 65, max: 256 }))),
  rounds: fc.array(roundSpec, { minLength: 1, maxLength: 5 }),
  end: fc.oneof(
    w(8, fc.constant<EndSpec>({ kind: 'close' })),
    w(1, fc.record({ kind: fc.constantFrom<'txJump' | 'txBack' | 'rxJump' | 'rxBack' | 'ctrlJump'>('txJump', 'txBack', 'rxJump', 'rxBack', 'ctrlJump'), n: fc.nat(100_000) })),
    // `flap`: xenbus states written (XSA-349 style) before Closed, while the work is in flight.
    w(1, fc.record({ kind: fc.constant<'abrupt'>('abrupt'), round: roundSpec, flap: fc.oneof(w(3, fc.constant([])), w(1, fc.array(fc.nat(8), { maxLength: 6 }))) })),
  ),
});

/**
 * lockMac: the vif may send only from its own address (vif-bridge's ebtables rules); else
 * spoofing b or c misleads the bridge. rate: the vif's `rate` key (bytes,usecs) or none.
 */
export const caseSpec = fc.record({
  lockMac: fc.boolean(),
  rate: fc.oneof(w(3, fc.constant(undefined)), w(1, fc.tuple(fc.integer({ min: 10_000, max: 200_000 }), fc.integer({ min: 1000, max: 10_000 })).map(([b, u]) => `${b},${u}`))),
  sessions: fc.array(sessionSpec, { minLength: 1, maxLength: 3 }),
});
export type CaseSpec = typeof caseSpec extends fc.Arbitrary<infer T> ? T : never;

// ---------------------------------------------------------------------------------------------
// Frames, multisets

/** Frames by content, with counts (a multiset). */
export class Bag {
  private readonly m = new Map<string, number>();
  static key(f: Uint8Array): string {
    return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('latin1');
  }
  add(f: Uint8Array): void {
    const k = Bag.key(f);
    this.m.set(k, (this.m.get(k) ?? 0) + 1);
  }
  has(f: Uint8Array): boolean {
    return this.m.has(Bag.key(f));
  }
  /** Take one copy of `f`; false when none is left. */
  take(f: Uint8Array): boolean {
    const k = Bag.key(f);
    const n = this.m.get(k) ?? 0;
    if (n === 0) return false;
    this.m.set(k, n - 1);
    return true;
  }
  entries(): IterableIterator<[string, number]> {
    return this.m.entries();
  }
}

export function hasMarker(f: Uint8Array): boolean {
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).indexOf(Buffer.from(MARKER.subarray(0, 8))) >= 0;
}

export function makeFrame(len: number, dst: Uint8Array, src: Uint8Array, ethertype: number, seed: number): Uint8Array {
  const f = new Uint8Array(len);
  const hdr = new Uint8Array(14);
  hdr.set(dst, 0);
  hdr.set(src, 6);
  hdr[12] = ethertype >> 8;
  hdr[13] = ethertype & 0xff;
  f.set(hdr.subarray(0, Math.min(14, len)));
  const rnd = xorshift32(seed);
  for (let i = 14; i < len; i++) f[i] = rnd() & 0xff;
  return f;
}

/** Write IPv4/IPv6 and TCP/UDP headers over a frame's random bytes (as far as it is long). */
export function putL3(f: Uint8Array, l: L3Spec): void {
  if (f.length < 14) return;
  const hdr = new Uint8Array(60);
  f.set(l.v6 ? [0x86, 0xdd] : [0x08, 0x00], 12);
  const proto = l.tcp ? 6 : 17;
  const ipLen = l.v6 ? 40 : l.ihl * 4;
  const v = new DataView(hdr.buffer);
  if (l.v6) {
    hdr[0] = 0x60;
    v.setUint16(4, (f.length - 54 + l.lenDelta) & 0xffff);
    hdr[6] = proto;
  } else {
    hdr[0] = 0x40 | (l.ihl & 0xf);
    v.setUint16(2, (f.length - 14 + l.lenDelta) & 0xffff);
    hdr[8] = 64;
    hdr[9] = proto;
  }
  const l4 = new Uint8Array(20);
  if (l.tcp) l4[12] = (l.doff & 0xf) << 4;
  // Only the fields that steer the parsers: the rest stays random.
  const keep = (at: number, bytes: Uint8Array, n: number, pick: (i: number) => boolean): void => {
    for (let i = 0; i < n && at + i < f.length; i++) if (pick(i)) f[at + i] = bytes[i]!;
  };
  keep(14, hdr, ipLen, (i) => (l.v6 ? i === 0 || i === 4 || i === 5 || i === 6 : i <= 3 || i === 6 || i === 7 || i === 8 || i === 9));
  keep(14 + ipLen, l4, 20, (i) => l.tcp && i === 12);
}

/** A TCPv4 frame of `payload` bytes (headers only as valid as the bridge needs to pass it on). */
export function tcpV4(dst: Uint8Array, src: Uint8Array, payload: number, seed: number): Uint8Array {
  const f = makeFrame(54 + payload, dst, src, 0x0800, seed);
  f.set([0x45, 0, ((40 + payload) >> 8) & 0xff, (40 + payload) & 0xff, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 3], 14);
  f[46] = 5 << 4;
  return f;
}
