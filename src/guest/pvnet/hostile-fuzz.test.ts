/**
 * Hostile frontend, randomized (issue: "A hostile frontend (bogus slot counts, zero-length and
 * oversized fragments, headers split across slots, a receiver that never posts buffers, event
 * storms) is bounded and answered with errors or disconnection; other vifs keep working").
 *
 * Each case builds a host (withNet: guests b, c and d with NetFronts and stacks on one bridge;
 * d without GSO, scatter-gather or checksum offload, with two hashed queues) and a fourth
 * domain whose "netfront" is hostile-front.ts: it connects one to three times and each time
 * throws rounds of random tx slot chains, rx requests, control requests, producer jumps and
 * event storms at netback, sometimes with a `rate` limit or lockMac on its vif. hostile-model.ts
 * says what netback must answer; the invariants:
 * - nothing escapes into the event loop (uncaughtException / unhandledRejection), and a
 *   netback bug never hides as a fatal "internal error";
 * - every consumed tx slot is answered exactly once, in ring order, with the id of its
 *   request and the status the model gives (OKAY, ERROR, NULL for extra slots); a fatal
 *   packet disables the vif: no answers from it on, off the bridge, Closing, error node;
 * - rx responses answer posted requests in their slots, claim success only for writable
 *   buffers granted to dom0, and carry bytes b, c or d sent;
 * - b and c receive from the hostile guest only frames it granted, byte for byte as the model
 *   assembles them, and get the ones addressed to them; d only frames (or segments of them)
 *   with addresses someone sent from; pages it never granted to dom0 carry a marker that never
 *   shows up anywhere and that netback never overwrites; read-only rx buffers stay untouched;
 * - packets refused are counted under the reason the model gives (txDropReasons);
 * - b keeps pinging c throughout each session (unless the hostile guest got b's or c's address
 *   into a bridge without lockMac: a learning bridge then misdelivers) and afterwards;
 * - every grant ends once the hostile frontend closes, and withNet finds no leak after teardown.
 *
 * In-suite runs are few; a campaign: XENPV_FUZZ_RUNS=20000 (XENPV_FUZZ_SEED to replay a run,
 * XENPV_FUZZ_VERBOSE=1 for the failing case's log and what the runs exercised).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { xorshift32, type DomId } from '../../base/index.js';
import { backendPath, errorPath } from '../../xenbus/paths.js';
import { parseMac, isGroupMac, isLinkLocalMac, isZeroMac } from '../../devices/net/bridge/index.js';
import { BACK_LIMITS } from '../../devices/net/protocol.js';
import { Ping } from '../net/ping.js';
import { HostileSession, MARKER, waitBackState, type HostileFeatures, type RawQueue } from './hostile-front.js';
import { expectTx, RSP_ERROR, RSP_NULL, type Forwarded } from './hostile-model.js';
import { until, withNet, type BackendOnly, type NetEnv, type NetGuest } from './test-support.js';

const RUNS = Number(process.env.XENPV_FUZZ_RUNS ?? 15);
const SEED = process.env.XENPV_FUZZ_SEED === undefined ? undefined : Number(process.env.XENPV_FUZZ_SEED);
/** fast-check's `path` of a failure (with its seed): replays that case first. */
const PATH = process.env.XENPV_FUZZ_PATH;
/** Low event limits: a storm of a few hundred notifications is deferred, not just counted. */
const HOSTILE_LIMITS = { eventAllowance: 40, eventWindowMs: 20 };
const TXF_MORE = 1 << 2;
const TXF_EXTRA = 1 << 3;

// ---------------------------------------------------------------------------------------------
// What a case is made of

type MacPick = 'b' | 'c' | 'self' | 'bcast' | 'mcast' | 'linklocal' | 'zero' | 'random';
type RefPick = { kind: 'page'; page: number } | { kind: 'revoked' | 'foreign'; n: number } | { kind: 'wild'; ref: number };
type OffPick = { kind: 'zero' | 'fit' | 'edge'; r: number };
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
interface ExtraSpec {
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
type Mutation =
  | { readonly kind: 'size'; readonly at: number; readonly size: SizePick } // oversized, short, first size off
  | { readonly kind: 'past'; readonly at: number; readonly r: number } // a fragment crossing its page
  | { readonly kind: 'ref'; readonly at: number; readonly ref: RefPick } // stale, foreign, wild, another page
  | { readonly kind: 'bits'; readonly at: number; readonly bits: number } // checksum and unknown flag bits
  | { readonly kind: 'id'; readonly at: number; readonly id: number }
  | { readonly kind: 'cut'; readonly at: number } // more_data cleared mid-chain
  | { readonly kind: 'extend' } // more_data on the last slot: into the next packet, or past req_prod
  | { readonly kind: 'extraFlag' } // NETTXF_extra_info inverted
  | { readonly kind: 'badExtra'; readonly at: number; readonly how: 'type' | 'gsoSize' | 'gsoType' | 'more'; readonly v: number };

type PacketSpec =
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

interface CtrlSpec {
  readonly id: number;
  readonly type: number;
  readonly data: readonly [number, number, number];
  readonly ref: RefPick | undefined;
  /** The answer netback must give whatever came before, when there is one. */
  readonly status?: number;
}

/** Turn Toeplitz steering on, as a frontend with a control ring does: every step must succeed. */
interface HashOn {
  readonly flags: number;
  readonly key: readonly number[];
  readonly mapping: number;
}

interface RoundSpec {
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
type EndSpec =
  | { kind: 'close' }
  | { kind: 'txJump' | 'txBack' | 'rxJump' | 'rxBack' | 'ctrlJump'; n: number }
  | { kind: 'abrupt'; round: RoundSpec; flap: readonly number[] };

interface SessionSpec {
  readonly features: HostileFeatures;
  readonly initialRx: number;
  readonly rounds: readonly RoundSpec[];
  readonly end: EndSpec;
}

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>): fc.WeightedArbitrary<T> => ({ weight, arbitrary });

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

const hashOn: fc.Arbitrary<HashOn> = fc.record({
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
const caseSpec = fc.record({
  lockMac: fc.boolean(),
  rate: fc.oneof(w(3, fc.constant(undefined)), w(1, fc.tuple(fc.integer({ min: 10_000, max: 200_000 }), fc.integer({ min: 1000, max: 10_000 })).map(([b, u]) => `${b},${u}`))),
  sessions: fc.array(sessionSpec, { minLength: 1, maxLength: 3 }),
});
type CaseSpec = typeof caseSpec extends fc.Arbitrary<infer T> ? T : never;

// ---------------------------------------------------------------------------------------------
// Frames, multisets

/** Frames by content, with counts (a multiset). */
class Bag {
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

function hasMarker(f: Uint8Array): boolean {
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).indexOf(Buffer.from(MARKER.subarray(0, 8))) >= 0;
}

function makeFrame(len: number, dst: Uint8Array, src: Uint8Array, ethertype: number, seed: number): Uint8Array {
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
function putL3(f: Uint8Array, l: L3Spec): void {
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
function tcpV4(dst: Uint8Array, src: Uint8Array, payload: number, seed: number): Uint8Array {
  const f = makeFrame(54 + payload, dst, src, 0x0800, seed);
  f.set([0x45, 0, ((40 + payload) >> 8) & 0xff, (40 + payload) & 0xff, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 3], 14);
  f[46] = 5 << 4;
  return f;
}

// ---------------------------------------------------------------------------------------------
// One case

/** What the runs exercised, printed after a campaign (a fuzz that passes should say what it did). */
const seen = {
  sessions: 0, pings: 0, rounds: 0, txSlots: 0, okay: 0, error: 0, null: 0, forwarded: 0, delivered: 0,
  rxFrames: 0, rxSlots: 0, rxErrors: 0, rxExtras: 0, hashOn: 0, ends: {} as Record<string, number>, gsoSegmented: 0, gsoRefused: 0, csumFilled: 0, ctrl: 0, storms: 0, fatal: {} as Record<string, number>,
};

interface Ctx {
  readonly env: NetEnv;
  readonly b: NetGuest;
  readonly c: NetGuest;
  /**
   * A guest without GSO, scatter-gather or checksum offload (the bridge segments and fills
   * for it), with two queues and hash steering (its netback hashes what it gets).
   */
  readonly d: NetGuest;
  readonly h: BackendOnly;
  readonly macs: { readonly b: Uint8Array; readonly c: Uint8Array; readonly self: Uint8Array };
  /** Every frame b, c and d transmitted (what the hostile guest may receive). */
  readonly legit: Bag;
  /** The Ethernet addresses (first 12 bytes) of every frame sent or forwarded: what d's segments start with. */
  readonly headers: Set<string>;
  /** Per receiving guest: frames the hostile guest had forwarded (may arrive), and must arrive. */
  readonly allowed: { readonly b: Bag; readonly c: Bag };
  readonly must: { readonly b: Bag; readonly c: Bag };
  readonly lockMac: boolean;
  /** The hostile guest sent a frame with b's or c's source address past the bridge: it may misdeliver theirs. */
  spoofed: boolean;
  /** What netback forwarded cannot be predicted (sameRing): b and c are only checked for the marker. */
  loose: boolean;
  /** Notifications the hostile guest sent, all sessions (netback cannot have handled more events). */
  notifies: number;
  pinger: Pinger | undefined;
  log: string[];
}

function macOf(p: MacPick, x: Ctx, bytes: readonly number[]): Uint8Array {
  switch (p) {
    case 'b': return x.macs.b;
    case 'c': return x.macs.c;
    case 'self': return x.macs.self;
    case 'bcast': return new Uint8Array(6).fill(0xff);
    case 'mcast': return Uint8Array.from([0x01, 0x00, 0x5e, bytes[3]! & 0x7f, bytes[4]!, bytes[5]!]);
    case 'linklocal': return Uint8Array.from([0x01, 0x80, 0xc2, 0, 0, bytes[5]! & 0x0f]);
    case 'zero': return new Uint8Array(6);
    case 'random': return Uint8Array.from(bytes.slice(0, 6));
  }
}

/** Resolves slot refs and writes fragment bytes into the session's tx pages. */
class SlotWriter {
  private page = 0;
  private id = 0;
  constructor(private readonly s: HostileSession, private readonly x: Ctx) {}

  ref(r: RefPick | 'auto'): { gref: number; bytes: Uint8Array | undefined } {
    const d = this.s.txData;
    if (r === 'auto') {
      const i = this.page++ % d.refs.length;
      return { gref: d.refs[i]!, bytes: d.bytes[i] };
    }
    if (r.kind === 'page') return { gref: d.refs[r.page % d.refs.length]!, bytes: d.bytes[r.page % d.refs.length] };
    if (r.kind === 'wild') return { gref: this.wild(r.ref), bytes: undefined };
    return { gref: this.s.badRefs[r.kind][r.n % this.s.badRefs[r.kind].length]!, bytes: undefined };
  }

  /** A ref number granted to dom0 by nobody (ring pages and rx buffers included). */
  wild(ref: number): number {
    let r = ref >>> 0;
    while (this.s.grantedToDom0.has(r)) r = (r + 1) >>> 0;
    return r;
  }

  nextId(id: number | 'seq'): number {
    return id === 'seq' ? this.id++ & 0xffff : id;
  }

  packet(p: PacketSpec): Uint8Array[] {
    if (p.kind === 'garbage') return [Uint8Array.from(p.bytes)];
    const total = p.frags.reduce((n, f) => n + f.len, 0);
    const frame = makeFrame(total, macOf(p.dst, this.x, p.macBytes), macOf(p.src, this.x, p.macBytes), p.ethertype, p.seed);
    if (p.l3 !== undefined) putL3(frame, p.l3);
    const n = p.frags.length;
    const mut = <K extends Mutation['kind']>(kind: K, i: number): Extract<Mutation, { kind: K }> | undefined =>
      p.mutations.find((m): m is Extract<Mutation, { kind: K }> => m.kind === kind && (!('at' in m) || m.at % n === i));
    let at = 0;
    const data = p.frags.map((f, i) => {
      const bytes = frame.subarray(at, at + f.len);
      at += f.len;
      const { gref, bytes: page } = this.ref(mut('ref', i)?.ref ?? 'auto');
      const past = mut('past', i);
      const offset = past === undefined ? offsetOf(f.off, f.len) : Math.min(0xffff, Math.max(0, 4096 - f.len) + 1 + (past.r % 300));
      if (page !== undefined && offset < 4096) page.set(bytes.subarray(0, Math.min(bytes.length, 4096 - offset)), offset);
      const nominal = i === 0 ? total : f.len;
      const sm = mut('size', i)?.size;
      const size = sm === undefined ? nominal : sm.kind === 'delta' ? nominal + sm.d : sm.v;
      const flags = ((mut('bits', i)?.bits ?? 0) | (i === 0 ? p.offload : 0)) & ~(TXF_MORE | TXF_EXTRA) | (i + 1 < n ? TXF_MORE : 0);
      return txSlot(gref, offset, flags, mut('id', i)?.id ?? this.nextId('seq'), size);
    });
    const cut = p.mutations.find((m) => m.kind === 'cut');
    if (cut !== undefined && n > 1) setFlags(data[cut.at % (n - 1)]!, 0, TXF_MORE);
    if (p.mutations.some((m) => m.kind === 'extend')) setFlags(data[n - 1]!, TXF_MORE, 0);
    const extras = p.extras.map((e, i) => extraSlot(e, i + 1 < p.extras.length, this.x));
    for (const m of p.mutations) if (m.kind === 'badExtra' && extras.length > 0) spoilExtra(extras[m.at % extras.length]!, m.how, m.v);
    const flag = (extras.length > 0) !== p.mutations.some((m) => m.kind === 'extraFlag');
    setFlags(data[0]!, flag ? TXF_EXTRA : 0, flag ? 0 : TXF_EXTRA);
    return [data[0]!, ...extras, ...data.slice(1)];
  }
}

function offsetOf(o: OffPick, len: number): number {
  const room = Math.max(0, 4096 - len);
  switch (o.kind) {
    case 'zero': return 0;
    case 'fit': return o.r % (room + 1);
    case 'edge': return room;
  }
}

function txSlot(gref: number, offset: number, flags: number, id: number, size: number): Uint8Array {
  const s = new Uint8Array(12);
  const v = new DataView(s.buffer);
  v.setUint32(0, gref >>> 0, true);
  v.setUint16(4, offset & 0xffff, true);
  v.setUint16(6, flags & 0xffff, true);
  v.setUint16(8, id & 0xffff, true);
  v.setUint16(10, size & 0xffff, true);
  return s;
}

function setFlags(slot: Uint8Array, set: number, clear: number): void {
  const v = new DataView(slot.buffer, slot.byteOffset, 12);
  v.setUint16(6, (v.getUint16(6, true) | set) & ~clear & 0xffff, true);
}

function extraSlot(e: ExtraSpec, chained: boolean, x: Ctx): Uint8Array {
  const s = new Uint8Array(12);
  s.set(e.bytes, 2);
  s[0] = e.type;
  s[1] = chained ? 1 : 0;
  if (e.type === 1) {
    new DataView(s.buffer).setUint16(2, e.gsoSize, true);
    s[4] = e.gsoType;
  } else if (e.type === 2 || e.type === 3) {
    s.set(macOf(e.mac, x, e.bytes), 2);
  }
  return s;
}

/** An invalid type (0 or >= XEN_NETIF_EXTRA_TYPE_MAX), a GSO size of 0, a bad GSO type, or MORE flipped. */
function spoilExtra(s: Uint8Array, how: 'type' | 'gsoSize' | 'gsoType' | 'more', v: number): void {
  if (how === 'type') s[0] = v < 5 ? 0 : v;
  else if (how === 'gsoSize') s.set([0, 0], 2);
  else if (how === 'gsoType') s[4] = v === 1 || v === 2 ? 0 : v;
  else s[1] = s[1]! ^ 1;
}

/** b pings c again and again while a session runs (polled by `settle`): each ping must come back whole. */
class Pinger {
  private ping: Ping | undefined;
  /** The output of pings that lost a reply. */
  readonly lost: string[] = [];
  finished = 0;

  constructor(private readonly from: NetGuest, private readonly to: NetGuest) {}

  poll(): void {
    if (this.ping?.done) {
      if (this.ping.result().received !== 2) this.lost.push(this.ping.lines.join(' | '));
      this.finished++;
      this.ping = undefined;
    }
    this.ping ??= new Ping(this.from.stack, { dst: this.to.ip, count: 2, intervalMs: 5, timeoutMs: 2000 });
    this.ping.poll();
  }

  /** Let the ping in flight (or a first one) finish, then stop. */
  async stop(x: Ctx): Promise<void> {
    const want = Math.max(1, this.finished + (this.ping === undefined ? 0 : 1));
    await until(x.env, () => (this.poll(), this.finished >= want));
    this.dispose();
  }

  dispose(): void {
    this.ping?.dispose();
    this.ping = undefined;
  }
}

/** One ping of b's to c, which must come back whole. */
async function pingOnce(x: Ctx, what: string): Promise<void> {
  const p = (x.pinger = new Pinger(x.b, x.c));
  await settle(x, () => p.finished > 0, () => what);
  p.dispose();
  x.pinger = undefined;
  assert.deepEqual(p.lost, [], what);
}

/** Poll until `cond` (the pinger polled, stacks ticked), else fail naming `what`. */
async function settle(x: Ctx, cond: () => boolean, what: () => string, timeoutMs = 3000): Promise<void> {
  const ok = await until(x.env, () => {
    x.pinger?.poll();
    return cond();
  }, timeoutMs);
  assert.ok(ok, `timed out (${timeoutMs} ms): ${what()}`);
}

function fatalOf(x: Ctx): string | undefined {
  return x.h.back.stats().fatal;
}

/** The vif was disabled: off the bridge at once, then Closing with the error node (xenbus_dev_fatal). */
async function checkFatal(x: Ctx, s: HostileSession): Promise<void> {
  await settle(x, () => fatalOf(x) !== undefined, () => 'a fatal error');
  const reason = fatalOf(x)!;
  x.log.push(`fatal: ${reason}`);
  const kind = reason.replace(/^queue \d+: /, '').replace(/[\d, ]+/g, ' ').trim().split(' ').slice(0, 3).join(' ');
  seen.fatal[kind] = (seen.fatal[kind] ?? 0) + 1;
  assert.doesNotMatch(reason, /internal error/, 'a netback exception, not a protocol verdict');
  assert.equal(x.env.bridge.port(x.h.back.name), undefined, 'a disabled vif leaves the bridge');
  await waitBackState(x.env, s.backPath, ['5'], 'Closing after a fatal error');
  const node = `${errorPath(s.backPath, 0)}/error`;
  assert.match(await x.env.dom0.readString(node), /^71 fatal error; disabling device: /);
  await x.env.dom0.rm(errorPath(s.backPath, 0));
}

/** Read and check the rx responses of queue `q` (see the file comment). */
function checkRx(x: Ctx, s: HostileSession, q: RawQueue): void {
  const taken = s.takeRxResponses(q);
  for (let i = 0; i < taken.length; ) {
    const parts: Uint8Array[] = [];
    let intact = true;
    let slots = 0;
    for (let first = true; ; first = false) {
      const t = taken[i++];
      assert.ok(t !== undefined, 'an rx packet cut short by rsp_prod');
      const v = t.raw;
      const [id, offset, flags, status] = [v.getUint16(0, true), v.getUint16(2, true), v.getUint16(4, true), v.getInt16(6, true)];
      seen.rxSlots++;
      assert.equal(id, t.req.id, 'an rx response carries the id of the request in its slot');
      assert.equal(flags & ~0xf, 0, `rx flags ${flags}`);
      assert.ok(++slots <= 18 + 2, 'an rx packet of more slots than a frame needs');
      if (status < 0) {
        assert.equal(status, RSP_ERROR);
        seen.rxErrors++;
        intact = false;
      } else {
        assert.ok(status > 0 && offset + status <= 4096, `rx status ${status} at offset ${offset}`);
        assert.ok(t.req.buf >= 0, `netback claims ${status} bytes copied into ref ${t.req.gref}, not a writable buffer granted to it`);
        if (t.req.dup) intact = false;
        else parts.push(s.rxBufs.bytes[t.req.buf]!.slice(offset, offset + status));
      }
      if (first && (flags & 8) !== 0) {
        for (let more = true; more; ) {
          const e = taken[i++];
          assert.ok(e !== undefined, 'an rx extra cut short');
          const type = e.raw.getUint8(0);
          seen.rxExtras++;
          assert.ok(type === 1 || type === 4, `rx extra type ${type}`);
          more = (e.raw.getUint8(1) & 1) !== 0;
        }
      } else assert.ok(first || (flags & 8) === 0, 'extra_info on a follow-on rx slot');
      if ((flags & 4) === 0) break;
    }
    if (!intact) continue;
    const frame = Buffer.concat(parts);
    assert.ok(!hasMarker(frame), 'the marker reached the hostile guest');
    assert.ok(x.legit.has(frame), `an rx frame (${frame.length} bytes) b and c never sent`);
    seen.rxFrames++;
  }
  s.releaseRx(q, taken);
}

/** Post rx requests (never more than the ring's free slots). */
function postRx(x: Ctx, s: HostileSession, q: RawQueue, w: SlotWriter, count: number, ref: RefPick | 'auto', id: number | 'seq'): void {
  const n = Math.min(count, s.rxFree(q));
  for (let k = 0; k < n; k++) {
    let gref: number;
    if (ref === 'auto') {
      // A buffer with no request outstanding, while there is one (else a duplicate, flagged).
      const free = s.rxBufOwner.indexOf(undefined);
      gref = s.rxBufs.refs[free >= 0 ? free : (q.rxProd + k) % s.rxBufs.refs.length]!;
    }
    else if (ref.kind === 'page') gref = [s.rxRo.refs, s.txData.refs][ref.page % 2]![ref.page % 4]!; // read-only grants
    else gref = w.ref(ref).gref;
    s.rxPost(q, w.nextId(id), gref);
  }
  s.publishRx(q);
}

/** Frames b sends to the hostile guest (and, flooded, to c). */
function sendFromB(x: Ctx, s: HostileSession, r: RoundSpec): void {
  const f = s.features;
  for (const m of r.fromB) {
    const dst = m.dst === 'hostile' ? x.macs.self : m.dst === 'bcast' ? new Uint8Array(6).fill(0xff) : Uint8Array.from([1, 0, 0x5e, 0, 0, 1]);
    // A GSO super-frame only where it arrives as sent (no software segmentation or checksum fill).
    if (m.gso && m.dst === 'hostile' && f.sg && f.gsoV4 && !f.noCsum) {
      x.b.front.transmit(tcpV4(dst, x.macs.b, 1448 * (2 + (m.seed % 10)), m.seed), { csumBlank: false, dataValidated: false, gso: { type: 'tcpv4', size: 1448 } });
    } else {
      // IPv4 TCP half the time: what the hostile guest's hash steering (if on) hashes.
      const f = m.seed % 2 === 0 ? tcpV4(dst, x.macs.b, m.len - 54, m.seed) : makeFrame(m.len, dst, x.macs.b, 0x88b5, m.seed);
      x.b.front.transmit(f, { csumBlank: false, dataValidated: false });
    }
  }
}

/** What netback's control ring must answer, where it is fixed whatever came before. */
function checkCtrl(sent: readonly CtrlSpec[], got: readonly { id: number; type: number; status: number; data: number }[]): void {
  assert.equal(got.length, sent.length, 'one control response per request');
  got.forEach((r, i) => {
    const q = sent[i]!;
    assert.equal(r.id, q.id);
    assert.equal(r.type, q.type);
    assert.ok(r.status <= 3, `control status ${r.status}`);
    if (q.type === 0 || q.type > 7) assert.equal(r.status, 1, 'unknown and gref-mapping requests are NOT_SUPPORTED');
    if (q.type === 4) assert.deepEqual([r.status, r.data], [0, BACK_LIMITS.maxHashMapping]);
    if (q.status !== undefined) assert.equal(r.status, q.status, `control request ${i} (type ${q.type})`);
  });
}

/** SET_HASH_ALGORITHM(Toeplitz), FLAGS, KEY and MAPPING_SIZE, MAPPING from the control pages. */
function hashRequests(s: HostileSession, h: HashOn): CtrlSpec[] {
  const [keyPage, mapPage] = [s.ctrlData.bytes[0]!, s.ctrlData.bytes[1]!];
  const [keyRef, mapRef] = [s.ctrlData.refs[0]!, s.ctrlData.refs[1]!];
  keyPage.fill(0);
  keyPage.set(h.key);
  const map = new DataView(mapPage.buffer, mapPage.byteOffset, 4096);
  for (let i = 0; i < h.mapping; i++) map.setUint32(4 * i, i % s.queues.length, true);
  const reqs: CtrlSpec[] = [
    { id: 1, type: 7, data: [1, 0, 0], ref: undefined, status: 0 },
    { id: 2, type: 2, data: [h.flags, 0, 0], ref: undefined, status: 0 },
    { id: 3, type: 3, data: [keyRef, h.key.length, 0], ref: undefined, status: 0 },
    { id: 4, type: 5, data: [h.mapping, 0, 0], ref: undefined, status: 0 },
    { id: 5, type: 6, data: [mapRef, h.mapping, 0], ref: undefined, status: 0 },
  ];
  for (const r of reqs) s.ctrlPut(r.id, r.type, r.data);
  return reqs;
}

/** One round; returns false once the vif is disabled. */
async function round(x: Ctx, s: HostileSession, w: SlotWriter, r: RoundSpec, mcast: Set<string>): Promise<boolean> {
  const q = s.queues[r.queue % s.queues.length]!;
  for (const qq of s.queues) checkRx(x, s, qq);
  for (const p of r.rxPosts) postRx(x, s, q, w, p.count, p.ref, p.id);
  if (r.rxPosts.length > 0) s.notify(q.rxEvt);
  // tx: whole packets while the ring has room for them.
  const slots: Uint8Array[] = [];
  for (const p of r.packets) {
    const ps = w.packet(p);
    if (slots.length + ps.length > s.txFree(q)) break;
    slots.push(...ps);
  }
  s.txPut(q, slots);
  const snapshot = new Map(s.txData.refs.map((ref, i) => [ref as number, s.txData.bytes[i]!.slice()]));
  const exp = expectTx(slots, (ref) => snapshot.get(ref), mcast, BACK_LIMITS);
  x.log.push(`round q${q === s.queues[0] ? 0 : 1}: ${slots.length} slots, ${exp.responses.length} answers, ${exp.forwarded.length} forwarded${exp.fatal ? `, fatal (${exp.fatal})` : ''}`);
  for (const f of exp.forwarded) noteForwarded(x, f);
  const drops0 = { ...x.h.back.counters.txDropReasons };
  s.publishTx(q);
  s.notify(q.txEvt);
  for (let i = 0; i < r.storm; i++) {
    s.notify(q.txEvt);
    if (r.stormSpread && i % 16 === 0) await new Promise((res) => setImmediate(res));
  }
  s.notify(q.rxEvt, r.rxStorm);
  sendFromB(x, s, r);
  if (r.mcastToggle !== undefined) void x.h.client.write(`${s.frontPath}/request-multicast-control`, r.mcastToggle ? '1' : '0').catch(() => undefined);
  const ctrlSent: CtrlSpec[] = [];
  if (s.ctrl !== undefined) {
    for (const c of r.ctrl.slice(0, s.ctrlFree())) {
      const d: [number, number, number] = [c.data[0], c.data[1], c.data[2]];
      if (c.ref !== undefined) d[0] = w.ref(c.ref).gref;
      s.ctrlPut(c.id, c.type, d);
      ctrlSent.push({ ...c, data: d });
    }
  }
  if (s.ctrl !== undefined && r.hash !== undefined && s.ctrlFree() >= 5) ctrlSent.push(...hashRequests(s, r.hash));
  if (ctrlSent.length > 0) {
    s.publishCtrl();
    s.notify(s.ctrl!.evt);
  }
  // Wait for every answer, or for the fatal verdict the model gives.
  await settle(x, () => {
    const fatal = fatalOf(x);
    if (fatal !== undefined) return true;
    return exp.fatal === undefined && s.txResponsesWaiting(q) >= exp.responses.length && (s.ctrl === undefined || s.ctrlResponsesWaiting() >= ctrlSent.length);
  }, () => `tx answers ${s.txResponsesWaiting(q)} of ${exp.responses.length}${exp.fatal ? ` then fatal (${exp.fatal})` : ''}; ctrl ${s.ctrl ? s.ctrlResponsesWaiting() : '-'} of ${ctrlSent.length}`);
  const fatal = fatalOf(x);
  if (exp.fatal === undefined) assert.equal(fatal, undefined, `netback disabled the vif (${fatal}); the model says it must not`);
  const got = s.takeTxResponses(q);
  if (exp.fatal === undefined) assert.equal(got.length, exp.responses.length, 'one tx answer per consumed slot');
  else assert.ok(got.length <= exp.responses.length, `${got.length} tx answers, at most ${exp.responses.length} before the fatal packet`);
  seen.rounds++;
  seen.txSlots += slots.length;
  seen.forwarded += exp.forwarded.length;
  seen.ctrl += ctrlSent.length;
  if (r.hash !== undefined && s.ctrl !== undefined) seen.hashOn++;
  if (r.storm > 0) seen.storms++;
  got.forEach((g, i) => {
    const e = exp.responses[i]!;
    if (g.status === RSP_NULL) seen.null++;
    else if (g.status === RSP_ERROR) seen.error++;
    else seen.okay++;
    if (e.id === undefined) assert.equal(g.status, RSP_NULL, `slot ${i}: an extra slot is answered NULL`);
    else assert.deepEqual(g, { id: e.id, status: e.status }, `slot ${i} answered`);
  });
  const drops = Object.entries(x.h.back.counters.txDropReasons).map(([k, n]) => [k, n - (drops0[k] ?? 0)] as const).filter(([, n]) => n > 0);
  assert.deepEqual(Object.fromEntries(drops), exp.drops, 'packets refused, by reason');
  if (exp.fatal !== undefined) {
    await checkFatal(x, s);
    return false;
  }
  if (s.ctrl !== undefined) checkCtrl(ctrlSent, s.takeCtrlResponses());
  for (const qq of s.queues) checkRx(x, s, qq);
  return true;
}

/** A frame the model says netback forwards: who may, and who must (unless `must` is false), receive it. */
function noteForwarded(x: Ctx, f: Forwarded, must = true): void {
  const fr = f.frame;
  x.headers.add(Bag.key(fr.subarray(0, 12)));
  x.allowed.b.add(fr);
  x.allowed.c.add(fr);
  const src = fr.subarray(6, 12);
  if (x.lockMac && Buffer.compare(src, x.macs.self) !== 0) return; // dropped at the bridge
  if (Buffer.compare(src, x.macs.b) === 0 || Buffer.compare(src, x.macs.c) === 0) x.spoofed = true;
  const deliverable = must && !isGroupMac(fr, 6) && !isZeroMac(fr, 6) && (fr.length <= 1518 || f.gso) && !isLinkLocalMac(fr, 0);
  if (!deliverable) return;
  const dst = fr.subarray(0, 6);
  if (isGroupMac(fr, 0) || Buffer.compare(dst, x.macs.b) === 0) x.must.b.add(fr);
  if (isGroupMac(fr, 0) || Buffer.compare(dst, x.macs.c) === 0) x.must.c.add(fr);
}

/** b and c got from the hostile guest only what it forwarded, and everything addressed to them. */
async function checkNeighbours(x: Ctx): Promise<void> {
  const missing = (g: NetGuest, must: Bag): string | undefined => {
    const got = new Bag();
    for (const r of g.received) got.add(r.frame);
    for (const [k, n] of must.entries()) {
      let have = 0;
      while (have < n && got.take(Buffer.from(k, 'latin1'))) have++;
      if (have < n) return `${n - have} of a ${k.length}-byte frame for dom${g.domid}`;
    }
    return undefined;
  };
  const arrived = x.spoofed || x.loose || (await until(x.env, () => {
    x.pinger?.poll();
    return missing(x.b, x.must.b) === undefined && missing(x.c, x.must.c) === undefined;
  }));
  // What did arrive first: a wrong frame explains a missing one.
  for (const [g, allowed] of [[x.b, x.allowed.b], [x.c, x.allowed.c]] as const) {
    const left = new Bag();
    for (const [k, n] of allowed.entries()) for (let i = 0; i < n; i++) left.add(Buffer.from(k, 'latin1'));
    for (const r of g.received) {
      assert.ok(!hasMarker(r.frame), `dom${g.domid} received bytes of a page never granted to dom0`);
      if (x.legit.has(r.frame) || x.loose) continue;
      seen.delivered++;
      assert.ok(left.take(r.frame), `dom${g.domid} received a ${r.frame.length}-byte frame nobody sent (or more copies than were sent)`);
    }
  }
  // d gets segments and checksum-filled copies: each starts with addresses someone sent from.
  for (const r of x.d.received) {
    assert.ok(!hasMarker(r.frame), `dom${x.d.domid} received bytes of a page never granted to dom0`);
    assert.ok(x.loose || (r.frame.length >= 14 && x.headers.has(Bag.key(r.frame.subarray(0, 12)))), `dom${x.d.domid} received a frame with addresses nobody sent from`);
  }
  assert.ok(arrived, `frames never delivered: ${missing(x.b, x.must.b) ?? missing(x.c, x.must.c)}`);
}

async function session(x: Ctx, spec: SessionSpec): Promise<void> {
  const s = await HostileSession.open(x.env, x.h, spec.features, x.b.domid as DomId);
  const pinger = (x.pinger = new Pinger(x.b, x.c));
  seen.sessions++;
  try {
    assert.equal(await x.env.dom0.readString(`${s.backPath}/state`), '4', 'netback connected');
    x.log.push(`session ${JSON.stringify(spec.features)}`);
    const w = new SlotWriter(s, x);
    const mcast = new Set<string>();
    for (const q of s.queues) postRx(x, s, q, w, spec.initialRx, 'auto', 'seq');
    if (spec.features.sameRing) {
      // Both rings in one page: netback's rx responses land on tx requests, so what it reads
      // and forwards is anyone's guess. It must still contain it (no exception, no leak, no
      // byte of an ungranted page anywhere, the others unharmed).
      x.loose = true;
      if (!x.lockMac) x.spoofed = true;
      await end(x, s, { kind: 'abrupt', round: spec.rounds[0]!, flap: [] });
      await new Promise((r) => setTimeout(r, 5));
    }
    let alive = !spec.features.sameRing;
    for (const r of spec.rounds) if (!alive || !(alive = await round(x, s, w, r, mcast))) break;
    if (alive) {
      // What b sent in the last round has had a moment to arrive.
      await new Promise((r) => setTimeout(r, 5));
      for (const q of s.queues) checkRx(x, s, q);
      // Every slot was answered in its round: anything more now is a second answer.
      for (const q of s.queues) assert.equal(s.txResponsesWaiting(q), 0, 'tx answers nobody asked for');
      if (s.ctrl !== undefined) assert.equal(s.ctrlResponsesWaiting(), 0, 'control answers nobody asked for');
      await end(x, s, spec.end);
    }
    // With b's or c's address spoofed into the bridge, their frames may go astray: that is a
    // learning bridge without anti-spoofing (lockMac), not netback. Otherwise b keeps pinging c.
    if (x.spoofed) pinger.dispose();
    else {
      await pinger.stop(x);
      seen.pings += pinger.finished;
      assert.ok(pinger.finished > 0 && pinger.lost.length === 0, `b pinging c during the session: ${pinger.finished} pings, lost: ${pinger.lost.join(' / ')}`);
    }
    x.pinger = undefined;
    await checkNeighbours(x);
    for (const g of [x.b, x.c, x.d]) {
      assert.equal(g.front.broken, undefined, `dom${g.domid}'s netfront broke`);
      assert.equal(g.back.stats().port?.txErrors ?? 0, 0, `dom${g.domid}'s netback threw out of deliver`);
    }
    for (const p of x.env.bridge.ports()) assert.ok(p.queueLength <= 256, `${p.name} holds ${p.queueLength} frames`);
    await s.close();
    // Plus the event each of netback's bindings gets when it binds (Xen's bind_interdomain sets the port pending).
    x.notifies += s.notifies + s.queues.length * (spec.features.split ? 2 : 1);
  } catch (err) {
    pinger.dispose();
    x.pinger = undefined;
    await s.abandon();
    throw err;
  }
}

/** The session's end: a clean close, or a producer index no ring can hold (fatal). */
async function end(x: Ctx, s: HostileSession, e: EndSpec): Promise<void> {
  seen.ends[e.kind] = (seen.ends[e.kind] ?? 0) + 1;
  if (e.kind === 'close') return;
  x.log.push(`end ${e.kind}`);
  const q = s.queues[0]!;
  if (e.kind === 'txJump' || e.kind === 'txBack') {
    s.publishTx(q, e.kind === 'txJump' ? q.txProd + 257 + e.n : q.txProd - 1 - e.n);
    s.notify(q.txEvt);
    return checkFatal(x, s);
  }
  if (e.kind === 'ctrlJump') {
    if (s.ctrl === undefined) return;
    s.publishCtrl(s.ctrl.prod + 129 + e.n);
    s.notify(s.ctrl.evt);
    return checkFatal(x, s);
  }
  if (e.kind === 'abrupt') {
    // Slots, rx requests and frames in flight, then the frontend walks away: whatever
    // netback was doing, it stops, unmaps and answers nothing more (checked by close()).
    const w = new SlotWriter(s, x);
    const slots = e.round.packets.flatMap((p) => w.packet(p)).slice(0, s.txFree(q));
    s.txPut(q, slots);
    s.publishTx(q);
    for (const p of e.round.rxPosts) postRx(x, s, q, w, p.count, p.ref, p.id);
    s.notify(q.txEvt, 1 + e.round.storm);
    s.notify(q.rxEvt);
    sendFromB(x, s, e.round);
    // What netback forwards now cannot be predicted (it may be cut off at any packet): b and c
    // may get any of it, never something else.
    const snapshot = new Map(s.txData.refs.map((ref, i) => [ref as number, s.txData.bytes[i]!.slice()]));
    const exp = expectTx(slots, (ref) => snapshot.get(ref), new Set(), BACK_LIMITS);
    for (const f of exp.forwarded) noteForwarded(x, f, false);
    if (e.round.storm % 2 === 0) await new Promise((r) => setImmediate(r));
    if (e.flap.length > 0) {
      // Initialised or Connected again may reconnect netback to these rings mid-stream: what
      // it reads and forwards then is anyone's guess (loose), contained all the same.
      x.loose = true;
      if (!x.lockMac) x.spoofed = true;
      for (const st of e.flap) void x.h.client.write(`${s.frontPath}/state`, String(st)).catch(() => undefined);
    }
    s.dropChannels();
    return;
  }
  // rx: netback reads req_prod again only when the requests it knows of run out, so the jump
  // may or may not be seen now; if it is, the vif must be disabled properly.
  for (const qq of s.queues) s.publishRx(qq, e.kind === 'rxJump' ? qq.rxProd + 257 + e.n : qq.rxCons - 1 - e.n);
  s.notify(q.rxEvt);
  x.b.front.transmit(makeFrame(100, x.macs.self, x.macs.b, 0x88b5, e.n), { csumBlank: false, dataValidated: false });
  await settle(x, () => true, () => '');
  await new Promise((r) => setTimeout(r, 20));
  if (fatalOf(x) !== undefined) await checkFatal(x, s);
}

async function runCase({ lockMac, rate, sessions }: CaseSpec, escaped: unknown[]): Promise<void> {
  await withNet(async (env) => {
    const [b, c, d] = env.guests as [NetGuest, NetGuest, NetGuest];
    const h = await env.addBackendOnly({ back: { limits: HOSTILE_LIMITS, lockMac }, ...(rate === undefined ? {} : { rate }) });
    const self = parseMac(await env.dom0.readString(`${backendPath(h.dev)}/mac`));
    const x: Ctx = {
      env, b, c, d, h, macs: { b: b.front.mac, c: c.front.mac, self }, legit: new Bag(), headers: new Set(),
      allowed: { b: new Bag(), c: new Bag() }, must: { b: new Bag(), c: new Bag() }, lockMac, spoofed: false, loose: false, notifies: 0, pinger: undefined, log: [],
    };
    for (const g of [b, c, d]) {
      const send = g.front.transmit.bind(g.front);
      g.front.transmit = (f, info) => (x.legit.add(f), x.headers.add(Bag.key(f.subarray(0, 12))), send(f, info));
    }
    // Neighbours first: ARP done and both learned by the bridge before the hostile guest speaks.
    await pingOnce(x, 'b pinging c before');
    try {
      for (const [i, spec] of sessions.entries()) {
        if (i > 0) await HostileSession.reset(env, h);
        await session(x, spec);
      }
      assert.ok(h.back.counters.events <= x.notifies, `netback handled ${h.back.counters.events} events of ${x.notifies} sent`);
      await pingOnce(x, 'b pinging c afterwards');
      assert.deepEqual(escaped, [], 'nothing thrown into the event loop');
      seen.gsoSegmented += env.bridge.counters.gsoSegmented;
      seen.gsoRefused += env.bridge.counters.gsoRefused;
      seen.csumFilled += env.bridge.counters.csumFilled;
    } catch (err) {
      if (process.env.XENPV_FUZZ_VERBOSE) console.error(x.log.join('\n'));
      throw err;
    }
  }, [{}, {}, { front: { features: { gso: false, sg: false, csumOffload: false, queues: 2 } } }]);
}

test('hostile frontend fuzz: random tx chains, rx requests, control requests, producer jumps and event storms are answered, bounded and contained', async () => {
  const escaped: unknown[] = [];
  const onEscape = (err: unknown): void => void escaped.push(err);
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  let runs = 0;
  const t0 = performance.now();
  try {
    await fc.assert(
      fc.asyncProperty(caseSpec, async (spec) => {
        if (++runs % 1000 === 0 && RUNS > 50) console.error(`hostile fuzz: ${runs} cases (shrinking included), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        escaped.length = 0;
        await runCase(spec, escaped);
      }),
      { numRuns: RUNS, includeErrorInReport: true, ...(SEED === undefined ? {} : { seed: SEED }), ...(PATH === undefined ? {} : { path: PATH }) },
    );
  } finally {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
    if (RUNS > 50 || process.env.XENPV_FUZZ_VERBOSE) {
      console.error(`hostile fuzz: ${runs} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${JSON.stringify(seen)}`);
    }
  }
});
