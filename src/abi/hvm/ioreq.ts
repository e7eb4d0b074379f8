/**
 * `xen/hvm/ioreq.h`: how Xen hands an HVM guest's trapped port/MMIO access to the device model.
 *
 * One `ioreq_t` per vCPU sits in the shared iopage. Xen fills it and sets
 * STATE_IOREQ_READY, then signals `vp_eport`; the device model sets INPROCESS, performs the
 * access, writes `data` for reads, sets STATE_IORESP_READY and signals back. Buffered ioreqs
 * are fire-and-forget writes in a separate ring page.
 *
 * `state`, `data_is_ptr`, `dir` and `df` are C bitfields in byte 30, so `offsetof` cannot
 * name them; their bit positions are given below and checked by the C comparison test against
 * an object gcc initialises field by field.
 */
import { defineConstants, defineStruct } from '../layout.js';

const H = 'xen/hvm/ioreq.h';

export const IOREQ_DIR = defineConstants(H, { IOREQ_READ: 1, IOREQ_WRITE: 0 });
export const { IOREQ_READ, IOREQ_WRITE } = IOREQ_DIR;

/** `ioreq_t.state`: NONE -> IOREQ_READY (Xen) -> IOREQ_INPROCESS (DM) -> IORESP_READY (DM) -> NONE. */
export const IOREQ_STATE = defineConstants(H, {
  STATE_IOREQ_NONE: 0,
  STATE_IOREQ_READY: 1,
  STATE_IOREQ_INPROCESS: 2,
  STATE_IORESP_READY: 3,
});
export const { STATE_IOREQ_NONE, STATE_IOREQ_READY, STATE_IOREQ_INPROCESS, STATE_IORESP_READY } = IOREQ_STATE;
export type IoreqState = (typeof IOREQ_STATE)[keyof typeof IOREQ_STATE];

export const IOREQ_TYPE = defineConstants(H, {
  IOREQ_TYPE_PIO: 0, // port I/O
  IOREQ_TYPE_COPY: 1, // MMIO
  IOREQ_TYPE_PCI_CONFIG: 2, // addr = SBDF << 32 | register
  IOREQ_TYPE_TIMEOFFSET: 7, // the guest moved its RTC: data = offset
  IOREQ_TYPE_INVALIDATE: 8, // flush the device model's map cache
});
export const { IOREQ_TYPE_PIO, IOREQ_TYPE_COPY, IOREQ_TYPE_PCI_CONFIG, IOREQ_TYPE_TIMEOFFSET, IOREQ_TYPE_INVALIDATE } =
  IOREQ_TYPE;

export const IOREQ_BUFFER = defineConstants(H, {
  /** Slots of the buffered page: 8 bytes each after two 4-byte indices. */
  IOREQ_BUFFER_SLOT_NUM: 511,
});
export const { IOREQ_BUFFER_SLOT_NUM } = IOREQ_BUFFER;

/*
 * struct ioreq {                              ioreq_t, sizeof = 32 on both ABIs
 *     uint64_t addr;          @0   port, guest-physical address, or PCI SBDF|register
 *     uint64_t data;          @8   the value, or (data_is_ptr) guest-physical address of the data
 *     uint32_t count;         @16  rep count
 *     uint32_t size;          @20  bytes per access
 *     uint32_t vp_eport;      @24  event channel for this vCPU
 *     uint16_t _pad0;         @28
 *     uint8_t state:4;        @30 bits 0-3   STATE_*
 *     uint8_t data_is_ptr:1;  @30 bit 4
 *     uint8_t dir:1;          @30 bit 5      IOREQ_READ / IOREQ_WRITE
 *     uint8_t df:1;           @30 bit 6      direction flag: rep ops walk downwards
 *     uint8_t _pad1:1;        @30 bit 7
 *     uint8_t type;           @31  IOREQ_TYPE_*
 * };
 */
export const IOREQ = defineStruct(
  H,
  'ioreq',
  { size: 32, fields: { addr: 0, data: 8, count: 16, size: 20, vp_eport: 24, _pad0: 28, type: 31 } },
);

/** The bitfield byte of `ioreq_t` and its masks (checked against gcc by the C test). */
export const IOREQ_BITS = {
  offset: 30,
  state: 0x0f,
  data_is_ptr: 0x10,
  dir: 0x20,
  df: 0x40,
} as const;

/* struct shared_iopage { struct ioreq vcpu_ioreq[1]; };  one ioreq_t per vCPU, indexed by vCPU id */
export const SHARED_IOPAGE = defineStruct(H, 'shared_iopage', { size: 32, fields: { vcpu_ioreq: 0 } });

/*
 * struct buf_ioreq {                          buf_ioreq_t, sizeof = 8
 *     uint8_t  type;        word bits 0-7     IOREQ_TYPE_*
 *     uint8_t  pad:1;       bit 8
 *     uint8_t  dir:1;       bit 9
 *     uint8_t  size:2;      bits 10-11        0 => 1 byte, 1 => 2, 2 => 4, 3 => 8 (two slots)
 *     uint32_t addr:20;     bits 12-31        physical address (low 20 bits)
 *     uint32_t data;        @4
 * };
 */
export const BUF_IOREQ = defineStruct(H, 'buf_ioreq', { size: 8, fields: { type: 0, data: 4 } });

/** Bit layout of the first 32-bit word of `buf_ioreq_t` (checked against gcc by the C test). */
export const BUF_IOREQ_BITS = {
  type: { shift: 0, mask: 0xff },
  dir: { shift: 9, mask: 0x1 },
  size: { shift: 10, mask: 0x3 },
  addr: { shift: 12, mask: 0xfffff },
} as const;

/*
 * struct buffered_iopage {                    one 4 KiB page
 *     uint32_t read_pointer;          @0   advanced by the device model
 *     uint32_t write_pointer;         @4   advanced by Xen
 *     buf_ioreq_t buf_ioreq[511];     @8
 * };
 */
export const BUFFERED_IOPAGE = defineStruct(H, 'buffered_iopage', {
  size: 4096,
  fields: { read_pointer: 0, write_pointer: 4, buf_ioreq: 8 },
});

export interface Ioreq {
  readonly addr: bigint;
  readonly data: bigint;
  readonly count: number;
  readonly size: number;
  readonly vp_eport: number;
  readonly state: number;
  readonly data_is_ptr: boolean;
  /** IOREQ_READ (1) or IOREQ_WRITE (0). */
  readonly dir: number;
  readonly df: boolean;
  readonly type: number;
}

/** Decode one ioreq_t (copy-once: each byte read once). Validates nothing. */
export function decodeIoreq(v: DataView, at: number): Ioreq {
  const f = IOREQ.layouts.x86_64.fields;
  const bits = v.getUint8(at + IOREQ_BITS.offset);
  return {
    addr: v.getBigUint64(at + f.addr, true),
    data: v.getBigUint64(at + f.data, true),
    count: v.getUint32(at + f.count, true),
    size: v.getUint32(at + f.size, true),
    vp_eport: v.getUint32(at + f.vp_eport, true),
    state: bits & IOREQ_BITS.state,
    data_is_ptr: (bits & IOREQ_BITS.data_is_ptr) !== 0,
    dir: (bits & IOREQ_BITS.dir) !== 0 ? IOREQ_READ : IOREQ_WRITE,
    df: (bits & IOREQ_BITS.df) !== 0,
    type: v.getUint8(at + f.type),
  };
}

/** The bitfield byte for these values (what `encodeIoreq` writes at offset 30). */
export function ioreqBitsByte(r: Pick<Ioreq, 'state' | 'data_is_ptr' | 'dir' | 'df'>): number {
  return (
    (r.state & IOREQ_BITS.state) |
    (r.data_is_ptr ? IOREQ_BITS.data_is_ptr : 0) |
    (r.dir === IOREQ_READ ? IOREQ_BITS.dir : 0) |
    (r.df ? IOREQ_BITS.df : 0)
  );
}

/**
 * Write a whole ioreq_t. Callers publishing to another thread write the slot with state NONE
 * first and then store the state byte with Atomics, so the peer never sees READY before the rest.
 */
export function encodeIoreq(v: DataView, at: number, r: Ioreq): void {
  const f = IOREQ.layouts.x86_64.fields;
  v.setBigUint64(at + f.addr, r.addr, true);
  v.setBigUint64(at + f.data, r.data, true);
  v.setUint32(at + f.count, r.count, true);
  v.setUint32(at + f.size, r.size, true);
  v.setUint32(at + f.vp_eport, r.vp_eport, true);
  v.setUint16(at + f._pad0, 0, true);
  v.setUint8(at + IOREQ_BITS.offset, ioreqBitsByte(r));
  v.setUint8(at + f.type, r.type);
}

export interface BufIoreq {
  readonly type: number;
  readonly dir: number;
  /** Access size in bytes (1, 2, 4 or 8), decoded from the 2-bit code. */
  readonly size: 1 | 2 | 4 | 8;
  readonly addr: number;
  readonly data: number;
}

export function decodeBufIoreq(v: DataView, at: number): BufIoreq {
  const w = v.getUint32(at, true);
  const b = BUF_IOREQ_BITS;
  const code = (w >>> b.size.shift) & b.size.mask;
  return {
    type: (w >>> b.type.shift) & b.type.mask,
    dir: (w >>> b.dir.shift) & b.dir.mask,
    size: ([1, 2, 4, 8] as const)[code] ?? 1,
    addr: (w >>> b.addr.shift) & b.addr.mask,
    data: v.getUint32(at + BUF_IOREQ.layouts.x86_64.fields.data, true),
  };
}

export function encodeBufIoreq(v: DataView, at: number, r: BufIoreq): void {
  const b = BUF_IOREQ_BITS;
  const code = { 1: 0, 2: 1, 4: 2, 8: 3 }[r.size];
  const w =
    ((r.type & b.type.mask) << b.type.shift) |
    ((r.dir & b.dir.mask) << b.dir.shift) |
    ((code & b.size.mask) << b.size.shift) |
    ((r.addr & b.addr.mask) << b.addr.shift);
  v.setUint32(at, w >>> 0, true);
  v.setUint32(at + BUF_IOREQ.layouts.x86_64.fields.data, r.data >>> 0, true);
}
