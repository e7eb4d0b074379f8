/**
 * L1 and L2 table entries (qcow2.txt "Cluster mapping"). Entries are big-endian u64; they are
 * read as two u32 halves so the common case needs no BigInt.
 *
 * L1 entry:  bits 9-55 L2 table offset; 56-62 reserved; 63 "refcount is exactly one".
 * L2 entry:  bit 63 COPIED (refcount exactly one), bit 62 compressed, bits 0-61 descriptor.
 *   standard descriptor: bit 0 reads-as-zero (v3), 1-8 reserved, 9-55 host offset, 56-61 reserved
 *   compressed (x = 62 - (cluster_bits - 8)): bits 0..x-1 host byte offset,
 *     bits x..61 "number of additional 512-byte sectors ... beyond the sector containing the offset"
 */
export const COPIED_HI = 0x80000000;
const COMPRESSED_HI = 0x40000000;
/** Bits 56-61 of a standard entry (reserved) in the high half. */
const RESERVED_HI_L2 = 0x3f000000;
/** Bits 56-62 of an L1 entry (reserved) in the high half. */
const RESERVED_HI_L1 = 0x7f000000;
/** Bits 1-8 (reserved) in the low half. */
const RESERVED_LO = 0x000001fe;

export type L2Mapping =
  | { kind: 'unallocated' }
  /** Reads as zero; `host` may hold a preallocated cluster (0 if none). */
  | { kind: 'zero'; host: number; copied: boolean }
  | { kind: 'normal'; host: number; copied: boolean }
  | { kind: 'compressed'; host: number; compressedBytes: number }
  | { kind: 'invalid'; why: string };

function hostOffset(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
}

/** Decode the L1 entry at `index` of `table`: the L2 table offset (0 = none), or an error text. */
export function decodeL1(view: DataView, index: number): { offset: number; copied: boolean } | string {
  const hi = view.getUint32(index * 8);
  const lo = view.getUint32(index * 8 + 4);
  if ((hi & RESERVED_HI_L1) !== 0 || (lo & 0x1ff) !== 0) return `L1 entry ${index} has reserved bits set`;
  return { offset: hostOffset(hi, lo), copied: (hi & COPIED_HI) !== 0 };
}

export function encodeL1(view: DataView, index: number, offset: number): void {
  writeEntry(view, index, offset, true, false);
}

export function decodeL2(view: DataView, index: number, clusterBits: number, version: number): L2Mapping {
  const hi = view.getUint32(index * 8);
  const lo = view.getUint32(index * 8 + 4);
  if ((hi & COMPRESSED_HI) !== 0) return decodeCompressed(view.getBigUint64(index * 8), clusterBits);
  if ((hi & RESERVED_HI_L2) !== 0 || (lo & RESERVED_LO) !== 0) return { kind: 'invalid', why: 'reserved bits set' };
  const host = hostOffset(hi, lo);
  const copied = (hi & COPIED_HI) !== 0;
  if ((lo & 1) !== 0) {
    // "With version 2 ... this is always 0."
    if (version < 3) return { kind: 'invalid', why: 'zero flag in a version 2 image' };
    return { kind: 'zero', host, copied };
  }
  if (host === 0) return copied ? { kind: 'invalid', why: 'COPIED set on an unallocated entry' } : { kind: 'unallocated' };
  return { kind: 'normal', host, copied };
}

function decodeCompressed(entry: bigint, clusterBits: number): L2Mapping {
  const x = BigInt(62 - (clusterBits - 8));
  const host = entry & ((1n << x) - 1n);
  const extraSectors = (entry >> x) & ((1n << (62n - x)) - 1n);
  // "If cluster_bits is small enough that this field includes bits beyond 55, those upper
  // bits must be set to 0."
  if (host >= 1n << 56n) return { kind: 'invalid', why: 'compressed offset beyond 56 bits' };
  if ((entry >> 63n) & 1n) return { kind: 'invalid', why: 'COPIED set on a compressed cluster' };
  const hostN = Number(host);
  const compressedBytes = (Number(extraSectors) + 1) * 512 - (hostN % 512);
  return { kind: 'compressed', host: hostN, compressedBytes };
}

/** A standard entry: `host` cluster, COPIED set when refcount is one, optional zero flag. */
export function encodeL2(view: DataView, index: number, host: number, zero = false): void {
  writeEntry(view, index, host, host !== 0, zero);
}

export function clearEntry(view: DataView, index: number): void {
  view.setUint32(index * 8, 0);
  view.setUint32(index * 8 + 4, 0);
}

function writeEntry(view: DataView, index: number, offset: number, copied: boolean, zero: boolean): void {
  const hi = Math.floor(offset / 0x100000000);
  const lo = offset % 0x100000000;
  view.setUint32(index * 8, (hi | (copied ? COPIED_HI : 0)) >>> 0);
  view.setUint32(index * 8 + 4, (lo | (zero ? 1 : 0)) >>> 0);
}

/** Host clusters a compressed cluster's bytes touch ("Some of these sectors may reside in the next contiguous host cluster"). */
export function compressedClusters(host: number, bytes: number, clusterSize: number): number[] {
  const first = Math.floor(host / clusterSize);
  const last = Math.floor((host + bytes - 1) / clusterSize);
  const out: number[] = [];
  for (let c = first; c <= last; c++) out.push(c);
  return out;
}
