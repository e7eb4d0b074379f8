/**
 * The metadata side of an open qcow2 image: header, L1 table, L2 tables, refcounts, and the
 * order in which changes reach the file.
 *
 * Write-back order (`sync`), each step followed by a flush of the file when it has a
 * volatile cache, so no step is persisted before the one it depends on:
 *   1. refcount blocks and refcount table entries (new clusters counted before use);
 *      if the refcount table moved, then the header's refcount_table_offset/clusters;
 *   2. L2 tables (data clusters were written before: step 1's flush covered them);
 *   3. L1 entries (pointing at L2 tables step 2 made durable);
 *   4. queued reference drops (discarded or copied-away clusters), only now that no durable
 *      pointer reaches them.
 * This is the spec's dependency order ("refcount before use", "L2 before L1 pointer"); a
 * crash at any point leaves an image whose worst defect is leaked clusters.
 */
import type { ImageFile } from '../image-file.js';
import { storageError } from '../types.js';
import { type L2Mapping, decodeL1, decodeL2, encodeL1 } from './entries.js';
import { FIELD, MAX_L1_BYTES, type Qcow2Header, parseHeader } from './header.js';
import { MetaCache } from './meta-cache.js';
import { Refcounts } from './refcount.js';

export interface L2Ref {
  readonly offset: number;
  readonly table: Uint8Array;
  readonly view: DataView;
  readonly index: number;
}

const L2_CACHE_BYTES = 32 * 1024 * 1024;

export class Qcow2Image {
  readonly l2Entries: number;
  readonly l2Cache: MetaCache;
  private l1View: DataView;
  private readonly dirtyL1Sectors = new Set<number>();
  private fileSize: number;
  /** Virtual size and L1 placement: the header's, until `grow` changes them. */
  size: number;
  private l1Offset: number;
  /** Set by `grow`: the whole L1 table, then the header, must be written. */
  private l1Moved = false;
  private sizeChanged = false;

  private constructor(
    readonly file: ImageFile,
    readonly header: Qcow2Header,
    private l1: Uint8Array,
    readonly refcounts: Refcounts,
    fileSize: number,
  ) {
    this.l2Entries = header.clusterSize / 8;
    this.l1View = new DataView(l1.buffer);
    this.l2Cache = new MetaCache(file, header.clusterSize, L2_CACHE_BYTES);
    this.fileSize = fileSize;
    this.size = header.size;
    this.l1Offset = header.l1TableOffset;
  }

  static async open(file: ImageFile): Promise<Qcow2Image> {
    const fileSize = await file.size();
    const first = new Uint8Array(512);
    await file.read(0, first);
    const clusterBits = new DataView(first.buffer).getUint32(20);
    // parseHeader validates cluster_bits; read the whole first cluster only if it is sane.
    const headerBytes = clusterBits >= 9 && clusterBits <= 21 ? new Uint8Array(2 ** clusterBits) : first;
    if (headerBytes !== first) await file.read(0, headerBytes);
    const header = parseHeader(headerBytes, fileSize);
    const l1 = new Uint8Array(header.l1Size * 8);
    await file.read(header.l1TableOffset, l1);
    const refcounts = await Refcounts.load(
      file,
      {
        clusterSize: header.clusterSize,
        refcountOrder: header.refcountOrder,
        tableOffset: header.refcountTableOffset,
        tableClusters: header.refcountTableClusters,
      },
      () => fileSize,
    );
    return new Qcow2Image(file, header, l1, refcounts, fileSize);
  }

  get clusterSize(): number {
    return this.header.clusterSize;
  }

  /** Where the file ends once everything allocated is written (tables may point up to here). */
  get end(): number {
    return Math.max(this.fileSize, this.refcounts.allocatedEnd);
  }

  get dirty(): boolean {
    return (
      this.refcounts.dirty || this.refcounts.pendingFrees > 0 || this.l2Cache.dirtyCount > 0 || this.dirtyL1Sectors.size > 0 || this.sizeChanged
    );
  }

  /**
   * Grow the virtual size to `newSize` bytes. If the L1 table is too small it moves to new
   * clusters; the header switches to it only after it is durable, the old one is freed after.
   */
  async grow(newSize: number): Promise<void> {
    const needL1 = Math.ceil(newSize / this.clusterSize / this.l2Entries);
    if (needL1 * 8 > MAX_L1_BYTES) throw storageError('ENOSPC', `qcow2: size ${newSize} needs an L1 table over ${MAX_L1_BYTES} bytes`);
    if (needL1 * 8 > this.l1.byteLength) {
      const clusters = Math.ceil((needL1 * 8) / this.clusterSize);
      const first = await this.refcounts.allocate(clusters);
      const next = new Uint8Array(needL1 * 8);
      next.set(this.l1);
      const old = { first: this.l1Offset / this.clusterSize, clusters: Math.ceil(this.l1.byteLength / this.clusterSize) };
      for (let i = 0; i < old.clusters; i++) this.refcounts.free(old.first + i);
      this.l1 = next;
      this.l1View = new DataView(next.buffer);
      this.l1Offset = first * this.clusterSize;
      this.l1Moved = true;
    }
    this.size = newSize;
    this.sizeChanged = true;
  }

  /** The mapping of guest cluster `gc`. */
  async lookup(gc: number): Promise<L2Mapping> {
    const l2 = await this.l2For(gc, false);
    if (l2 === undefined) return { kind: 'unallocated' };
    return decodeL2(l2.view, l2.index, this.header.clusterBits, this.header.version);
  }

  /**
   * The L2 table holding guest cluster `gc`. With `create`, a missing table is allocated
   * (zeroed: every entry unallocated) and the L1 entry pointed at it.
   */
  async l2For(gc: number, create: boolean): Promise<L2Ref | undefined> {
    const l1Index = Math.floor(gc / this.l2Entries);
    const index = gc % this.l2Entries;
    const entry = decodeL1(this.l1View, l1Index);
    if (typeof entry === 'string') throw storageError('EIO', `qcow2: ${entry}`, { l1Index });
    if (entry.offset === 0) {
      if (!create) return undefined;
      const offset = (await this.refcounts.allocate(1)) * this.clusterSize;
      const table = this.l2Cache.create(offset);
      encodeL1(this.l1View, l1Index, offset);
      this.dirtyL1Sectors.add(Math.floor((l1Index * 8) / 512));
      return { offset, table, view: new DataView(table.buffer), index };
    }
    this.checkTableOffset(entry.offset, `L2 table of L1 entry ${l1Index}`);
    // A shared L2 table (no COPIED flag) belongs to a snapshot; writing through it would
    // change the snapshot too. Images with snapshots are opened read-only, so this is corruption.
    if (create && !entry.copied) throw storageError('EIO', `qcow2: L2 table of L1 entry ${l1Index} is shared`, { l1Index });
    const table = await this.l2Cache.get(entry.offset);
    return { offset: entry.offset, table, view: new DataView(table.buffer, table.byteOffset, table.byteLength), index };
  }

  /** Fail a table pointer that is unaligned, past the end of the file, or on the fixed metadata. */
  checkTableOffset(offset: number, what: string): void {
    if (offset % this.clusterSize !== 0 || offset + this.clusterSize > this.end || this.onFixedMetadata(offset)) {
      throw storageError('EIO', `qcow2: ${what} at bad offset ${offset}`, { offset });
    }
  }

  /**
   * Refuse a data cluster that overlaps the image's own metadata (header, L1 table, refcount
   * table, or any L2 table or refcount block in the caches): a malformed image must not make
   * a guest write overwrite metadata.
   */
  checkDataCluster(host: number, what: string): void {
    if (host % this.clusterSize !== 0 || this.onFixedMetadata(host) || this.l2Cache.has(host) || this.refcounts.cache.has(host)) {
      throw storageError('EIO', `qcow2: ${what} maps to host offset ${host}, which is not a valid data cluster`, { host });
    }
  }

  private onFixedMetadata(host: number): boolean {
    const cs = this.clusterSize;
    const overlaps = (start: number, length: number): boolean => host < start + length && start < host + cs;
    return (
      overlaps(0, cs) ||
      overlaps(this.l1Offset, this.l1.byteLength) ||
      overlaps(this.refcounts.tableOffset, this.refcounts.tableClusters * cs)
    );
  }

  /** Mark an L2 table changed (after editing `ref.table`). */
  touchL2(ref: L2Ref): void {
    this.l2Cache.markDirty(ref.offset, ref.table);
  }

  noteWritten(end: number): void {
    this.fileSize = Math.max(this.fileSize, end);
  }

  /** Persist all metadata in dependency order (see the file comment). */
  async sync(): Promise<void> {
    if (this.refcounts.dirty) {
      await this.refcounts.writeBack();
      await this.barrier();
      if (this.refcounts.tableMoved) {
        await this.writeRefcountTablePointer();
        await this.barrier();
        this.refcounts.tableMoved = false;
      }
    }
    if (this.l2Cache.dirtyCount > 0) {
      await this.l2Cache.writeBack();
      await this.barrier();
    }
    if (this.l1Moved) {
      await this.file.write(this.l1Offset, this.l1);
      this.dirtyL1Sectors.clear();
      this.l1Moved = false;
      await this.barrier();
    } else if (this.dirtyL1Sectors.size > 0) {
      for (const s of [...this.dirtyL1Sectors].sort((a, b) => a - b)) {
        const end = Math.min(this.l1.byteLength, s * 512 + 512);
        await this.file.write(this.l1Offset + s * 512, this.l1.subarray(s * 512, end));
      }
      this.dirtyL1Sectors.clear();
      await this.barrier();
    }
    if (this.sizeChanged) {
      await this.writeSizeAndL1Pointer();
      this.sizeChanged = false;
      await this.barrier();
    }
    if (this.refcounts.pendingFrees > 0) {
      await this.refcounts.applyFrees();
      await this.refcounts.writeBack();
      await this.barrier();
    }
  }

  /** Clear autoclear feature bits we do not maintain ("may only write ... if it clears the respective bits"). */
  async clearAutoclear(): Promise<void> {
    if (this.header.autoclear === 0n) return;
    await this.file.write(FIELD.autoclearFeatures, new Uint8Array(8));
    await this.barrier();
  }

  async barrier(): Promise<void> {
    if (this.file.hasVolatileCache) await this.file.flush();
  }

  /** Bytes 24..47 (size, crypt_method, l1_size, l1_table_offset) lie in one sector: one atomic switch. */
  private async writeSizeAndL1Pointer(): Promise<void> {
    const bytes = new Uint8Array(24);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, BigInt(this.size));
    view.setUint32(8, 0);
    view.setUint32(12, this.l1.byteLength / 8);
    view.setBigUint64(16, BigInt(this.l1Offset));
    await this.file.write(24, bytes);
  }

  private async writeRefcountTablePointer(): Promise<void> {
    // Bytes 48..59 (offset u64, clusters u32) lie in one sector: the switch is atomic.
    const bytes = new Uint8Array(12);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, BigInt(this.refcounts.tableOffset));
    view.setUint32(8, this.refcounts.tableClusters);
    await this.file.write(FIELD.refcountTableOffset, bytes);
  }
}
