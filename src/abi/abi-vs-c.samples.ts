/**
 * Codec samples for the C comparison (abi-vs-c.test.ts): the same record written once by gcc,
 * as a designated initializer of the C struct, and once by our encoder. The bytes must match,
 * which checks the codecs (bitfields, signedness, byte order, zeroed padding) against the
 * compiler, not only the offset tables.
 */
import type { AbiName } from './layout.js';
import { encodeBlkifRequest, encodeBlkifResponse } from './io/blkif-codec.js';
import { BLKIF_REQUEST, BLKIF_RESPONSE } from './io/blkif.js';
import {
  encodeNetifExtraInfo,
  encodeNetifRxResponse,
  encodeNetifTxRequest,
  encodeXenNetifCtrlRequest,
  encodeXenNetifCtrlResponse,
} from './io/netif-codec.js';
import { encodeXsdSockmsg } from './io/xs_wire.js';
import { encodeBufIoreq, encodeIoreq } from './hvm/ioreq.js';
import { encodeGrantEntryV1 } from './grant_table.js';

export interface CodecSample {
  readonly label: string;
  readonly cType: string;
  /** A C designated initializer for one object of `cType`. */
  readonly init: string;
  /** Our encoder's bytes for the same record (length = sizeof on that ABI). */
  readonly encode: (abi: AbiName) => Uint8Array;
}

function bytes(size: number, write: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(size);
  write(new DataView(b.buffer));
  return b;
}

const blkif: CodecSample[] = [
  {
    label: 'blkif_request (write, 2 segments)',
    cType: 'struct blkif_request',
    init: `{ .operation = 1, .nr_segments = 2, .handle = 3, .id = 0x0102030405060708ULL, .sector_number = 0x1122334455ULL,
      .seg = { { .gref = 0x11223344, .first_sect = 0, .last_sect = 7 }, { .gref = 5, .first_sect = 1, .last_sect = 3 } } }`,
    encode: (abi) =>
      bytes(BLKIF_REQUEST.layouts[abi].size, (v) =>
        encodeBlkifRequest(v, 0, abi, {
          kind: 'rw', operation: 1, nr_segments: 2, handle: 3, id: 0x0102030405060708n, sector_number: 0x1122334455n,
          seg: [{ gref: 0x11223344, first_sect: 0, last_sect: 7 }, { gref: 5, first_sect: 1, last_sect: 3 }],
        }),
      ),
  },
  {
    label: 'blkif_request_discard',
    cType: 'struct blkif_request_discard',
    init: '{ .operation = 5, .flag = 1, .handle = 0x0102, .id = 9, .sector_number = 0x800, .nr_sectors = 0xfedcba9876ULL }',
    encode: (abi) => {
      const slot = bytes(BLKIF_REQUEST.layouts[abi].size, (v) =>
        encodeBlkifRequest(v, 0, abi, {
          kind: 'discard', operation: 5, flag: 1, handle: 0x0102, id: 9n, sector_number: 0x800n, nr_sectors: 0xfedcba9876n,
        }),
      );
      return slot.subarray(0, abi === 'x86_64' ? 32 : 28);
    },
  },
  {
    label: 'blkif_request_indirect',
    cType: 'struct blkif_request_indirect',
    init: `{ .operation = 6, .indirect_op = 0, .nr_segments = 600, .id = 1, .sector_number = 2, .handle = 4,
      .indirect_grefs = { 10, 11, 12 } }`,
    encode: (abi) =>
      bytes(BLKIF_REQUEST.layouts[abi].size, (v) =>
        encodeBlkifRequest(v, 0, abi, {
          kind: 'indirect', operation: 6, indirect_op: 0, nr_segments: 600, id: 1n, sector_number: 2n, handle: 4,
          indirect_grefs: [10, 11, 12, 0, 0, 0, 0, 0],
        }),
      ).subarray(0, 64),
  },
  {
    label: 'blkif_response',
    cType: 'struct blkif_response',
    init: '{ .id = 0x8877665544332211ULL, .operation = 3, .status = -2 }',
    encode: (abi) =>
      bytes(BLKIF_RESPONSE.layouts[abi].size, (v) =>
        encodeBlkifResponse(v, 0, abi, { id: 0x8877665544332211n, operation: 3, status: -2 }),
      ),
  },
];

const netif: CodecSample[] = [
  {
    label: 'netif_tx_request',
    cType: 'struct netif_tx_request',
    init: '{ .gref = 0xa0b0c0d0, .offset = 0x0123, .flags = 0xc, .id = 0xfffe, .size = 1514 }',
    encode: () => bytes(12, (v) => encodeNetifTxRequest(v, 0, { gref: 0xa0b0c0d0, offset: 0x0123, flags: 0xc, id: 0xfffe, size: 1514 })),
  },
  {
    label: 'netif_rx_response',
    cType: 'struct netif_rx_response',
    init: '{ .id = 7, .offset = 66, .flags = 5, .status = -1 }',
    encode: () => bytes(8, (v) => encodeNetifRxResponse(v, 0, { id: 7, offset: 66, flags: 5, status: -1 })),
  },
  {
    label: 'netif_extra_info (gso)',
    cType: 'struct netif_extra_info',
    init: '{ .type = 1, .flags = 1, .u.gso = { .size = 1448, .type = 2, .features = 0x0102 } }',
    encode: () =>
      bytes(8, (v) => encodeNetifExtraInfo(v, 0, { kind: 'gso', flags: 1, size: 1448, type: 2, features: 0x0102 })),
  },
  {
    label: 'netif_extra_info (mcast_add)',
    cType: 'struct netif_extra_info',
    init: '{ .type = 2, .flags = 0, .u.mcast = { .addr = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb } } }',
    encode: () =>
      bytes(8, (v) =>
        encodeNetifExtraInfo(v, 0, { kind: 'mcast_add', flags: 0, addr: Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb) }),
      ),
  },
  {
    label: 'xen_netif_ctrl_request',
    cType: 'struct xen_netif_ctrl_request',
    init: '{ .id = 1, .type = 3, .data = { 0x11111111, 40, 0xffffffff } }',
    encode: () => bytes(16, (v) => encodeXenNetifCtrlRequest(v, 0, { id: 1, type: 3, data: [0x11111111, 40, 0xffffffff] })),
  },
  {
    label: 'xen_netif_ctrl_response',
    cType: 'struct xen_netif_ctrl_response',
    init: '{ .id = 1, .type = 4, .status = 2, .data = 128 }',
    encode: () => bytes(12, (v) => encodeXenNetifCtrlResponse(v, 0, { id: 1, type: 4, status: 2, data: 128 })),
  },
];

const misc: CodecSample[] = [
  {
    label: 'xsd_sockmsg',
    cType: 'struct xsd_sockmsg',
    init: '{ .type = 11, .req_id = 0xdeadbeef, .tx_id = 3, .len = 4096 }',
    encode: () => encodeXsdSockmsg({ type: 11, req_id: 0xdeadbeef, tx_id: 3, len: 4096 }),
  },
  {
    label: 'grant_entry_v1',
    cType: 'struct grant_entry_v1',
    init: '{ .flags = 0x0005, .domid = 0x7ff0, .frame = 0x12345 }',
    encode: () => bytes(8, (v) => encodeGrantEntryV1(v, 0, 0, { flags: 5, domid: 0x7ff0, frame: 0x12345 })),
  },
  {
    label: 'ioreq_t (bitfields)',
    cType: 'ioreq_t',
    init: `{ .addr = 0x1122334455667788ULL, .data = 0x99aabbccddeeff00ULL, .count = 3, .size = 4, .vp_eport = 7,
      .state = 2, .data_is_ptr = 1, .dir = 1, .df = 1, .type = 1 }`,
    encode: () =>
      bytes(32, (v) =>
        encodeIoreq(v, 0, {
          addr: 0x1122334455667788n, data: 0x99aabbccddeeff00n, count: 3, size: 4, vp_eport: 7,
          state: 2, data_is_ptr: true, dir: 1, df: true, type: 1,
        }),
      ),
  },
  {
    label: 'ioreq_t (write, state only)',
    cType: 'ioreq_t',
    init: '{ .state = 3, .dir = 0, .type = 0 }',
    encode: () =>
      bytes(32, (v) =>
        encodeIoreq(v, 0, {
          addr: 0n, data: 0n, count: 0, size: 0, vp_eport: 0, state: 3, data_is_ptr: false, dir: 0, df: false, type: 0,
        }),
      ),
  },
  {
    label: 'buf_ioreq_t (bitfields)',
    cType: 'buf_ioreq_t',
    init: '{ .type = 1, .dir = 1, .size = 2, .addr = 0xabcde, .data = 0x12345678 }',
    encode: () => bytes(8, (v) => encodeBufIoreq(v, 0, { type: 1, dir: 1, size: 4, addr: 0xabcde, data: 0x12345678 })),
  },
];

export const CODEC_SAMPLES: readonly CodecSample[] = [...blkif, ...netif, ...misc];
