/**
 * The forwarding database of a learning bridge: source MAC → port, with ageing.
 *
 * Linux semantics (net/bridge/br_fdb.c): an entry learned from a frame's source address
 * expires once `updated + ageing_time <= now`; the default ageing time is 300 s
 * (BR_DEFAULT_AGEING_TIME = 300 * HZ), and an ageing time of 0 means entries never expire.
 * A station seen on another port moves there. The table is bounded (Linux's
 * `fdb_max_learned`): when full and nothing has expired, new addresses are not learned and
 * their frames are flooded instead, which costs bandwidth but never memory.
 */
import { macKey } from './mac.js';

export const DEFAULT_AGEING_MS = 300_000;
export const DEFAULT_FDB_MAX = 4096;

export interface FdbEntry<P> {
  readonly key: number;
  port: P;
  updated: number;
  /** The key's high 16 and low 32 bits as small integers (the low word as int32), for `sameMac`. */
  readonly hi: number;
  readonly lo: number;
}

export class Fdb<P> {
  private readonly entries = new Map<number, FdbEntry<P>>();
  /**
   * The entries `learn` and `lookup` found last (a stream learns its source and looks up its
   * destination per frame): a MAC key is above 2^31, so a Map lookup hashes a heap number in
   * the runtime each time. Forgotten whenever an entry is deleted.
   */
  private learnHit: FdbEntry<P> | undefined;
  private lookupHit: FdbEntry<P> | undefined;
  /** Addresses not learned because the table was full. */
  fullDrops = 0;
  /** Stations that moved from one port to another. */
  moves = 0;

  constructor(
    private readonly clock: () => number,
    public ageingMs: number = DEFAULT_AGEING_MS,
    readonly maxEntries: number = DEFAULT_FDB_MAX,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  private expired(e: FdbEntry<P>, now: number): boolean {
    return this.ageingMs > 0 && e.updated + this.ageingMs <= now;
  }

  /** Record that `key` was seen as a source on `port` now. */
  learn(key: number, port: P): void {
    const hit = this.learnHit;
    const e = hit !== undefined && hit.key === key ? hit : this.entries.get(key);
    if (e !== undefined) return this.seen(e, port);
    if (this.entries.size >= this.maxEntries) this.sweep();
    if (this.entries.size >= this.maxEntries) {
      this.fullDrops++;
      return;
    }
    this.entries.set(key, { key, port, updated: this.clock(), hi: Math.floor(key / 0x1_0000_0000), lo: key % 0x1_0000_0000 | 0 });
  }

  /**
   * `learn(macKey(buf, offset), port)`, without making the 48-bit key (a heap number) when the
   * address is the one learned last (a stream's source): its bytes are compared as two small
   * integers instead.
   */
  learnAt(buf: Uint8Array, offset: number, port: P): void {
    const hit = this.learnHit;
    if (hit !== undefined && sameMac(hit, buf, offset)) return this.seen(hit, port);
    this.learn(macKey(buf, offset), port);
  }

  /** A known station was seen as a source on `port` now (it moved if that is another port). */
  private seen(e: FdbEntry<P>, port: P): void {
    this.learnHit = e;
    if (e.port !== port) this.moves++;
    e.port = port;
    e.updated = this.clock();
  }

  /** `lookup(macKey(buf, offset))`, comparing bytes with the entry found last (a stream's destination) first. */
  lookupAt(buf: Uint8Array, offset: number): P | undefined {
    const hit = this.lookupHit;
    if (hit !== undefined && sameMac(hit, buf, offset)) return this.found(hit);
    return this.lookup(macKey(buf, offset));
  }

  /** The port `key` was last seen on, unless the entry has aged out (then it is removed). */
  lookup(key: number): P | undefined {
    const hit = this.lookupHit;
    const e = hit !== undefined && hit.key === key ? hit : this.entries.get(key);
    return e === undefined ? undefined : this.found(e);
  }

  /** `e`'s port, unless it has aged out (then it is removed). */
  private found(e: FdbEntry<P>): P | undefined {
    if (this.expired(e, this.clock())) {
      this.delete(e.key);
      return undefined;
    }
    this.lookupHit = e;
    return e.port;
  }

  private delete(key: number): void {
    this.entries.delete(key);
    this.learnHit = undefined;
    this.lookupHit = undefined;
  }

  /** Remove every expired entry; returns how many went. */
  sweep(): number {
    const now = this.clock();
    let n = 0;
    for (const [k, e] of this.entries) {
      if (this.expired(e, now)) {
        this.delete(k);
        n++;
      }
    }
    return n;
  }

  /** Forget every address learned on `port` (the port left the bridge). */
  flushPort(port: P): void {
    for (const [k, e] of this.entries) if (e.port === port) this.delete(k);
  }

  /** Live entries, for `brctl showmacs`-like listings. */
  list(): { key: number; port: P; ageMs: number }[] {
    const now = this.clock();
    const out: { key: number; port: P; ageMs: number }[] = [];
    for (const e of this.entries.values()) {
      if (!this.expired(e, now)) out.push({ key: e.key, port: e.port, ageMs: now - e.updated });
    }
    return out;
  }
}

/** The 6 bytes at `offset` are the entry's address (its hi/lo words). */
function sameMac(e: { readonly hi: number; readonly lo: number }, buf: Uint8Array, offset: number): boolean {
  const lo = (buf[offset + 2]! << 24) | (buf[offset + 3]! << 16) | (buf[offset + 4]! << 8) | buf[offset + 5]!;
  return lo === e.lo && ((buf[offset]! << 8) | buf[offset + 1]!) === e.hi;
}
