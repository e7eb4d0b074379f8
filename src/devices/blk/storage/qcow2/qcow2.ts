/**
 * qcow2 images (versions 2 and 3) as a BlockStorage.
 *
 * What is supported: read and write of images made by `qemu-img create/convert`, any
 * cluster size 512 B..2 MiB, refcount widths 1..64 bits, zero clusters (read; written by
 * discard on v3), compressed clusters (read: zlib raw deflate; a write copies the cluster out
 * to a new uncompressed one), backing files (read through, copied up on partial-cluster
 * writes; opened read-only by the caller's `openBacking`).
 * What is refused, with EBADIMG at open: encryption, external data files, extended L2,
 * zstd compression, the corrupt bit, unknown incompatible bits, malformed tables. Opened
 * read-only only: the dirty bit (lazy refcounts left inconsistent: repair with
 * `qemu-img check -r all`) and internal snapshots (writing would need L2 copy-on-write).
 * Online resize grows only (the L1 table moves when it must); shrinking is refused.
 *
 * Durability: with the 'writeback' cache mode over a file with a volatile cache, the store
 * advertises flush: a write resolves once its data and the metadata that finds it (a new
 * cluster's refcount and L2 entry) are in the file, written in dependency order with barriers
 * between (image.ts `sync`), and `flush()` makes all of it durable. Metadata is not held back
 * in this process until a flush, as QEMU holds it: a backend process that dies while the guest
 * lives would take acknowledged writes with it (the guest's replay covers only what was not
 * acknowledged). Allocating writes that overlap share one such sync (group commit). In
 * 'writethrough' mode (or over a file without a cache) every write resolves only after its
 * metadata is durable, and no flush is advertised.
 *
 * Concurrency: reads and writes into clusters that are already allocated share a lock;
 * anything that changes metadata (allocation, discard, flush) holds it exclusively.
 */
import type { ImageFile } from '../image-file.js';
import { CheckedStorage } from '../checked.js';
import { type BlockStorage, type StorageCapabilities, SECTOR_SIZE, checkWritable, storageError } from '../types.js';
import { ClusterIo } from './cluster-io.js';
import { INCOMPAT } from './header.js';
import { Qcow2Image } from './image.js';
import { RwLock } from './lock.js';

export type Qcow2CacheMode = 'writeback' | 'writethrough';

export interface Qcow2Options {
  readonly readOnly?: boolean;
  readonly cache?: Qcow2CacheMode;
  /** Open the backing file named in the header (read-only). Without it, images with a backing file are refused. */
  readonly openBacking?: (name: string, format: string | undefined) => Promise<BlockStorage>;
}

export class Qcow2Storage extends CheckedStorage {
  readonly readOnly: boolean;
  readonly logicalBlockSize = SECTOR_SIZE;
  readonly physicalBlockSize: number;
  readonly capabilities: StorageCapabilities;
  readonly description: string;
  private readonly lock = new RwLock();
  private readonly io: ClusterIo;
  private closed = false;
  /** Metadata changes made (mutate), and how many of them `sync` has put in the file. */
  private changed = 0;
  private synced = 0;
  private syncRun: Promise<void> | undefined;

  private constructor(
    private readonly image: Qcow2Image,
    private readonly backing: BlockStorage | undefined,
    readOnly: boolean,
    cache: Qcow2CacheMode,
  ) {
    super();
    const h = image.header;
    this.readOnly = readOnly;
    this.physicalBlockSize = Math.min(h.clusterSize, 4096);
    this.description = `qcow2:${image.file.name}`;
    // Zero clusters exist only in v3; a v2 image with a backing file can only fall back to it.
    const discardZeroes = h.version === 3 || backing === undefined;
    this.capabilities = {
      flush: cache === 'writeback' && image.file.hasVolatileCache && !readOnly,
      resize: !readOnly,
      discard: { supported: !readOnly, granularity: h.clusterSize, alignment: 0, discardZeroes, secureDiscard: false },
    };
    this.io = new ClusterIo(image, backing, discardZeroes);
  }

  static async open(file: ImageFile, options: Qcow2Options = {}): Promise<Qcow2Storage> {
    const image = await Qcow2Image.open(file);
    const h = image.header;
    const readOnly = (options.readOnly ?? false) || file.readOnly;
    const dirty = ((h.incompatible >> BigInt(INCOMPAT.dirty)) & 1n) === 1n;
    if (!readOnly && dirty) {
      throw storageError('EBADIMG', `qcow2: ${file.name} has the dirty bit set (lazy refcounts); run \`qemu-img check -r all\` or open read-only`);
    }
    if (!readOnly && h.nbSnapshots > 0) {
      throw storageError('EBADIMG', `qcow2: ${file.name} has internal snapshots; only read-only access is supported`);
    }
    let backing: BlockStorage | undefined;
    if (h.backingFile !== undefined) {
      if (options.openBacking === undefined) {
        throw storageError('EBADIMG', `qcow2: ${file.name} has a backing file (${h.backingFile}) and no way to open it was given`);
      }
      backing = await options.openBacking(h.backingFile, h.backingFormat);
    }
    try {
      if (!readOnly) await image.clearAutoclear();
    } catch (err) {
      await backing?.close();
      throw err;
    }
    return new Qcow2Storage(image, backing, readOnly, options.cache ?? 'writeback');
  }

  get sectorCount(): number {
    return Math.floor(this.image.size / SECTOR_SIZE);
  }

  protected async doRead(sectorOffset: number, dest: Uint8Array): Promise<void> {
    await this.lock.withShared(() => this.io.read(sectorOffset * SECTOR_SIZE, dest));
  }

  protected async doWrite(sectorOffset: number, src: Uint8Array): Promise<void> {
    const offset = sectorOffset * SECTOR_SIZE;
    const done = await this.lock.withShared(() => this.io.writeInPlace(offset, src));
    if (!done) await this.mutate(() => this.io.writeAllocating(offset, src));
    else if (!this.capabilities.flush) await this.image.barrier();
  }

  protected async doFlush(): Promise<void> {
    if (this.readOnly) return;
    await this.lock.withExclusive(async () => {
      await this.image.sync();
      await this.image.barrier();
    });
  }

  protected async doDiscard(sector: number, count: number): Promise<void> {
    await this.mutate(() => this.io.discard(sector * SECTOR_SIZE, count * SECTOR_SIZE));
  }

  /** Grow online (shrinking would drop guest data: refused). Durable when it resolves. */
  async resize(newSectors: number): Promise<void> {
    checkWritable('resize', this.readOnly, this.description);
    if (!Number.isSafeInteger(newSectors) || newSectors < this.sectorCount) {
      throw storageError('ERANGE', `${this.description}: resize to ${newSectors} sectors refused (grow only, from ${this.sectorCount})`);
    }
    await this.lock.withExclusive(async () => {
      await this.image.grow(newSectors * SECTOR_SIZE);
      await this.image.sync();
      await this.image.barrier();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (!this.readOnly) await this.flush();
    } finally {
      await this.image.file.close();
      await this.backing?.close();
    }
  }

  /**
   * Run a metadata-changing operation under the exclusive lock, then persist as the cache mode
   * requires: writethrough, durable before it resolves; writeback, in the file before it
   * resolves (commit).
   */
  private async mutate(fn: () => Promise<void>): Promise<void> {
    if (!this.capabilities.flush) {
      return this.lock.withExclusive(async () => {
        await fn();
        await this.image.sync();
        await this.image.barrier();
      });
    }
    const seq = await this.lock.withExclusive(async () => {
      await fn();
      return ++this.changed;
    });
    await this.commit(seq);
  }

  /**
   * Until the metadata of change `seq` is in the file: one `sync` (under the exclusive lock)
   * covers every change made before it took the lock, so the changes that waited meanwhile
   * share the next one.
   */
  private async commit(seq: number): Promise<void> {
    while (this.synced < seq) {
      this.syncRun ??= this.lock
        .withExclusive(async () => {
          const upTo = this.changed;
          await this.image.sync();
          this.synced = Math.max(this.synced, upTo);
        })
        .finally(() => {
          this.syncRun = undefined;
        });
      await this.syncRun;
    }
  }
}
