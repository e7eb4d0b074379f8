/**
 * A cache of one-cluster metadata tables (L2 tables, refcount blocks) keyed by host offset.
 * Dirty tables stay until the owner writes them back in its flush order; clean ones are
 * evicted oldest-first past a byte budget, so a huge image never pins all its metadata.
 */
import type { ImageFile } from '../image-file.js';

interface Entry {
  readonly data: Uint8Array;
  dirty: boolean;
}

export class MetaCache {
  private readonly entries = new Map<number, Entry>();
  private readonly loading = new Map<number, Promise<Uint8Array>>();

  constructor(
    private readonly file: ImageFile,
    private readonly clusterSize: number,
    private readonly budgetBytes: number,
  ) {}

  /** The table at `offset`, loaded from the file on a miss. The caller validated `offset`. */
  async get(offset: number): Promise<Uint8Array> {
    const hit = this.entries.get(offset);
    if (hit !== undefined) {
      // Re-insert to keep Map order as recency order.
      this.entries.delete(offset);
      this.entries.set(offset, hit);
      return hit.data;
    }
    const pending = this.loading.get(offset);
    if (pending !== undefined) return pending;
    const load = this.load(offset);
    this.loading.set(offset, load);
    try {
      return await load;
    } finally {
      this.loading.delete(offset);
    }
  }

  has(offset: number): boolean {
    return this.entries.has(offset);
  }

  /** Install a brand-new table (a freshly allocated cluster), dirty. */
  create(offset: number): Uint8Array {
    const data = new Uint8Array(this.clusterSize);
    this.entries.set(offset, { data, dirty: true });
    return data;
  }

  /** Mark `data` (from `get`/`create`) changed; re-adds it if it was evicted meanwhile. */
  markDirty(offset: number, data: Uint8Array): void {
    const e = this.entries.get(offset);
    if (e !== undefined && e.data === data) e.dirty = true;
    else this.entries.set(offset, { data, dirty: true });
  }

  /** Forget a table whose cluster was freed. */
  drop(offset: number): void {
    this.entries.delete(offset);
  }

  get dirtyCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.dirty) n++;
    return n;
  }

  /** Write every dirty table (in offset order) and mark it clean. The caller flushes after. */
  async writeBack(): Promise<number> {
    const dirty = [...this.entries].filter(([, e]) => e.dirty).sort(([a], [b]) => a - b);
    for (const [offset, e] of dirty) {
      await this.file.write(offset, e.data);
      e.dirty = false;
    }
    this.evict();
    return dirty.length;
  }

  private async load(offset: number): Promise<Uint8Array> {
    const data = new Uint8Array(this.clusterSize);
    await this.file.read(offset, data);
    const raced = this.entries.get(offset);
    if (raced !== undefined) return raced.data;
    this.entries.set(offset, { data, dirty: false });
    this.evict();
    return data;
  }

  private evict(): void {
    let over = this.entries.size * this.clusterSize - this.budgetBytes;
    for (const [offset, e] of this.entries) {
      if (over <= 0) break;
      if (e.dirty) continue;
      this.entries.delete(offset);
      over -= this.clusterSize;
    }
  }
}
