/**
 * Netback's tx slot-chain reading, sans-IO: a scenario table (slots in, verdict out) for every
 * rule Linux netback applies, including the limits at their exact edges (XSA-432: test fixes
 * at the protocol's extremes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NETTXF_csum_blank,
  NETTXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_GSO_TYPE_TCPV4,
} from '../../abi/io/netif.js';
import type { NetifExtraInfo, NetifTxRequest } from '../../abi/io/netif-codec.js';
import type { TxSlot } from './protocol.js';
import { parseTxPacket, type TxSlotSource } from './tx-parse.js';

const LIMITS = { maxSlots: 18, fatalSlots: 20 };
const NONE: NetifExtraInfo = { kind: 'unknown', type: 0, flags: 0, raw: new Uint8Array(6) };

function req(r: Partial<NetifTxRequest>): TxSlot {
  return { req: { gref: 8, offset: 0, flags: 0, id: 0, size: 0, ...r }, extra: () => NONE };
}

function extra(e: NetifExtraInfo): TxSlot {
  return { req: { gref: 0, offset: 0, flags: 0, id: 0xdead, size: 0 }, extra: () => e };
}

function source(slots: TxSlot[]): TxSlotSource & { taken: number } {
  const s = {
    taken: 0,
    available: () => slots.length - s.taken,
    take: () => slots[s.taken++]!,
  };
  return s;
}

function run(first: TxSlot, rest: TxSlot[]) {
  const src = source(rest);
  return { v: parseTxPacket(first, src, LIMITS), taken: src.taken };
}

/** A packet of `n` data slots: first carries the total; follow-ons of `frag` bytes. */
function chain(n: number, frag = 100, firstLen = 100): { first: TxSlot; rest: TxSlot[] } {
  const rest = Array.from({ length: n - 1 }, (_, i) =>
    req({ id: i + 1, gref: 10 + i, size: frag, flags: i < n - 2 ? NETTXF_more_data : 0 }),
  );
  return { first: req({ id: 0, size: firstLen + frag * (n - 1), flags: n > 1 ? NETTXF_more_data : 0 }), rest };
}

test('a single-slot packet: one fragment, flags carried, one answer', () => {
  const { v, taken } = run(req({ id: 7, gref: 9, offset: 100, size: 60, flags: NETTXF_csum_blank | NETTXF_data_validated }), []);
  assert.equal(taken, 0);
  assert.equal(v.kind, 'packet');
  if (v.kind !== 'packet') return;
  assert.deepEqual(v.frags, [{ gref: 9, offset: 100, len: 60 }]);
  assert.equal(v.size, 60);
  assert.equal(v.csumBlank, true);
  assert.equal(v.dataValidated, true);
  assert.deepEqual(v.answers, [{ kind: 'data', id: 7 }]);
});

test('multi-slot: the first fragment is the total minus the others; zero-length follow-ons are skipped (XSA-448)', () => {
  const rest = [req({ id: 1, gref: 11, size: 0, flags: NETTXF_more_data }), req({ id: 2, gref: 12, size: 500 })];
  const { v, taken } = run(req({ id: 0, gref: 10, size: 1500, flags: NETTXF_more_data }), rest);
  assert.equal(taken, 2);
  assert.equal(v.kind, 'packet');
  if (v.kind !== 'packet') return;
  assert.deepEqual(v.frags, [{ gref: 10, offset: 0, len: 1000 }, { gref: 12, offset: 0, len: 500 }]);
  assert.deepEqual(v.answers.map((a) => (a.kind === 'data' ? a.id : -1)), [0, 1, 2]);
});

test('slot-count edges: 1 + 18 follow-ons pass, 1 + 19 drop with errors, a 21st follow-on is fatal', () => {
  const ok = chain(19);
  assert.equal(run(ok.first, ok.rest).v.kind, 'packet');
  const dropped = chain(20);
  const d = run(dropped.first, dropped.rest);
  assert.equal(d.v.kind, 'drop');
  assert.equal(d.taken, 19, 'every slot of the dropped packet is consumed');
  if (d.v.kind === 'drop') assert.equal(d.v.answers.length, 20);
  const fatal = chain(22);
  assert.equal(run(fatal.first, fatal.rest).v.kind, 'fatal');
});

test('a chain running past the published requests is fatal', () => {
  const { first, rest } = chain(4);
  assert.deepEqual(run(first, rest.slice(0, 2)).v.kind, 'fatal');
});

test('a fragment larger than the total leaves is dropped (buggy frontends), not fatal', () => {
  const { v } = run(req({ size: 100, flags: NETTXF_more_data }), [req({ id: 1, size: 200 })]);
  assert.equal(v.kind, 'drop');
});

test('a first fragment shorter than an Ethernet header is dropped with errors', () => {
  const a = run(req({ size: 13 }), []);
  assert.equal(a.v.kind, 'drop');
  const b = run(req({ size: 114, flags: NETTXF_more_data }), [req({ id: 1, size: 104 })]);
  assert.equal(b.v.kind, 'drop', 'first fragment = 114 - 104 = 10 bytes');
});

test('fragments crossing their page are fatal (Linux: "Cross page boundary")', () => {
  assert.equal(run(req({ offset: 4000, size: 100 }), []).v.kind, 'fatal');
  assert.equal(run(req({ size: 200, flags: NETTXF_more_data }), [req({ id: 1, offset: 4090, size: 10 })]).v.kind, 'fatal');
  assert.equal(run(req({ offset: 4096 - 60, size: 60 }), []).v.kind, 'packet', 'ending exactly at the page end is fine');
});

test('extra info: GSO is attached, slots answered NULL; missing, invalid type, size 0 and bad GSO type are fatal', () => {
  const gso: NetifExtraInfo = { kind: 'gso', flags: 0, size: 1448, type: XEN_NETIF_GSO_TYPE_TCPV4, features: 0 };
  const { v } = run(req({ size: 3000, flags: NETTXF_extra_info }), [extra(gso)]);
  assert.equal(v.kind, 'packet');
  if (v.kind === 'packet') {
    assert.deepEqual(v.gso, { type: 'tcpv4', size: 1448 });
    assert.deepEqual(v.answers, [{ kind: 'data', id: 0 }, { kind: 'extra' }]);
  }
  assert.equal(run(req({ size: 100, flags: NETTXF_extra_info }), []).v.kind, 'fatal', 'missing extra');
  assert.equal(run(req({ size: 100, flags: NETTXF_extra_info }), [extra(NONE)]).v.kind, 'fatal', 'type NONE');
  assert.equal(run(req({ size: 100, flags: NETTXF_extra_info }), [extra({ ...gso, size: 0 })]).v.kind, 'fatal');
  assert.equal(run(req({ size: 100, flags: NETTXF_extra_info }), [extra({ ...gso, type: 7 })]).v.kind, 'fatal');
});

test('a chained extra (FLAG_MORE) then data; and a multicast add is a dummy transmit', () => {
  const gso: NetifExtraInfo = { kind: 'gso', flags: XEN_NETIF_EXTRA_FLAG_MORE, size: 1000, type: XEN_NETIF_GSO_TYPE_TCPV4, features: 0 };
  const hash: NetifExtraInfo = { kind: 'hash', flags: 0, type: 1, algorithm: 1, value: 0x1234 };
  const { v, taken } = run(req({ size: 300, flags: NETTXF_extra_info | NETTXF_more_data }), [extra(gso), extra(hash), req({ id: 5, size: 100 })]);
  assert.equal(taken, 3);
  assert.equal(v.kind, 'packet');
  if (v.kind === 'packet') {
    assert.deepEqual(v.hash, { type: 1, value: 0x1234 });
    assert.deepEqual(v.frags.map((f) => f.len), [200, 100]);
  }
  const addr = Uint8Array.of(0x01, 0, 0x5e, 0, 0, 1);
  const m = run(req({ size: 0, flags: NETTXF_extra_info }), [extra({ kind: 'mcast_add', flags: 0, addr })]);
  assert.equal(m.v.kind, 'mcast');
  if (m.v.kind === 'mcast') assert.deepEqual([m.v.op, [...m.v.addr]], ['add', [...addr]]);
});

test('property: any slot sequence — no throw, never more than published, one answer per slot consumed', async () => {
  const fc = await import('fast-check');
  const slotArb = fc.record({
    gref: fc.nat(20), offset: fc.oneof(fc.constant(0), fc.nat(4200)), flags: fc.nat(15), id: fc.nat(0xffff),
    size: fc.oneof(fc.nat(60), fc.nat(0xffff)), etype: fc.nat(6), eflags: fc.nat(1),
  });
  fc.assert(
    fc.property(fc.array(slotArb, { minLength: 1, maxLength: 40 }), (raw) => {
      const slots: TxSlot[] = raw.map((r) => ({
        req: { gref: r.gref, offset: r.offset, flags: r.flags, id: r.id, size: r.size },
        extra: () =>
          r.etype === 1
            ? { kind: 'gso', flags: r.eflags, size: r.size & 0xfff, type: r.gref % 3, features: 0 }
            : r.etype === 2 || r.etype === 3
              ? { kind: r.etype === 2 ? 'mcast_add' : 'mcast_del', flags: r.eflags, addr: new Uint8Array(6) }
              : r.etype === 4
                ? { kind: 'hash', flags: r.eflags, type: 0, algorithm: 1, value: r.id }
                : { kind: 'unknown', type: r.etype, flags: r.eflags, raw: new Uint8Array(6) },
      }));
      const src = source(slots.slice(1));
      const v = parseTxPacket(slots[0]!, src, LIMITS);
      assert.ok(src.taken <= slots.length - 1);
      if (v.kind === 'fatal') return;
      assert.equal(v.answers.length, src.taken + 1, 'every consumed slot is answered exactly once');
      if (v.kind === 'packet') {
        assert.equal(v.frags.reduce((n, f) => n + f.len, 0), v.size, 'fragments add up to the total');
        for (const f of v.frags) assert.ok(f.offset + f.len <= 4096 && f.len >= 0);
        assert.ok(v.frags[0]!.len >= 14);
      }
    }),
    { numRuns: 2000 },
  );
});
