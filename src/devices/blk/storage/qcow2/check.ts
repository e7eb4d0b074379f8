/**
 * A consistency check of a qcow2 image, the core of what `qemu-img check` does: count every
 * reference to every host cluster (header, L1 table, refcount table and blocks, L2 tables,
 * data and compressed clusters), compare with the stored refcounts, and check COPIED flags.
 *
 * - corruption: a cluster referenced more often than its refcount says (it could be handed
 *   out again and overwritten), a COPIED flag that disagrees with a refcount of one, or a
 *   table entry that does not decode;
 * - leak: a refcount above the references (space lost, data safe).
 * Used by tests and the crash harness where running qemu-img per case would be too slow.
 * Images with internal snapshots are not walked (their tables are not counted) and refused.
 */
import type { ImageFile } from '../image-file.js';
import { storageError } from '../types.js';
import { compressedClusters, decodeL1, decodeL2 } from './entries.js';
import { type Qcow2Header, parseHeader } from './header.js';
import { readRefcountEntry } from './refcount.js';

export interface CheckResult {
  readonly corruptions: string[];
  readonly leaks: number;
  /** Clusters referenced by the image (metadata and data). */
  readonly referenced: number;
}

const MAX_REPORTED = 20;

export async function checkQcow2(file: ImageFile): Promise<CheckResult> {
  const fileSize = await file.size();
  const first = new Uint8Array(512);
  await file.read(0, first);
  const bits = new DataView(first.buffer).getUint32(20);
  const headBytes = new Uint8Array(bits >= 9 && bits <= 21 ? 2 ** bits : 512);
  await file.read(0, headBytes);
  const h = parseHeader(headBytes, fileSize);
  if (h.nbSnapshots > 0) throw storageError('EINVAL', 'checkQcow2: images with snapshots are not supported');
  const walker = new Walker(file, h, fileSize);
  walker.ref(0);
  walker.ref(h.l1TableOffset, Math.ceil((h.l1Size * 8) / h.clusterSize));
  walker.ref(h.refcountTableOffset, h.refcountTableClusters);
  await walker.loadRefcounts();
  await walker.walkL1();
  return walker.compare();
}

class Walker {
  private readonly cs: number;
  private readonly refs = new Map<number, number>();
  private readonly corruptions: string[] = [];
  private readonly blocks = new Map<number, Uint8Array>();
  private readonly copiedChecks: Array<[string, number, boolean]> = [];
  private readonly perBlock: number;

  constructor(
    private readonly file: ImageFile,
    private readonly h: Qcow2Header,
    private readonly fileSize: number,
  ) {
    this.cs = h.clusterSize;
    this.perBlock = (this.cs * 8) / 2 ** h.refcountOrder;
  }

  note(msg: string): void {
    if (this.corruptions.length < MAX_REPORTED) this.corruptions.push(msg);
  }

  ref(offset: number, clusters = 1): void {
    const first = Math.floor(offset / this.cs);
    for (let c = first; c < first + clusters; c++) this.refs.set(c, (this.refs.get(c) ?? 0) + 1);
  }

  async loadRefcounts(): Promise<void> {
    const reftable = new Uint8Array(this.h.refcountTableClusters * this.cs);
    await this.file.read(this.h.refcountTableOffset, reftable);
    const view = new DataView(reftable.buffer);
    for (let i = 0; i < reftable.byteLength / 8; i++) {
      const off = Number(view.getBigUint64(i * 8));
      if (off === 0) continue;
      if (off % this.cs !== 0 || off + this.cs > this.fileSize) {
        this.note(`refcount table entry ${i}: bad offset ${off}`);
        continue;
      }
      this.ref(off);
      const block = new Uint8Array(this.cs);
      await this.file.read(off, block);
      this.blocks.set(i, block);
    }
  }

  async walkL1(): Promise<void> {
    const l1 = new Uint8Array(this.h.l1Size * 8);
    await this.file.read(this.h.l1TableOffset, l1);
    const view = new DataView(l1.buffer);
    for (let i = 0; i < this.h.l1Size; i++) {
      const e = decodeL1(view, i);
      if (typeof e === 'string') {
        this.note(e);
        continue;
      }
      if (e.offset === 0) continue;
      if (e.offset % this.cs !== 0 || e.offset + this.cs > this.fileSize) {
        this.note(`L1 entry ${i}: L2 table at bad offset ${e.offset}`);
        continue;
      }
      this.ref(e.offset);
      this.copiedChecks.push([`L1 entry ${i}`, e.offset, e.copied]);
      const l2 = new Uint8Array(this.cs);
      await this.file.read(e.offset, l2);
      this.walkL2(new DataView(l2.buffer), i);
    }
  }

  private walkL2(view: DataView, l1Index: number): void {
    for (let j = 0; j < this.cs / 8; j++) {
      const m = decodeL2(view, j, this.h.clusterBits, this.h.version);
      const where = `L2 entry ${l1Index}/${j}`;
      if (m.kind === 'invalid') this.note(`${where}: ${m.why}`);
      else if (m.kind === 'compressed') {
        for (const c of compressedClusters(m.host, m.compressedBytes, this.cs)) this.ref(c * this.cs);
      } else if ((m.kind === 'normal' || m.kind === 'zero') && m.host !== 0) {
        if (m.host % this.cs !== 0) this.note(`${where}: unaligned host offset ${m.host}`);
        else if (m.host >= this.fileSize) this.note(`${where}: host offset ${m.host} past the end of the file`);
        this.ref(m.host);
        this.copiedChecks.push([where, m.host, m.copied]);
      }
    }
  }

  private refcountOf(c: number): number {
    const block = this.blocks.get(Math.floor(c / this.perBlock));
    return block === undefined ? 0 : readRefcountEntry(block, c % this.perBlock, 2 ** this.h.refcountOrder);
  }

  compare(): CheckResult {
    for (const [what, offset, copied] of this.copiedChecks) {
      const rc = this.refcountOf(offset / this.cs);
      if (copied !== (rc === 1)) this.note(`${what}: COPIED=${copied} but refcount ${rc}`);
    }
    let leaks = 0;
    const lastBlock = this.blocks.size === 0 ? -1 : Math.max(...this.blocks.keys());
    const lastCluster = Math.max(Math.ceil(this.fileSize / this.cs), (lastBlock + 1) * this.perBlock);
    for (let c = 0; c < lastCluster; c++) {
      const want = this.refs.get(c) ?? 0;
      const have = this.refcountOf(c);
      if (have < want) this.note(`cluster ${c}: refcount ${have} < ${want} references`);
      else if (have > want) leaks++;
    }
    return { corruptions: this.corruptions, leaks, referenced: this.refs.size };
  }
}
