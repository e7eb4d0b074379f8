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
import { parseHeader } from './header.js';
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
  const cs = h.clusterSize;
  const refs = new Map<number, number>();
  const corruptions: string[] = [];
  const note = (msg: string): void => {
    if (corruptions.length < MAX_REPORTED) corruptions.push(msg);
  };
  const ref = (offset: number, clusters = 1): void => {
    const first = Math.floor(offset / cs);
    for (let c = first; c < first + clusters; c++) refs.set(c, (refs.get(c) ?? 0) + 1);
  };
  ref(0);
  ref(h.l1TableOffset, Math.ceil((h.l1Size * 8) / cs));
  ref(h.refcountTableOffset, h.refcountTableClusters);

  const reftable = new Uint8Array(h.refcountTableClusters * cs);
  await file.read(h.refcountTableOffset, reftable);
  const rtView = new DataView(reftable.buffer);
  const blocks = new Map<number, Uint8Array>();
  for (let i = 0; i < reftable.byteLength / 8; i++) {
    const off = Number(rtView.getBigUint64(i * 8));
    if (off === 0) continue;
    if (off % cs !== 0 || off + cs > fileSize) {
      note(`refcount table entry ${i}: bad offset ${off}`);
      continue;
    }
    ref(off);
    const block = new Uint8Array(cs);
    await file.read(off, block);
    blocks.set(i, block);
  }
  const perBlock = (cs * 8) / 2 ** h.refcountOrder;
  const refcountOf = (c: number): number => {
    const block = blocks.get(Math.floor(c / perBlock));
    return block === undefined ? 0 : readRefcountEntry(block, c % perBlock, 2 ** h.refcountOrder);
  };

  const copiedChecks: Array<[string, number, boolean]> = [];
  const l1 = new Uint8Array(h.l1Size * 8);
  await file.read(h.l1TableOffset, l1);
  const l1View = new DataView(l1.buffer);
  for (let i = 0; i < h.l1Size; i++) {
    const e = decodeL1(l1View, i);
    if (typeof e === 'string') {
      note(e);
      continue;
    }
    if (e.offset === 0) continue;
    if (e.offset % cs !== 0 || e.offset + cs > fileSize) {
      note(`L1 entry ${i}: L2 table at bad offset ${e.offset}`);
      continue;
    }
    ref(e.offset);
    copiedChecks.push([`L1 entry ${i}`, e.offset, e.copied]);
    const l2 = new Uint8Array(cs);
    await file.read(e.offset, l2);
    walkL2(new DataView(l2.buffer), i, h.clusterBits, h.version, cs, fileSize, ref, note, copiedChecks);
  }

  for (const [what, offset, copied] of copiedChecks) {
    if (copied !== (refcountOf(offset / cs) === 1)) note(`${what}: COPIED=${copied} but refcount ${refcountOf(offset / cs)}`);
  }
  let leaks = 0;
  const lastCluster = Math.max(Math.ceil(fileSize / cs), blocks.size === 0 ? 0 : Math.max(...blocks.keys()) * perBlock + perBlock);
  for (let c = 0; c < lastCluster; c++) {
    const want = refs.get(c) ?? 0;
    const have = refcountOf(c);
    if (have < want) note(`cluster ${c}: refcount ${have} < ${want} references`);
    else if (have > want) leaks++;
  }
  return { corruptions, leaks, referenced: refs.size };
}

function walkL2(
  view: DataView,
  l1Index: number,
  clusterBits: number,
  version: number,
  cs: number,
  fileSize: number,
  ref: (offset: number, clusters?: number) => void,
  note: (msg: string) => void,
  copiedChecks: Array<[string, number, boolean]>,
): void {
  for (let j = 0; j < cs / 8; j++) {
    const m = decodeL2(view, j, clusterBits, version);
    const where = `L2 entry ${l1Index}/${j}`;
    if (m.kind === 'invalid') note(`${where}: ${m.why}`);
    else if (m.kind === 'compressed') {
      for (const c of compressedClusters(m.host, m.compressedBytes, cs)) ref(c * cs);
    } else if ((m.kind === 'normal' || m.kind === 'zero') && m.host !== 0) {
      if (m.host % cs !== 0) note(`${where}: unaligned host offset ${m.host}`);
      else if (m.host >= fileSize) note(`${where}: host offset ${m.host} past the end of the file`);
      ref(m.host);
      copiedChecks.push([where, m.host, m.copied]);
    }
  }
}
