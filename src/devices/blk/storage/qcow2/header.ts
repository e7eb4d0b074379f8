/**
 * The qcow2 header (QEMU docs/interop/qcow2.txt, "Header" and "Header extensions"): parse and
 * validate, pure. Every check that refuses an image names the rule it enforces; nothing here
 * allocates more than the first cluster, whatever the header claims.
 *
 * Byte layout (big endian):
 *    0 magic "QFI\xfb"        4 version (2|3)          8 backing_file_offset u64
 *   16 backing_file_size u32  20 cluster_bits u32      24 size u64
 *   32 crypt_method u32       36 l1_size u32           40 l1_table_offset u64
 *   48 refcount_table_offset u64                       56 refcount_table_clusters u32
 *   60 nb_snapshots u32       64 snapshots_offset u64
 *   v3: 72 incompatible_features u64  80 compatible_features u64  88 autoclear_features u64
 *       96 refcount_order u32 100 header_length u32   104 compression_type u8 (if present)
 */
import { storageError } from '../types.js';

export const QCOW2_MAGIC = 0x514649fb;
export const HEADER_V2_LENGTH = 72;
export const HEADER_V3_MIN_LENGTH = 104;

export const FIELD = {
  incompatibleFeatures: 72,
  autoclearFeatures: 88,
  refcountTableOffset: 48,
  refcountTableClusters: 56,
} as const;

/** incompatible_features bits the spec defines. */
export const INCOMPAT = { dirty: 0, corrupt: 1, externalData: 2, compressionType: 3, extendedL2: 4 } as const;
const KNOWN_INCOMPAT_MASK = 0b11111n;

export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_NAMES = 0x6803f857;

/** "qemu has an implementation limit of 32 MB as the maximum L1 table size" — we keep it. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
/** "qemu has an implementation limit of 8 MB as the maximum refcount table size". */
export const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
/** "Must not be less than 9"; "qemu ... limit of 2 MB as the maximum cluster size". */
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;

export interface Qcow2Header {
  readonly version: 2 | 3;
  readonly clusterBits: number;
  readonly clusterSize: number;
  readonly size: number;
  readonly l1Size: number;
  readonly l1TableOffset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
  readonly refcountOrder: number;
  readonly nbSnapshots: number;
  readonly snapshotsOffset: number;
  readonly incompatible: bigint;
  readonly compatible: bigint;
  readonly autoclear: bigint;
  readonly headerLength: number;
  readonly backingFile: string | undefined;
  readonly backingFormat: string | undefined;
  /** Names from the feature name table, for messages: "type:bit" → name. */
  readonly featureNames: ReadonlyMap<string, string>;
}

function bad(message: string, context: Record<string, unknown> = {}): Error {
  return storageError('EBADIMG', `qcow2: ${message}`, context);
}

/** A u64 field as a Number, refusing values past 2^53 (no real image has them). */
function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} ${v} is out of range`);
  return Number(v);
}

/**
 * Parse the first cluster (or at least the first 4 KiB: enough for any header qemu writes
 * when `bytes` is shorter than the cluster). `fileSize` bounds every table.
 */
export function parseHeader(bytes: Uint8Array, fileSize: number): Qcow2Header {
  if (bytes.byteLength < HEADER_V2_LENGTH || fileSize < HEADER_V2_LENGTH) throw bad('file too short for a header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== QCOW2_MAGIC) throw bad('bad magic (not a qcow2 image)');
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw bad(`unsupported version ${version}`, { version });
  const clusterBits = view.getUint32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw bad(`cluster_bits ${clusterBits} outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`, { clusterBits });
  }
  const clusterSize = 2 ** clusterBits;
  if (version === 3 && fileSize < HEADER_V3_MIN_LENGTH) throw bad('file too short for a version 3 header');
  const v3 = version === 3 ? parseV3Fields(view, clusterSize) : undefined;
  const header: Qcow2Header = {
    version,
    clusterBits,
    clusterSize,
    size: u64(view, 24, 'size'),
    l1Size: view.getUint32(36),
    l1TableOffset: u64(view, 40, 'l1_table_offset'),
    refcountTableOffset: u64(view, 48, 'refcount_table_offset'),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    snapshotsOffset: u64(view, 64, 'snapshots_offset'),
    incompatible: v3?.incompatible ?? 0n,
    compatible: v3?.compatible ?? 0n,
    autoclear: v3?.autoclear ?? 0n,
    refcountOrder: v3?.refcountOrder ?? 4,
    headerLength: v3?.headerLength ?? HEADER_V2_LENGTH,
    ...parseBackingAndExtensions(bytes, view, version, v3?.headerLength ?? HEADER_V2_LENGTH, clusterSize),
  };
  if (view.getUint32(32) !== 0) throw bad(`encrypted images are not supported (crypt_method ${view.getUint32(32)})`);
  checkIncompatible(header, view);
  checkTables(header, fileSize);
  return header;
}

function parseV3Fields(view: DataView, clusterSize: number) {
  if (view.byteLength < HEADER_V3_MIN_LENGTH) throw bad('file too short for a version 3 header');
  const headerLength = view.getUint32(100);
  // "For version 3 it's at least 104 bytes and must be a multiple of 8."
  if (headerLength < HEADER_V3_MIN_LENGTH || headerLength % 8 !== 0 || headerLength > Math.min(clusterSize, view.byteLength)) {
    throw bad(`bad header_length ${headerLength}`, { headerLength });
  }
  const refcountOrder = view.getUint32(96);
  // "This value may not exceed 6 (i.e. refcount_bits = 64)."
  if (refcountOrder > 6) throw bad(`refcount_order ${refcountOrder} exceeds 6`, { refcountOrder });
  return {
    incompatible: view.getBigUint64(72),
    compatible: view.getBigUint64(80),
    autoclear: view.getBigUint64(88),
    refcountOrder,
    headerLength,
  };
}

function checkIncompatible(h: Qcow2Header, view: DataView): void {
  const unknown = h.incompatible & ~KNOWN_INCOMPAT_MASK;
  // "An implementation must fail to open an image if an unknown bit is set."
  if (unknown !== 0n) {
    const names: string[] = [];
    for (let bit = 0; bit < 64; bit++) {
      if ((unknown >> BigInt(bit)) & 1n) names.push(h.featureNames.get(`0:${bit}`) ?? `bit ${bit}`);
    }
    throw bad(`unknown incompatible features: ${names.join(', ')}`, { incompatible: h.incompatible.toString(16) });
  }
  const has = (bit: number): boolean => ((h.incompatible >> BigInt(bit)) & 1n) === 1n;
  // "Corrupt bit ... the image must not be written to (unless for regaining consistency)."
  // We refuse it outright: reading a possibly corrupt image could return another region's data.
  if (has(INCOMPAT.corrupt)) throw bad('image is marked corrupt; repair it with `qemu-img check -r all`');
  if (has(INCOMPAT.externalData)) throw bad('external data files are not supported');
  if (has(INCOMPAT.extendedL2)) throw bad('extended L2 entries (subclusters) are not supported');
  if (has(INCOMPAT.compressionType)) {
    const type = h.headerLength > 104 ? view.getUint8(104) : 0;
    throw bad(`compression type ${type} is not supported (zlib only)`, { compressionType: type });
  }
}

function checkTables(h: Qcow2Header, fileSize: number): void {
  const cs = h.clusterSize;
  const l2Entries = cs / 8;
  const needL1 = Math.ceil(h.size / cs / l2Entries);
  if (h.l1Size < needL1) throw bad(`l1_size ${h.l1Size} too small for size ${h.size} (needs ${needL1})`);
  if (h.l1Size * 8 > MAX_L1_BYTES) throw bad(`L1 table of ${h.l1Size} entries exceeds ${MAX_L1_BYTES} bytes`);
  if (h.refcountTableClusters * cs > MAX_REFTABLE_BYTES) {
    throw bad(`refcount table of ${h.refcountTableClusters} clusters exceeds ${MAX_REFTABLE_BYTES} bytes`);
  }
  if (h.refcountTableClusters === 0) throw bad('refcount table is empty');
  const tables: Array<[string, number, number]> = [
    ['header', 0, cs],
    ['L1 table', h.l1TableOffset, h.l1Size * 8],
    ['refcount table', h.refcountTableOffset, h.refcountTableClusters * cs],
  ];
  for (const [name, offset, length] of tables.slice(1)) {
    if (offset % cs !== 0) throw bad(`${name} offset ${offset} is not cluster aligned`);
    if (offset + length > fileSize) throw bad(`${name} at ${offset}+${length} is past the end of the file (${fileSize})`);
  }
  for (let i = 0; i < tables.length; i++) {
    for (let j = i + 1; j < tables.length; j++) {
      const [a, ao, al] = tables[i] as [string, number, number];
      const [b, bo, bl] = tables[j] as [string, number, number];
      if (al > 0 && bl > 0 && ao < bo + bl && bo < ao + al) throw bad(`${a} overlaps ${b}`);
    }
  }
}

function parseBackingAndExtensions(bytes: Uint8Array, view: DataView, version: number, headerLength: number, cs: number) {
  const featureNames = new Map<string, string>();
  let backingFormat: string | undefined;
  const limit = Math.min(cs, bytes.byteLength);
  if (version === 3) {
    let at = headerLength;
    // Extensions follow the header until an end marker, all within the first cluster.
    while (at + 8 <= limit) {
      const type = view.getUint32(at);
      const length = view.getUint32(at + 4);
      if (type === EXT_END) break;
      const data = at + 8;
      if (length > limit - data) throw bad(`header extension 0x${type.toString(16)} runs past the first cluster`);
      if (type === EXT_BACKING_FORMAT) backingFormat = ascii(bytes.subarray(data, data + length));
      if (type === EXT_FEATURE_NAMES) readFeatureNames(bytes.subarray(data, data + length), featureNames);
      at = data + Math.ceil(length / 8) * 8;
    }
  }
  const backingOffset = view.getBigUint64(8);
  const backingSize = view.getUint32(16);
  let backingFile: string | undefined;
  if (backingOffset !== 0n) {
    // "Must not be longer than 1023 bytes"; the name lives in the first cluster.
    if (backingSize > 1023 || backingSize === 0 || backingOffset + BigInt(backingSize) > BigInt(limit)) {
      throw bad(`bad backing file name at ${backingOffset}+${backingSize}`);
    }
    const at = Number(backingOffset);
    backingFile = new TextDecoder().decode(bytes.subarray(at, at + backingSize));
  }
  return { backingFile, backingFormat, featureNames };
}

function readFeatureNames(data: Uint8Array, out: Map<string, string>): void {
  for (let at = 0; at + 48 <= data.byteLength; at += 48) {
    const name = ascii(data.subarray(at + 2, at + 48)).replace(/\0.*$/s, '');
    out.set(`${data[at]}:${data[at + 1]}`, name);
  }
}

function ascii(bytes: Uint8Array): string {
  return new TextDecoder('latin1').decode(bytes);
}
