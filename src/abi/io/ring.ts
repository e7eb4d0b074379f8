/**
 * `xen/io/ring.h`: the shared request/response ring every split driver uses.
 *
 * The header defines no concrete struct; `DEFINE_RING_TYPES(name, req, rsp)` stamps out
 * `struct name_sring` for each protocol. This file gives the common header layout and the
 * ring-size arithmetic; each protocol file registers its own `*_sring` with `defineSring`, so
 * the C comparison checks the real stamped-out structs.
 *
 * The protocol page size is 4 KiB whatever the guest's page size (`XEN_PAGE_SHIFT 12`).
 */
import { defineConstants, defineStruct, type AbiName, type StructLayout } from '../layout.js';

const H = 'xen/io/ring.h';

export const RING_H = defineConstants(H, {
  XEN_PAGE_SHIFT: 12,
});
export const { XEN_PAGE_SHIFT } = RING_H;

/*
 * struct __name##_sring {                     (same on x86_64 and x86_32)
 *     RING_IDX req_prod, req_event;           @0, @4    written by: front (req_prod),
 *     RING_IDX rsp_prod, rsp_event;           @8, @12   back (rsp_prod); event: the consumer
 *     union {
 *         struct { uint8_t smartpoll_active; } netif;
 *         struct { uint8_t msg; } tapif_user;
 *         uint8_t pvt_pad[4];
 *     } pvt;                                  @16
 *     uint8_t __pad[44];                      @20
 *     union __name##_sring_entry ring[1];     @64       variable-length
 * };
 * RING_IDX is uint32_t and free-running: indices are masked with (size - 1), never reset.
 */
export const SRING_FIELDS = {
  req_prod: 0,
  req_event: 4,
  rsp_prod: 8,
  rsp_event: 12,
  pvt: 16,
  'pvt.netif.smartpoll_active': 16,
  'pvt.tapif_user.msg': 16,
  __pad: 20,
  ring: 64,
} as const;

/** Bytes before the first entry: the ring header is always 64 bytes. */
export const SRING_HEADER_SIZE = SRING_FIELDS.ring;

/**
 * Register `struct <name>_sring` for one protocol. `sizeof` counts the header plus one entry
 * (`ring[1]`), rounded up to the entry's alignment, which the caller gives per ABI.
 */
export function defineSring(
  header: string,
  name: string,
  entry64: RingEntry,
  entry32: RingEntry = entry64,
): void {
  const layout = (e: RingEntry): StructLayout => ({
    size: alignUp(SRING_HEADER_SIZE + e.size, e.align),
    fields: SRING_FIELDS,
  });
  defineStruct(header, `${name}_sring`, layout(entry64), layout(entry32));
  srings.push({ name, header, entry: { x86_64: entry64, x86_32: entry32 } });
}

/** One ring slot: `sizeof(union <name>_sring_entry)` and its alignment. */
export interface RingEntry {
  readonly size: number;
  readonly align: number;
}

export interface SringDef {
  /** The DEFINE_RING_TYPES name: `blkif` for `struct blkif_sring`. */
  readonly name: string;
  readonly header: string;
  readonly entry: Readonly<Record<AbiName, RingEntry>>;
}

const srings: SringDef[] = [];

/** Every ring type registered so far (the C test checks `__CONST_RING_SIZE` for each). */
export function allSrings(): readonly SringDef[] {
  return srings;
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** `__RD32(x)`: round a u32 down to a power of two (0 stays 0). */
export function roundDownPow2(x: number): number {
  if (x < 1) return 0;
  return 2 ** (31 - Math.clz32(x));
}

/**
 * `__CONST_RING_SIZE(name, bytes)`: how many entries of `entrySize` fit in a shared ring of
 * `ringBytes` (one or more 4 KiB pages) after the 64-byte header, rounded down to a power of two.
 */
export function ringSize(ringBytes: number, entrySize: number): number {
  return roundDownPow2(Math.floor((ringBytes - SRING_HEADER_SIZE) / entrySize));
}

/**
 * `XEN_FLEX_RING_SIZE(order)`: bytes per direction of a flex (byte-stream) ring whose data area
 * is `1 << order` pages, split into `in` and `out` halves.
 */
export function xenFlexRingSize(order: number): number {
  return 2 ** (order + XEN_PAGE_SHIFT - 1);
}
