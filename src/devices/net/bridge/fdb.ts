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
export const DEFAULT_AGEING_MS = 300_000;
export const DEFAULT_FDB_MAX = 4096;

export interface FdbEntry<P> {
  readonly key: number;
  port: P;
  updated: number;
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
    const now = this.clock();
    const hit = this.learnHit;
    const e = hit !== undefined && hit.key === key ? hit : this.entries.get(key);
    if (e !== undefined) {
      this.learnHit = e;
      if (e.port !== port) this.moves++;
      e.port = port;
      e.updated = now;
      return;
    }
    if (this.entries.size >= this.maxEntries) this.sweep();
    if (this.entries.size >= this.maxEntries) {
      this.fullDrops++;
      return;
    }
    this.entries.set(key, { key, port, updated: now });
  }

  /** The port `key` was last seen on, unless the entry has aged out (then it is removed). */
  lookup(key: number): P | undefined {
    const hit = this.lookupHit;
    const e = hit !== undefined && hit.key === key ? hit : this.entries.get(key);
    if (e === undefined) return undefined;
    if (this.expired(e, this.clock())) {
      this.delete(key);
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
