/**
 * PV block protocol facts that are not struct layouts (those are `abi/io/blkif.ts`): the
 * xenstore keys each end writes, catalogued as `xen/io/blkif.h` does (Values / Default / who
 * writes it), the limits xenpv applies, and strict parsers for values read from the peer.
 *
 * Units (Xen 4.20, protocols.md §3.3): `sectors`, `sector_number`, `first_sect`/`last_sect`
 * and `nr_sectors` are ALWAYS 512-byte units; `sector-size` only states the logical block
 * size that offsets and lengths must be aligned to. Linux blk{front,back} behave the same.
 */
import { BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_SEGMENTS_PER_INDIRECT_PAGE } from '../../abi/io/blkif.js';

export interface KeySpec {
  /** Who writes it: 'back' (backend dir), 'front' (frontend dir), 'toolstack' (libxl). */
  readonly side: 'back' | 'front' | 'toolstack';
  readonly values: string;
  readonly default?: string;
  readonly note?: string;
}

/** Every node blkif.h documents that xenpv reads or writes. */
export const BLK_KEYS = {
  // ---- backend dir, written by the toolstack (libxl) ----
  mode: { side: 'toolstack', values: '"r" | "w"', note: 'read-only disk when "r"' },
  params: { side: 'toolstack', values: 'string', note: 'what the hotplug script attaches' },
  type: { side: 'toolstack', values: '"file" | "phy" | "tap" | "qdisk"' },
  online: { side: 'toolstack', values: '0/1', default: '1', note: '0 = remove the device once the frontend closes' },
  'discard-enable': { side: 'toolstack', values: '0/1', default: '1', note: 'toolstack veto over feature-discard' },
  // ---- backend dir, written by blkback ----
  'feature-barrier': { side: 'back', values: '0/1', default: '0', note: 'BLKIF_OP_WRITE_BARRIER; EOPNOTSUPP may still come back' },
  'feature-flush-cache': { side: 'back', values: '0/1', default: '0', note: 'BLKIF_OP_FLUSH_DISKCACHE' },
  'feature-discard': { side: 'back', values: '0/1', default: '0', note: 'BLKIF_OP_DISCARD' },
  'discard-granularity': { side: 'back', values: 'bytes', default: '<sector-size>' },
  'discard-alignment': { side: 'back', values: 'bytes', default: '0' },
  'discard-secure': { side: 'back', values: '0/1', default: '0', note: 'BLKIF_DISCARD_SECURE honoured' },
  'feature-persistent': { side: 'back', values: '0/1', default: '0', note: 'also a frontend node; used only if both say 1' },
  'feature-max-indirect-segments': { side: 'back', values: 'uint32', note: 'absent = no BLKIF_OP_INDIRECT' },
  'max-ring-page-order': { side: 'back', values: 'uint32', default: '0' },
  'max-ring-pages': { side: 'back', values: 'power of 2', default: '1', note: 'DEPRECATED; published for old frontends' },
  'multi-queue-max-queues': { side: 'back', values: 'uint32', default: '1 (absent)' },
  info: { side: 'back', values: 'VDISK_* bitmap', default: '0' },
  'sector-size': { side: 'back', values: 'power of 2 >= 512', note: 'logical block size; all sector fields stay 512-byte units' },
  'physical-sector-size': { side: 'back', values: 'multiple of sector-size', default: '<sector-size>' },
  sectors: { side: 'back', values: 'uint64', note: '512-byte units; rewritten for online resize' },
  // ---- frontend dir ----
  'ring-ref': { side: 'front', values: 'grant ref', note: 'single-page ring, single queue' },
  'ring-ref%u': { side: 'front', values: 'grant ref', note: 'page %u of a multi-page ring' },
  'ring-page-order': { side: 'front', values: 'uint32', default: '0', note: '<= max-ring-page-order; top level even with queues' },
  'num-ring-pages': { side: 'front', values: 'power of 2', default: '1', note: 'DEPRECATED' },
  'event-channel': { side: 'front', values: 'port' },
  'multi-queue-num-queues': { side: 'front', values: '1..multi-queue-max-queues', note: '> 1: keys move under queue-N/' },
  'queue-%u/ring-ref': { side: 'front', values: 'grant ref' },
  'queue-%u/event-channel': { side: 'front', values: 'port' },
  protocol: { side: 'front', values: 'XEN_IO_PROTO_ABI_*', default: 'x86_64-abi (native)' },
  'feature-large-sector-size': { side: 'front', values: '0/1', note: 'DEPRECATED in 4.20: never written, never acted on' },
  trusted: { side: 'toolstack', values: '0/1', default: '1', note: 'frontend dir; 0 = distrust the backend (bounce buffers)' },
  'virtual-device': { side: 'toolstack', values: 'vdev number' },
  'device-type': { side: 'toolstack', values: '"disk" | "cdrom" | "floppy"' },
} as const satisfies Record<string, KeySpec>;

/**
 * Bytes of persistent buffers a blkfront keeps granted per device (BlkFront.allocBuffer):
 * 32 MiB, what fio's buffers take at iodepth 32 × 1 MiB, beyond the 1056 pages of its pool;
 * blkback's cache holds room for both. I/O on them needs no copy in the guest: for 1 MiB
 * sequential reads that copy was half of the guest's CPU and the path's second copy of
 * every byte (the first is the kernel's, into the granted page).
 */
export const MAX_KEPT_BYTES = 32 << 20;

/**
 * Operations a blkfront holds at once, queued or on a ring; one more is refused with EAGAIN
 * (io_submit's answer when its ring is full) rather than queued without bound behind a
 * backend that stopped answering. Linux bounds the same with the block layer's tags, where the
 * submitter sleeps. 4 × fio's largest iodepth (1024).
 */
export const MAX_OPEN_OPS = 4096;

/** Limits xenpv's blkback advertises (Linux blkback's defaults where it has one). */
export const BACK_LIMITS = {
  /** Linux blkback xen_blkif_max_ring_order default: 16 pages. */
  maxRingPageOrder: 4,
  /** Linux uses the number of online CPUs; xenpv is a 2-core machine's friend. */
  maxQueues: 4,
  /** MAX_INDIRECT_SEGMENTS in Linux blkback. */
  maxIndirectSegments: 256,
  /**
   * Persistently mapped grants per queue: Linux blkback's max_persistent_grants default,
   * 1056 = a 32-slot ring of 32-segment (indirect) requests plus their indirect pages, which
   * is exactly the pool of a default blkfront. At 1024 a default frontend cycling through its
   * 1056 pages missed the LRU cache on every segment (evict + map + unmap per page). Ours
   * holds a frontend's persistent buffers too (MAX_KEPT_BYTES / 4096 more): a cache smaller
   * than pool + buffers thrashes the same way (with 256 KiB of buffers over a 1056-page
   * cache, 1 MiB sequential writes cost blkback ~40 % more CPU per request). dom0's
   * maptrack is sized for it (hv/sim DOM0_MAX_MAPTRACK).
   */
  maxPersistentGrants: 1056 + MAX_KEPT_BYTES / 4096,
  /** Requests dispatched to storage and not yet answered, per queue (back-pressure beyond). */
  maxInFlight: 64,
  /**
   * Requests decoded per serve pass before yielding to the event loop (R6). A yield costs an
   * event-loop turn (timers, epoll): at 32, 4 KiB random reads on the synchronous path paid
   * one every ~45 µs; at 128 the disk thread spent ~5 % less CPU per read and read 4-6 % more
   * (6 alternating pairs at queue depth 32, `bench block`'s layout). 256 measured the same.
   */
  batch: 128,
  /**
   * Sectors a pass moves on the synchronous path before it yields, whatever its request
   * count: 32 MiB, what 32 requests of 1 MiB moved before `batch` grew, so a pass of large
   * requests holds the thread no longer than it did (~4 ms).
   */
  batchSectors: (32 << 20) / 512,
} as const;

/** Defaults of xenpv's blkfront (Linux blkfront's module defaults where it has one). */
export const FRONT_DEFAULTS = {
  maxIndirectSegments: 32,
  maxQueues: 4,
  maxRingPageOrder: 0,
  persistent: true,
} as const;

/** The largest order a ring may have: 16 pages (ring.ts PagedMemory bound, Linux XENBUS_MAX_RING_GRANT_ORDER). */
export const MAX_RING_PAGE_ORDER = 4;
/** Hard ceiling for the queue count a frontend may ask (bounds per-queue allocations). */
export const MAX_QUEUES_CEILING = 16;
/** BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * 512: the most segments one indirect request can name. */
export const MAX_INDIRECT_SEGMENTS_CEILING = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGMENTS_PER_INDIRECT_PAGE;
/** 512-byte sectors per 4 KiB page: `last_sect` is at most 7. */
export const SECTORS_PER_PAGE = 8;
export const SECTOR_BYTES = 512;

/**
 * A non-negative decimal as xenstore carries it: digits only, no sign, no spaces, no hex, at
 * most `max`. Anything else (reliability.md R10: "parsed strictly") is undefined.
 */
export function parseUint(text: string | undefined, max = 0xffffffff): number | undefined {
  if (text === undefined || !/^[0-9]{1,20}$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n <= max ? n : undefined;
}

/** A 0/1 feature node; absent or garbage reads as `dflt` (blkif.h defaults). */
export function parseBool(text: string | undefined, dflt = false): boolean {
  const n = parseUint(text, 1);
  return n === undefined ? dflt : n === 1;
}

/** `ring-ref` for a single page, `ring-ref%u` per page of a multi-page ring (blkif.h note 6). */
export function ringRefKeys(order: number): string[] {
  if (order === 0) return ['ring-ref'];
  return Array.from({ length: 1 << order }, (_, i) => `ring-ref${i}`);
}

/** The dir holding a queue's ring keys: the device dir itself, or `queue-N/` with several queues. */
export function queueDir(devicePath: string, queue: number, queues: number): string {
  return queues === 1 ? devicePath : `${devicePath}/queue-${queue}`;
}
