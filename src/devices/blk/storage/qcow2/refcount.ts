/**
 * Reference counts and cluster allocation (qcow2.txt "Host cluster management").
 *
 *   refcount_block_entries = cluster_size * 8 / refcount_bits
 *   table index = cluster / entries; block index = cluster % entries
 *   "If [a table entry] is 0, the corresponding refcount block has not yet been allocated.
 *    All refcounts managed by this refcount block are 0."
 *
 * Crash safety comes from the owner's flush order (qcow2.ts): refcount increments are made
 * durable before anything points at the new cluster, and decrements (`free`) are only queued
 * here and applied after the pointers that were removed are durable. A queued cluster keeps
 * its count, so it cannot be reused before then. A crash can therefore leak clusters
 * (refcount > references: harmless, `qemu-img check` reports leaks) but never leave a
 * reference to a cluster whose count is zero.
 */
import type { ImageFile } from '../image-file.js';
import { storageError } from '../types.js';
import { MAX_REFTABLE_BYTES } from './header.js';
import { MetaCache } from './meta-cache.js';

export interface RefcountLayout {
  readonly clusterSize: number;
  readonly refcountOrder: number;
  readonly tableOffset: number;
  readonly tableClusters: number;
}

export class Refcounts {
  readonly cache: MetaCache;
  private readonly bits: number;
  private readonly perBlock: number;
  private readonly maxValue: number;
  private table: Uint8Array;
  private tableView: DataView;
  private readonly dirtyTableSectors = new Set<number>();
  private reserved = new Set<number>();
  private hint = 0;
  /** End of the highest cluster given a refcount here: tables up to it may not be on disk yet. */
  private allocEnd = 0;
  private queuedFrees: number[] = [];
  /** Set when the table moved: the whole table, then the header, must be written. */
  tableMoved = false;
  tableOffset: number;
  tableClusters: number;

  private constructor(
    private readonly file: ImageFile,
    private readonly clusterSize: number,
    order: number,
    layout: RefcountLayout,
    table: Uint8Array,
    private fileSize: () => number,
  ) {
    this.bits = 2 ** order;
    this.perBlock = (clusterSize * 8) / this.bits;
    this.maxValue = this.bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** this.bits - 1;
    this.table = table;
    this.tableView = new DataView(table.buffer);
    this.tableOffset = layout.tableOffset;
    this.tableClusters = layout.tableClusters;
    this.cache = new MetaCache(file, clusterSize, 16 * 1024 * 1024);
  }

  static async load(file: ImageFile, layout: RefcountLayout, fileSize: () => number): Promise<Refcounts> {
    const table = new Uint8Array(layout.tableClusters * layout.clusterSize);
    await file.read(layout.tableOffset, table);
    return new Refcounts(file, layout.clusterSize, layout.refcountOrder, layout, table, fileSize);
  }

  async get(cluster: number): Promise<number> {
    const block = await this.block(cluster, false);
    return block === undefined ? 0 : readEntry(block.data, cluster % this.perBlock, this.bits);
  }

  /** Allocate `n` contiguous free clusters with refcount 1; returns the first cluster index. */
  async allocate(n: number): Promise<number> {
    const first = await this.findFree(n);
    for (let i = 0; i < n; i++) this.reserved.add(first + i);
    try {
      for (let i = 0; i < n; i++) await this.set(first + i, 1);
    } finally {
      for (let i = 0; i < n; i++) this.reserved.delete(first + i);
    }
    // Single clusters come from the first free one at or after the hint, so everything
    // before them is in use; a multi-cluster run may have skipped shorter free gaps.
    if (n === 1) this.hint = first + 1;
    return first;
  }

  /** Queue one reference drop; applied by `applyFrees` once the dropped pointers are durable. */
  free(cluster: number): void {
    this.queuedFrees.push(cluster);
  }

  get pendingFrees(): number {
    return this.queuedFrees.length;
  }

  /** Apply queued drops in memory (the caller then writes blocks and flushes). Returns clusters now free. */
  async applyFrees(): Promise<number[]> {
    const frees = this.queuedFrees;
    this.queuedFrees = [];
    const freed: number[] = [];
    for (const c of frees) {
      const v = await this.get(c);
      if (v === 0) throw storageError('EIO', `qcow2: refcount underflow on cluster ${c}`, { cluster: c });
      await this.set(c, v - 1);
      if (v === 1) {
        freed.push(c);
        this.hint = Math.min(this.hint, c);
      }
    }
    return freed;
  }

  /** End of the file once everything allocated so far is written. */
  get allocatedEnd(): number {
    return Math.max(this.fileSize(), this.allocEnd);
  }

  get dirty(): boolean {
    return this.cache.dirtyCount > 0 || this.dirtyTableSectors.size > 0 || this.tableMoved;
  }

  /** Write dirty refcount blocks and table entries (not the header). */
  async writeBack(): Promise<void> {
    await this.cache.writeBack();
    if (this.tableMoved) {
      await this.file.write(this.tableOffset, this.table);
    } else {
      for (const s of [...this.dirtyTableSectors].sort((a, b) => a - b)) {
        await this.file.write(this.tableOffset + s * 512, this.table.subarray(s * 512, s * 512 + 512));
      }
    }
    this.dirtyTableSectors.clear();
  }

  private async set(cluster: number, value: number): Promise<void> {
    if (value > this.maxValue) throw storageError('EIO', `qcow2: refcount overflow on cluster ${cluster}`);
    const block = await this.block(cluster, true);
    if (block === undefined) throw storageError('EIO', 'qcow2: refcount block missing after allocation');
    writeEntry(block.data, cluster % this.perBlock, this.bits, value);
    this.cache.markDirty(block.offset, block.data);
    if (value > 0) this.allocEnd = Math.max(this.allocEnd, (cluster + 1) * this.clusterSize);
  }

  /** The refcount block covering `cluster`; with `create`, allocate it (and grow the table) if missing. */
  private async block(cluster: number, create: boolean): Promise<{ offset: number; data: Uint8Array } | undefined> {
    const index = Math.floor(cluster / this.perBlock);
    if (index >= this.table.byteLength / 8) {
      if (!create) return undefined;
      await this.growTable(index);
    }
    const entry = this.tableView.getBigUint64(index * 8);
    if (entry === 0n) {
      if (!create) return undefined;
      return this.newBlock(index);
    }
    const offset = Number(entry);
    // "Bit 0 - 8: Reserved (set to 0)"; blocks are clusters inside the file.
    const end = Math.max(this.fileSize(), this.allocEnd);
    if (entry % BigInt(this.clusterSize) !== 0n || offset + this.clusterSize > end || offset === 0) {
      throw storageError('EIO', `qcow2: refcount table entry ${index} points to a bad offset ${entry}`, { index });
    }
    return { offset, data: await this.cache.get(offset) };
  }

  private async newBlock(index: number): Promise<{ offset: number; data: Uint8Array }> {
    const at = await this.findFree(1);
    const offset = at * this.clusterSize;
    const data = this.cache.create(offset);
    this.setTableEntry(index, offset);
    this.allocEnd = Math.max(this.allocEnd, offset + this.clusterSize);
    this.reserved.add(at);
    try {
      // The block may describe itself; if not, this recurses once into another block.
      await this.set(at, 1);
    } finally {
      this.reserved.delete(at);
    }
    return { offset, data };
  }

  private setTableEntry(index: number, offset: number): void {
    this.tableView.setBigUint64(index * 8, BigInt(offset));
    this.dirtyTableSectors.add(Math.floor((index * 8) / 512));
  }

  /** Move the table to a bigger run of free clusters; the old one is freed after the header is durable. */
  private async growTable(neededIndex: number): Promise<void> {
    let entries = Math.max(neededIndex + 1, (this.table.byteLength / 8) * 2);
    for (;;) {
      const clusters = Math.ceil((entries * 8) / this.clusterSize);
      if (clusters * this.clusterSize > MAX_REFTABLE_BYTES) {
        throw storageError('ENOSPC', `qcow2: refcount table would exceed ${MAX_REFTABLE_BYTES} bytes`);
      }
      const at = await this.findFree(clusters);
      // The new table must also cover its own clusters and the blocks describing them.
      const covers = Math.floor((at + clusters + 2) / this.perBlock) + 1;
      if (covers > (clusters * this.clusterSize) / 8) {
        entries = covers * 2;
        continue;
      }
      const next = new Uint8Array(clusters * this.clusterSize);
      next.set(this.table);
      const oldFirst = this.tableOffset / this.clusterSize;
      const oldClusters = this.tableClusters;
      this.table = next;
      this.tableView = new DataView(next.buffer);
      this.tableOffset = at * this.clusterSize;
      this.tableClusters = clusters;
      this.tableMoved = true;
      for (let i = 0; i < clusters; i++) this.reserved.add(at + i);
      try {
        for (let i = 0; i < clusters; i++) await this.set(at + i, 1);
      } finally {
        for (let i = 0; i < clusters; i++) this.reserved.delete(at + i);
      }
      for (let i = 0; i < oldClusters; i++) this.free(oldFirst + i);
      return;
    }
  }

  /** First run of `n` clusters from the hint with refcount 0 and not reserved. */
  private async findFree(n: number): Promise<number> {
    let c = Math.max(this.hint, 1);
    outer: for (;;) {
      for (let i = 0; i < n; i++) {
        if (this.reserved.has(c + i) || (await this.get(c + i)) !== 0) {
          c = c + i + 1;
          continue outer;
        }
      }
      return c;
    }
  }
}

function readEntry(block: Uint8Array, index: number, bits: number): number {
  if (bits < 8) {
    const perByte = 8 / bits;
    // "If refcount_bits implies a sub-byte width, note that bit 0 means the least significant bit".
    return ((block[Math.floor(index / perByte)] as number) >> ((index % perByte) * bits)) & ((1 << bits) - 1);
  }
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (bits === 8) return block[index] as number;
  if (bits === 16) return view.getUint16(index * 2);
  if (bits === 32) return view.getUint32(index * 4);
  const v = view.getBigUint64(index * 8);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function writeEntry(block: Uint8Array, index: number, bits: number, value: number): void {
  if (bits < 8) {
    const perByte = 8 / bits;
    const at = Math.floor(index / perByte);
    const shift = (index % perByte) * bits;
    const mask = ((1 << bits) - 1) << shift;
    block[at] = ((block[at] as number) & ~mask) | (value << shift);
    return;
  }
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (bits === 8) block[index] = value;
  else if (bits === 16) view.setUint16(index * 2, value);
  else if (bits === 32) view.setUint32(index * 4, value);
  else view.setBigUint64(index * 8, BigInt(value));
}

export { readEntry as readRefcountEntry };
