/**
 * How blkback reaches a request's data pages: one batch map per request (GNTTABOP_map_grant_ref
 * over all its refs), or — once both ends said `feature-persistent = 1` — a bounded per-queue
 * cache of grants mapped once and kept across requests.
 *
 * blkif.h, feature-persistent: "the backend can keep the grants used by the frontend driver
 * mapped, so the same set of grants should be used in all transactions ... If a backend
 * driver wants to limit the maximum number of persistently mapped grants ... a LRU strategy
 * should be used". The cache is a Map in least-recently-used order; an entry used by an
 * in-flight request is never evicted. When the cache is full of busy entries, the request's
 * remaining refs are mapped for that request only ("fall back to non persistent mode").
 * Only idle entries sit in the LRU list, so finding a victim is O(1): with QD32 × 256
 * indirect segments against a 1024-entry cache, a scan past busy entries for every segment
 * cost more than the I/O itself (3 ms per 1 MiB request).
 *
 * Persistent grants are mapped writable (the frontend grants them read-write: "allowing the
 * backend to map them with write access"). A frontend that grants one read-only gets that ref
 * mapped per request instead; a ref it never granted fails the whole request (GNTST_*).
 */
import { errorCode, type DomId, type GrantRef } from '../../base/index.js';
import type { GrantMapping, GrantOps } from '../../hv/platform.js';

export interface MappedPages {
  /** One 4 KiB view per requested ref, in order. */
  readonly pages: readonly Uint8Array[];
  /**
   * Where every page lies, when all of them are views of one buffer (`buffer`): page i is
   * bytes `offsets[i]`.. of it. Pages next to each other there can be moved as one view
   * (back-sync.ts). Undefined when not known cheaply (per-request mappings).
   */
  readonly buffer?: ArrayBufferLike | undefined;
  readonly offsets?: ArrayLike<number> | undefined;
  release(): void;
}

interface CacheEntry {
  readonly ref: number;
  readonly mapping: GrantMapping;
  /** The mapped page (the mapping's only page), its buffer and its offset there (read once: the getters are runtime calls). */
  readonly page: Uint8Array;
  readonly buffer: ArrayBufferLike;
  readonly offset: number;
  busy: number;
  /** Neighbours in the idle list while busy = 0 (an intrusive list: no allocation per use). */
  prev: CacheEntry | undefined;
  next: CacheEntry | undefined;
}

export class SegmentMapper {
  private readonly cache: RefTable<CacheEntry>;
  /** The idle (busy = 0) entries of `cache`, least recently used at the head: the eviction order. */
  private idleHead: CacheEntry | undefined;
  private idleTail: CacheEntry | undefined;
  /** Counters for `block-list` and tests. */
  readonly stats = { persistentHits: 0, persistentMaps: 0, transientMaps: 0, evictions: 0 };

  constructor(
    private readonly grants: GrantOps,
    private readonly domid: DomId,
    private readonly persistent: boolean,
    private readonly maxPersistent: number,
  ) {
    // Only a persistent mapper caches: the others never fill the table, so no direct array for them.
    this.cache = new RefTable<CacheEntry>(persistent ? DIRECT_REFS : 0);
  }

  get persistentCount(): number {
    return this.cache.size;
  }

  /**
   * Map `refs` (writable when the backend writes into them, i.e. for a READ). Throws the
   * platform's XenpvError (code GNTST_*) when any ref cannot be mapped; nothing stays mapped then.
   */
  acquire(refs: readonly number[], writable: boolean): MappedPages {
    return this.acquireRefs(refs, refs.length, writable);
  }

  /** `acquire` for the refs of a request's segments. */
  acquireSegments(segments: readonly { readonly gref: number }[], writable: boolean): MappedPages {
    return this.acquireRefs(
      segments.map((s) => s.gref),
      segments.length,
      writable,
    );
  }

  /**
   * `acquire` for the first `n` of `refs`. `reuse`: a MappedPages this mapper gave before and
   * that was released since, refilled instead of making a new one (a request slot's, on the
   * hot path); it is used only if it is such a one.
   */
  acquireRefs(refs: ArrayLike<number>, n: number, writable: boolean, reuse?: MappedPages): MappedPages {
    if (!this.persistent) {
      const list = new Array<GrantRef>(n);
      for (let i = 0; i < n; i++) list[i] = refs[i]! as GrantRef;
      const m = this.grants.map(this.domid, list, writable);
      this.stats.transientMaps++;
      return { pages: m.pages, release: () => m.dispose() };
    }
    const hold = reuse instanceof PersistentHold && reuse.reusableBy(this) ? reuse.refill(n) : new PersistentHold(this, n);
    try {
      let transient: number[] | undefined;
      for (let i = 0; i < n; i++) {
        const e = this.lookup(refs[i]!);
        if (e === undefined) (transient ??= []).push(i);
        else hold.keep(i, e);
      }
      if (transient !== undefined) this.mapTransient(hold, transient.map((i) => refs[i]! as GrantRef), transient, writable);
      hold.settle(n);
      return hold;
    } catch (err) {
      hold.release();
      throw err;
    }
  }

  /** Map the refs the cache could not take for this request only ("fall back to non persistent mode"). */
  private mapTransient(hold: PersistentHold, refs: GrantRef[], at: readonly number[], writable: boolean): void {
    const m = this.grants.map(this.domid, refs, writable);
    hold.transient = m;
    this.stats.transientMaps++;
    at.forEach((i, k) => (hold.pages[i] = m.pages[k]!));
  }

  /** A request takes a cached entry: it leaves the idle list while anyone holds it. */
  take(e: CacheEntry): void {
    if (e.busy++ === 0) this.unlinkIdle(e);
  }

  /** A request let go of an entry: once no request holds it, it is the most recently used idle one. */
  unbusy(e: CacheEntry): void {
    if (--e.busy !== 0 || this.cache.get(e.ref) !== e) return;
    e.prev = this.idleTail;
    e.next = undefined;
    if (this.idleTail !== undefined) this.idleTail.next = e;
    else this.idleHead = e;
    this.idleTail = e;
  }

  private unlinkIdle(e: CacheEntry): void {
    if (e.prev !== undefined) e.prev.next = e.next;
    else if (this.idleHead === e) this.idleHead = e.next;
    if (e.next !== undefined) e.next.prev = e.prev;
    else if (this.idleTail === e) this.idleTail = e.prev;
    e.prev = e.next = undefined;
  }

  /** The cached mapping of `ref`, mapping it now if there is room; undefined = map it per request. */
  private lookup(ref: number): CacheEntry | undefined {
    const hit = this.cache.get(ref);
    if (hit !== undefined) {
      this.stats.persistentHits++;
      return hit;
    }
    if (this.cache.size >= this.maxPersistent && !this.evictOne()) return undefined;
    let mapping: GrantMapping;
    try {
      mapping = this.grants.map(this.domid, [ref as GrantRef], true);
    } catch (err) {
      // A read-only grant cannot be kept writable: use it per request (which reports a truly
      // bad ref there). Other failures are also left to the per-request map to report.
      if (errorCode(err) === undefined) throw err;
      return undefined;
    }
    const page = mapping.pages[0]!;
    const e: CacheEntry = { ref, mapping, page, buffer: page.buffer, offset: page.byteOffset, busy: 0, prev: undefined, next: undefined };
    this.cache.set(ref, e);
    this.stats.persistentMaps++;
    return e;
  }

  /** Unmap the least recently used idle entry; false when every entry is busy. */
  private evictOne(): boolean {
    const e = this.idleHead;
    if (e === undefined) return false;
    this.unlinkIdle(e);
    this.cache.delete(e.ref);
    e.mapping.dispose();
    this.stats.evictions++;
    return true;
  }

  /** Unmap every persistent grant. Call only once no request holds pages (after draining). */
  dispose(): void {
    for (const e of this.cache.values()) e.mapping.dispose();
    this.cache.clear();
    this.idleHead = this.idleTail = undefined;
  }
}

/**
 * Cache entries by grant ref: refs below DIRECT_REFS (a default guest's whole grant table,
 * 64 frames of 512) in an array, any other in a Map. A 1 MiB request looks up 256 refs, and
 * Map lookups were 11 % of blkback's CPU on 1 MiB sequential reads.
 */
const DIRECT_REFS = 32768;

class RefTable<T> {
  private readonly direct: (T | undefined)[];
  private readonly others = new Map<number, T>();
  private count = 0;

  /** Refs below `directRefs` are array-indexed (0: all in the Map). */
  constructor(private readonly directRefs: number) {
    this.direct = new Array<T | undefined>(directRefs).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  get(ref: number): T | undefined {
    return ref < this.directRefs ? this.direct[ref] : this.others.get(ref);
  }

  /** `ref` must not be present. */
  set(ref: number, value: T): void {
    if (ref < this.directRefs) this.direct[ref] = value;
    else this.others.set(ref, value);
    this.count++;
  }

  delete(ref: number): void {
    if (this.get(ref) === undefined) return;
    if (ref < this.directRefs) this.direct[ref] = undefined;
    else this.others.delete(ref);
    this.count--;
  }

  values(): T[] {
    const out: T[] = [];
    if (this.count > this.others.size) for (const v of this.direct) if (v !== undefined) out.push(v);
    for (const v of this.others.values()) out.push(v);
    return out;
  }

  clear(): void {
    if (this.count > this.others.size) this.direct.fill(undefined);
    this.others.clear();
    this.count = 0;
  }
}

/** A hold's `buffer` once its pages lie in more than one (never handed out: settle clears it). */
const MIXED = new ArrayBuffer(0);

/**
 * One request's pages in persistent mode: cached entries it holds busy, plus any per-request
 * mapping. Once released, its owner may hand it back to `acquireRefs` to be filled again.
 */
class PersistentHold implements MappedPages {
  pages: Uint8Array[];
  /** The cached entries' buffer and offsets (MappedPages), while every page is a cached one of one buffer. */
  buffer: ArrayBufferLike | undefined;
  offsets: number[];
  /** held[0..count): the cache entries this request holds busy (the array is reused, never shrunk). */
  private readonly held: CacheEntry[] = [];
  private count = 0;
  /** Between acquire and release. */
  private live = true;
  transient: GrantMapping | undefined;

  constructor(
    private readonly mapper: SegmentMapper,
    n: number,
  ) {
    this.pages = new Array<Uint8Array>(n);
    this.offsets = new Array<number>(n).fill(0);
    this.buffer = undefined;
  }

  reusableBy(mapper: SegmentMapper): boolean {
    return !this.live && this.mapper === mapper;
  }

  /** Make a released hold the pages of a new request of `n` refs. */
  refill(n: number): this {
    if (this.pages.length !== n) {
      this.pages = new Array<Uint8Array>(n);
      this.offsets = new Array<number>(n).fill(0);
    }
    this.buffer = undefined;
    this.live = true;
    return this;
  }

  keep(i: number, e: CacheEntry): void {
    this.mapper.take(e);
    this.held[this.count++] = e;
    this.pages[i] = e.page;
    this.offsets[i] = e.offset;
    this.buffer = this.count === 1 || this.buffer === e.buffer ? e.buffer : MIXED;
  }

  /** After the pages are in: `buffer` stands only if every page is a cached entry's of that buffer. */
  settle(n: number): void {
    if (this.count !== n || this.buffer === MIXED) this.buffer = undefined;
  }

  release(): void {
    this.live = false;
    const held = this.held;
    for (let i = 0; i < this.count; i++) this.mapper.unbusy(held[i]!);
    this.count = 0;
    this.transient?.dispose();
    this.transient = undefined;
  }
}
