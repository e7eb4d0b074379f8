/**
 * `xen/io/blkif.h`: the PV block ring: requests (read/write, discard, indirect), segments,
 * responses, operation and status codes.
 *
 * The x86_32 and x86_64 layouts differ: after `handle` the 64-bit `id` is 8-aligned on x86_64
 * (4 bytes of padding) but 4-aligned on x86_32. That is why the frontend writes a `protocol`
 * key (`x86_32-abi` / `x86_64-abi`, see protocols.ts) and a backend picks its table by it.
 * Every codec here takes the ABI and reads through that ABI's table.
 *
 * Sector numbers are always in 512-byte units, whatever the disk's `sector-size`.
 */
import type { AbiName } from '../layout.js';
import { defineConstants, defineStruct } from '../layout.js';
import { defineSring } from './ring.js';

const H = 'xen/io/blkif.h';

/** Request codes (`BLKIF_OP_*`). ABI values, append only, never renumber. */
export const BLKIF_OP = defineConstants(H, {
  BLKIF_OP_READ: 0,
  BLKIF_OP_WRITE: 1,
  BLKIF_OP_WRITE_BARRIER: 2, // backend node: feature-barrier
  BLKIF_OP_FLUSH_DISKCACHE: 3, // backend node: feature-flush-cache
  BLKIF_OP_RESERVED_1: 4, // used by SLES for device-specific requests
  BLKIF_OP_DISCARD: 5, // backend node: feature-discard
  BLKIF_OP_INDIRECT: 6, // backend node: feature-max-indirect-segments
});
export const {
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_RESERVED_1,
  BLKIF_OP_DISCARD,
  BLKIF_OP_INDIRECT,
} = BLKIF_OP;
export type BlkifOp = (typeof BLKIF_OP)[keyof typeof BLKIF_OP];

export function isBlkifOp(n: number): n is BlkifOp {
  return Number.isInteger(n) && n >= BLKIF_OP_READ && n <= BLKIF_OP_INDIRECT;
}

export const BLKIF_LIMITS = defineConstants(H, {
  /** Segments carried directly in a read/write request. */
  BLKIF_MAX_SEGMENTS_PER_REQUEST: 11,
  /** Indirect pages one BLKIF_OP_INDIRECT request may name. */
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: 8,
  /** `blkif_request_discard.flag`: ignored if the backend's discard-secure is 0. */
  BLKIF_DISCARD_SECURE: 1 << 0,
});
export const { BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_DISCARD_SECURE } =
  BLKIF_LIMITS;

/** Segments per indirect page: a 4 KiB page of 8-byte `blkif_request_segment`s. */
export const BLKIF_SEGMENTS_PER_INDIRECT_PAGE = 4096 / 8;

/** Response status (`BLKIF_RSP_*`). EOPNOTSUPP may come back for barrier/flush/discard at any time. */
export const BLKIF_RSP = defineConstants(H, {
  BLKIF_RSP_EOPNOTSUPP: -2,
  BLKIF_RSP_ERROR: -1,
  BLKIF_RSP_OKAY: 0,
});
export const { BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY } = BLKIF_RSP;
export type BlkifRsp = (typeof BLKIF_RSP)[keyof typeof BLKIF_RSP];

/** `info` node bits (VDISK_*). */
export const VDISK = defineConstants(H, { VDISK_CDROM: 0x1, VDISK_REMOVABLE: 0x2, VDISK_READONLY: 0x4 });
export const { VDISK_CDROM, VDISK_REMOVABLE, VDISK_READONLY } = VDISK;

/**
 * Feature nodes blkif.h documents (xenstore keys, not C macros): the backend advertises them,
 * the frontend writes `feature-persistent` and `feature-large-sector-size` on its side.
 */
export const BLKIF_FEATURE_KEYS = {
  barrier: 'feature-barrier', // BLKIF_OP_WRITE_BARRIER
  flushCache: 'feature-flush-cache', // BLKIF_OP_FLUSH_DISKCACHE
  discard: 'feature-discard', // BLKIF_OP_DISCARD (+ discard-granularity/-alignment/-secure)
  persistent: 'feature-persistent', // both ends: grants are reused
  maxIndirectSegments: 'feature-max-indirect-segments', // BLKIF_OP_INDIRECT
  largeSectorSize: 'feature-large-sector-size', // frontend: understands sector-size != 512
  maxRingPageOrder: 'max-ring-page-order', // multi-page rings
} as const;

/*
 * struct blkif_request_segment {              sizeof = 8 on both ABIs; 512 per indirect page
 *     grant_ref_t gref;        @0  the I/O buffer's grant
 *     uint8_t first_sect;      @4  first 512-byte sector in the frame (0..7)
 *     uint8_t last_sect;       @5  last sector, inclusive (first_sect..7)
 * };
 */
export const BLKIF_REQUEST_SEGMENT = defineStruct(H, 'blkif_request_segment', {
  size: 8,
  fields: { gref: 0, first_sect: 4, last_sect: 5 },
});

/*
 * struct blkif_request {                      written by: frontend
 *     uint8_t        operation;      @0   BLKIF_OP_*
 *     uint8_t        nr_segments;    @1
 *     blkif_vdev_t   handle;         @2   uint16_t
 *     -- x86_64: 4 bytes padding @4
 *     uint64_t       id;             @8   (x86_32 @4) echoed in the response
 *     blkif_sector_t sector_number;  @16  (x86_32 @12) 512-byte units
 *     struct blkif_request_segment seg[11];  @24 (x86_32 @20)
 * };                                 sizeof: x86_64 112, x86_32 108
 */
export const BLKIF_REQUEST = defineStruct(
  H,
  'blkif_request',
  { size: 112, fields: { operation: 0, nr_segments: 1, handle: 2, id: 8, sector_number: 16, seg: 24 } },
  { size: 108, fields: { operation: 0, nr_segments: 1, handle: 2, id: 4, sector_number: 12, seg: 20 } },
);

/*
 * struct blkif_request_discard {              overlays a request slot
 *     uint8_t        operation;      @0   BLKIF_OP_DISCARD
 *     uint8_t        flag;           @1   BLKIF_DISCARD_SECURE or 0
 *     blkif_vdev_t   handle;         @2
 *     uint64_t       id;             @8   (x86_32 @4)
 *     blkif_sector_t sector_number;  @16  (x86_32 @12)
 *     uint64_t       nr_sectors;     @24  (x86_32 @20)
 * };                                 sizeof: x86_64 32, x86_32 28
 */
export const BLKIF_REQUEST_DISCARD = defineStruct(
  H,
  'blkif_request_discard',
  { size: 32, fields: { operation: 0, flag: 1, handle: 2, id: 8, sector_number: 16, nr_sectors: 24 } },
  { size: 28, fields: { operation: 0, flag: 1, handle: 2, id: 4, sector_number: 12, nr_sectors: 20 } },
);

/*
 * struct blkif_request_indirect {             overlays a request slot
 *     uint8_t        operation;      @0   BLKIF_OP_INDIRECT
 *     uint8_t        indirect_op;    @1   BLKIF_OP_READ / BLKIF_OP_WRITE
 *     uint16_t       nr_segments;    @2   up to feature-max-indirect-segments
 *     uint64_t       id;             @8   (x86_32 @4)
 *     blkif_sector_t sector_number;  @16  (x86_32 @12)
 *     blkif_vdev_t   handle;         @24  (x86_32 @20)
 *     grant_ref_t    indirect_grefs[8];   @28 (x86_32 @24): pages of segments
 *     uint64_t       pad;            x86_32 only (@56), "make it 64 byte aligned on i386"
 * };                                 sizeof = 64 on both
 */
export const BLKIF_REQUEST_INDIRECT = defineStruct(
  H,
  'blkif_request_indirect',
  {
    size: 64,
    fields: { operation: 0, indirect_op: 1, nr_segments: 2, id: 8, sector_number: 16, handle: 24, indirect_grefs: 28 },
  },
  {
    size: 64,
    fields: {
      operation: 0,
      indirect_op: 1,
      nr_segments: 2,
      id: 4,
      sector_number: 12,
      handle: 20,
      indirect_grefs: 24,
      pad: 56,
    },
  },
);

/*
 * struct blkif_response {                     written by: backend
 *     uint64_t id;          @0   copied from the request
 *     uint8_t  operation;   @8   copied from the request
 *     int16_t  status;      @10  BLKIF_RSP_*
 * };                        sizeof: x86_64 16, x86_32 12
 */
export const BLKIF_RESPONSE = defineStruct(
  H,
  'blkif_response',
  { size: 16, fields: { id: 0, operation: 8, status: 10 } },
  { size: 12, fields: { id: 0, operation: 8, status: 10 } },
);

/* DEFINE_RING_TYPES(blkif, struct blkif_request, struct blkif_response): entries are the request
 * size (the larger), 8-aligned on x86_64 and 4-aligned on x86_32. 32 entries per 4 KiB page. */
defineSring(H, 'blkif', { size: 112, align: 8 }, { size: 108, align: 4 });

/** Bytes per ring slot (`sizeof(union blkif_sring_entry)`). */
export function blkifEntrySize(abi: AbiName): number {
  return BLKIF_REQUEST.layouts[abi].size;
}
