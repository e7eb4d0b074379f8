/**
 * The hostile frontend's tx slots for the netback fuzz (hostile-fuzz.test.ts): a packet spec of
 * hostile-fuzz-cases.ts becomes its data slots (fragment bytes written into the session's tx
 * pages at the offsets the spec picks) and extra slots, with the spec's mutations applied
 * (wrong sizes, ids, refs, flags, offsets past the page, spoiled extras).
 */
import type { HostileSession } from './hostile-front.js';
import { makeFrame, putL3, TXF_EXTRA, TXF_MORE, type ExtraSpec, type MacPick, type Mutation, type OffPick, type PacketSpec, type RefPick } from './hostile-fuzz-cases.js';

/** The Ethernet addresses a spec may name: guests b and c, and the hostile guest's own. */
export interface FuzzMacs {
  readonly b: Uint8Array;
  readonly c: Uint8Array;
  readonly self: Uint8Array;
}

function macOf(p: MacPick, macs: FuzzMacs, bytes: readonly number[]): Uint8Array {
  switch (p) {
    case 'b': return macs.b;
    case 'c': return macs.c;
    case 'self': return macs.self;
    case 'bcast': return new Uint8Array(6).fill(0xff);
    case 'mcast': return Uint8Array.from([0x01, 0x00, 0x5e, bytes[3]! & 0x7f, bytes[4]!, bytes[5]!]);
    case 'linklocal': return Uint8Array.from([0x01, 0x80, 0xc2, 0, 0, bytes[5]! & 0x0f]);
    case 'zero': return new Uint8Array(6);
    case 'random': return Uint8Array.from(bytes.slice(0, 6));
  }
}

/** Resolves slot refs and writes fragment bytes into the session's tx pages. */
export class SlotWriter {
  private page = 0;
  private id = 0;
  constructor(private readonly s: HostileSession, private readonly macs: FuzzMacs) {}

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
    const frame = makeFrame(total, macOf(p.dst, this.macs, p.macBytes), macOf(p.src, this.macs, p.macBytes), p.ethertype, p.seed);
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
    const extras = p.extras.map((e, i) => extraSlot(e, i + 1 < p.extras.length, this.macs));
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

function extraSlot(e: ExtraSpec, chained: boolean, macs: FuzzMacs): Uint8Array {
  const s = new Uint8Array(12);
  s.set(e.bytes, 2);
  s[0] = e.type;
  s[1] = chained ? 1 : 0;
  if (e.type === 1) {
    new DataView(s.buffer).setUint16(2, e.gsoSize, true);
    s[4] = e.gsoType;
  } else if (e.type === 2 || e.type === 3) {
    s.set(macOf(e.mac, macs, e.bytes), 2);
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
