/**
 * ARP for IPv4 over Ethernet (RFC 826): the 28-byte packet and a bounded neighbour table.
 *
 * Table policy (a simplified Linux neighbour cache): an entry is confirmed by a reply or
 * by a packet that RFC 826 lets us learn from. A confirmed entry older than `reachableMs`
 * is still used while it is re-probed; `maxProbes` unanswered requests `retransMs` apart
 * remove it. An unresolved address holds at most `pendingPerEntry` packets, dropping the
 * oldest (Linux's unres_qlen); the table holds at most `maxEntries` addresses.
 */
import { ETHERTYPE_IPV4, isGroupMac } from '../../devices/net/bridge/mac.js';
import { readIpv4, writeIpv4, type Ipv4 } from './addr.js';

export const ARP_LEN = 28;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
const HTYPE_ETHERNET = 1;

export interface ArpPacket {
  readonly op: number;
  readonly senderMac: Uint8Array;
  readonly senderIp: Ipv4;
  readonly targetMac: Uint8Array;
  readonly targetIp: Ipv4;
}

/**
 * Decode an ARP packet at `buf[off..end)`. RFC 826: "?Do I have the hardware type in
 * ar$hrd? ... ?Do I speak the protocol in ar$pro?" — anything but Ethernet/IPv4 with
 * 6/4-byte addresses, or an opcode other than request/reply, is not for us.
 */
export function parseArp(buf: Uint8Array, off: number, end: number): ArpPacket | undefined {
  if (end - off < ARP_LEN) return undefined;
  const htype = (buf[off]! << 8) | buf[off + 1]!;
  const ptype = (buf[off + 2]! << 8) | buf[off + 3]!;
  const op = (buf[off + 6]! << 8) | buf[off + 7]!;
  if (htype !== HTYPE_ETHERNET || ptype !== ETHERTYPE_IPV4 || buf[off + 4] !== 6 || buf[off + 5] !== 4) return undefined;
  if (op !== ARP_REQUEST && op !== ARP_REPLY) return undefined;
  return {
    op,
    senderMac: buf.slice(off + 8, off + 14),
    senderIp: readIpv4(buf, off + 14),
    targetMac: buf.slice(off + 18, off + 24),
    targetIp: readIpv4(buf, off + 24),
  };
}

export function writeArp(buf: Uint8Array, off: number, p: ArpPacket): void {
  buf[off] = 0;
  buf[off + 1] = HTYPE_ETHERNET;
  buf[off + 2] = ETHERTYPE_IPV4 >> 8;
  buf[off + 3] = ETHERTYPE_IPV4 & 0xff;
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  buf[off + 6] = 0;
  buf[off + 7] = p.op;
  buf.set(p.senderMac, off + 8);
  writeIpv4(buf, off + 14, p.senderIp);
  buf.set(p.targetMac, off + 18);
  writeIpv4(buf, off + 24, p.targetIp);
}

export interface ArpLimits {
  readonly maxEntries: number;
  /** Linux base_reachable_time: 30 s. */
  readonly reachableMs: number;
  /** Linux retrans_time: 1 s. */
  readonly retransMs: number;
  /** Linux mcast_solicit: 3. */
  readonly maxProbes: number;
  readonly pendingPerEntry: number;
}

export const DEFAULT_ARP_LIMITS: ArpLimits = Object.freeze({
  maxEntries: 256, reachableMs: 30_000, retransMs: 1_000, maxProbes: 3, pendingPerEntry: 3,
});

interface Entry<P> {
  mac: Uint8Array | undefined;
  confirmed: number;
  probes: number;
  nextProbe: number | undefined;
  pending: P[];
}

/** What the table asks the stack to do: send a request, flush or drop queued packets. */
export interface ArpActions<P> {
  request(ip: Ipv4): void;
  flush(ip: Ipv4, mac: Uint8Array, packets: P[]): void;
  drop(ip: Ipv4, count: number): void;
}

export type ResolveResult = { readonly mac: Uint8Array } | { readonly queued: boolean };

export class ArpTable<P> {
  private readonly entries = new Map<Ipv4, Entry<P>>();
  /**
   * The entry `lookup` found last, and its address: a stream sends every datagram to one
   * neighbour, so that is one comparison instead of a Map lookup each. Cleared whenever an
   * entry leaves the table (`remove`).
   */
  private lastIp: Ipv4 | undefined;
  private lastEntry: Entry<P> | undefined;
  /** Packets dropped because a pending queue was full, or the table was full. */
  queueDrops = 0;
  tableFull = 0;
  failures = 0;

  constructor(
    private readonly clock: () => number,
    private readonly actions: ArpActions<P>,
    readonly limits: ArpLimits = DEFAULT_ARP_LIMITS,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** A confirmed MAC, or undefined. A stale entry is returned and re-probed. */
  lookup(ip: Ipv4): Uint8Array | undefined {
    let e = this.lastEntry;
    if (ip !== this.lastIp || e === undefined) {
      e = this.entries.get(ip);
      if (e === undefined) return undefined;
      this.lastIp = ip;
      this.lastEntry = e;
    }
    if (e.mac === undefined) return undefined;
    const now = this.clock();
    if (now - e.confirmed >= this.limits.reachableMs && e.nextProbe === undefined) this.probe(ip, e, now);
    return e.mac;
  }

  /** The MAC for `ip`, or queue `packet` until it resolves. */
  resolve(ip: Ipv4, packet: P): ResolveResult {
    const mac = this.lookup(ip);
    if (mac !== undefined) return { mac };
    let e = this.entries.get(ip);
    if (e === undefined) {
      if (!this.makeRoom()) {
        this.tableFull++;
        return { queued: false };
      }
      // Queue before asking: the answer may arrive synchronously, inside probe().
      e = { mac: undefined, confirmed: 0, probes: 0, nextProbe: undefined, pending: [packet] };
      this.entries.set(ip, e);
      this.probe(ip, e, this.clock());
      return { queued: true };
    }
    if (e.pending.length >= this.limits.pendingPerEntry) {
      e.pending.shift();
      this.queueDrops++;
    }
    e.pending.push(packet);
    return { queued: true };
  }

  /**
   * RFC 826 reception: update an existing entry for `ip` (the merge), or create one when
   * `create` (we are the target). Flushes packets waiting for it. Returns whether it merged.
   */
  update(ip: Ipv4, mac: Uint8Array, create: boolean): boolean {
    if (isGroupMac(mac)) return false;
    let e = this.entries.get(ip);
    const merged = e !== undefined;
    if (e === undefined) {
      if (!create || !this.makeRoom()) return false;
      e = { mac: undefined, confirmed: 0, probes: 0, nextProbe: undefined, pending: [] };
      this.entries.set(ip, e);
    }
    e.mac = mac.slice();
    e.confirmed = this.clock();
    e.probes = 0;
    e.nextProbe = undefined;
    if (e.pending.length > 0) {
      const packets = e.pending;
      e.pending = [];
      this.actions.flush(ip, e.mac, packets);
    }
    return merged;
  }

  private remove(ip: Ipv4): void {
    this.entries.delete(ip);
    if (ip === this.lastIp) this.lastEntry = this.lastIp = undefined;
  }

  /** Retransmit due requests and remove addresses that did not answer. */
  tick(): void {
    const now = this.clock();
    for (const [ip, e] of this.entries) {
      if (e.nextProbe === undefined || now < e.nextProbe) continue;
      if (e.probes >= this.limits.maxProbes) {
        this.remove(ip);
        this.failures++;
        if (e.pending.length > 0) this.actions.drop(ip, e.pending.length);
      } else {
        this.probe(ip, e, now);
      }
    }
  }

  /** The earliest time `tick` has work, or undefined. */
  nextTimer(): number | undefined {
    let t: number | undefined;
    for (const e of this.entries.values()) if (e.nextProbe !== undefined && (t === undefined || e.nextProbe < t)) t = e.nextProbe;
    return t;
  }

  list(): { ip: Ipv4; mac: Uint8Array | undefined; ageMs: number }[] {
    const now = this.clock();
    return [...this.entries].map(([ip, e]) => ({ ip, mac: e.mac, ageMs: e.mac === undefined ? 0 : now - e.confirmed }));
  }

  private probe(ip: Ipv4, e: Entry<P>, now: number): void {
    e.probes++;
    e.nextProbe = now + this.limits.retransMs;
    this.actions.request(ip);
  }

  /** Evict the least recently confirmed resolved entry if the table is full. */
  private makeRoom(): boolean {
    if (this.entries.size < this.limits.maxEntries) return true;
    let victim: Ipv4 | undefined;
    let oldest = Infinity;
    for (const [ip, e] of this.entries) {
      if (e.mac !== undefined && e.pending.length === 0 && e.confirmed < oldest) {
        oldest = e.confirmed;
        victim = ip;
      }
    }
    if (victim === undefined) return false;
    this.remove(victim);
    return true;
  }
}
