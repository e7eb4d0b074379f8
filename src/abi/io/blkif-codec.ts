/**
 * Pure codecs for blkif ring slots (layouts in blkif.ts). Sans-IO: a DataView and an offset
 * in, plain values out. The decoders read each field exactly once (they are the copy of
 * RING_COPY_REQUEST) and validate nothing: a backend checks the returned record. Unknown
 * operations decode to `{ kind: 'unknown' }` so the backend can answer BLKIF_RSP_EOPNOTSUPP.
 */
import type { AbiName } from '../layout.js';
import {
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_REQUEST,
  BLKIF_REQUEST_DISCARD,
  BLKIF_REQUEST_INDIRECT,
  BLKIF_REQUEST_SEGMENT,
  BLKIF_RESPONSE,
} from './blkif.js';

export interface BlkifSegment {
  readonly gref: number;
  readonly first_sect: number;
  readonly last_sect: number;
}

/** Ops that use `struct blkif_request` (FLUSH/BARRIER may carry 0 segments). */
export type BlkifRwOp =
  | typeof BLKIF_OP_READ
  | typeof BLKIF_OP_WRITE
  | typeof BLKIF_OP_WRITE_BARRIER
  | typeof BLKIF_OP_FLUSH_DISKCACHE;

export interface BlkifRwRequest {
  readonly kind: 'rw';
  readonly operation: BlkifRwOp;
  /** As the peer wrote it (0..255); `seg` holds at most BLKIF_MAX_SEGMENTS_PER_REQUEST. */
  readonly nr_segments: number;
  readonly handle: number;
  readonly id: bigint;
  readonly sector_number: bigint;
  readonly seg: readonly BlkifSegment[];
}

export interface BlkifDiscardRequest {
  readonly kind: 'discard';
  readonly operation: typeof BLKIF_OP_DISCARD;
  readonly flag: number;
  readonly handle: number;
  readonly id: bigint;
  readonly sector_number: bigint;
  readonly nr_sectors: bigint;
}

export interface BlkifIndirectRequest {
  readonly kind: 'indirect';
  readonly operation: typeof BLKIF_OP_INDIRECT;
  /** Should be READ or WRITE; not checked here. */
  readonly indirect_op: number;
  readonly nr_segments: number;
  readonly id: bigint;
  readonly sector_number: bigint;
  readonly handle: number;
  /** All 8 slots as written; how many are meaningful follows from nr_segments. */
  readonly indirect_grefs: readonly number[];
}

export interface BlkifUnknownRequest {
  readonly kind: 'unknown';
  readonly op: number;
  /** Every request layout has `id` at the same offset, so even an unknown op can be answered. */
  readonly id: bigint;
}

export type BlkifRequest = BlkifRwRequest | BlkifDiscardRequest | BlkifIndirectRequest | BlkifUnknownRequest;

/** Request kinds a frontend encodes (an unknown op is only ever decoded). */
export type BlkifRequestOut = BlkifRwRequest | BlkifDiscardRequest | BlkifIndirectRequest;

export interface BlkifResponse {
  readonly id: bigint;
  readonly operation: number;
  readonly status: number;
}

export function decodeBlkifSegment(view: DataView, offset: number): BlkifSegment {
  const f = BLKIF_REQUEST_SEGMENT.layouts.x86_64.fields;
  return {
    gref: view.getUint32(offset + f.gref, true),
    first_sect: view.getUint8(offset + f.first_sect),
    last_sect: view.getUint8(offset + f.last_sect),
  };
}

export function encodeBlkifSegment(view: DataView, offset: number, s: BlkifSegment): void {
  const f = BLKIF_REQUEST_SEGMENT.layouts.x86_64.fields;
  view.setUint32(offset + f.gref, s.gref, true);
  view.setUint8(offset + f.first_sect, s.first_sect);
  view.setUint8(offset + f.last_sect, s.last_sect);
  view.setUint16(offset + f.last_sect + 1, 0, true); // padding: never leak stale bytes
}

export function decodeBlkifRequest(view: DataView, offset: number, abi: AbiName): BlkifRequest {
  const op = view.getUint8(offset);
  switch (op) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
    case BLKIF_OP_WRITE_BARRIER:
    case BLKIF_OP_FLUSH_DISKCACHE:
      return decodeRw(view, offset, abi, op);
    case BLKIF_OP_DISCARD:
      return decodeDiscard(view, offset, abi);
    case BLKIF_OP_INDIRECT:
      return decodeIndirect(view, offset, abi);
    default:
      return { kind: 'unknown', op, id: view.getBigUint64(offset + BLKIF_REQUEST.layouts[abi].fields.id, true) };
  }
}

function decodeRw(view: DataView, offset: number, abi: AbiName, operation: BlkifRwOp): BlkifRwRequest {
  const f = BLKIF_REQUEST.layouts[abi].fields;
  const nr = view.getUint8(offset + f.nr_segments);
  const count = nr < BLKIF_MAX_SEGMENTS_PER_REQUEST ? nr : BLKIF_MAX_SEGMENTS_PER_REQUEST;
  const seg = new Array<BlkifSegment>(count);
  const stride = BLKIF_REQUEST_SEGMENT.layouts.x86_64.size;
  for (let i = 0; i < count; i++) seg[i] = decodeBlkifSegment(view, offset + f.seg + i * stride);
  return {
    kind: 'rw',
    operation,
    nr_segments: nr,
    handle: view.getUint16(offset + f.handle, true),
    id: view.getBigUint64(offset + f.id, true),
    sector_number: view.getBigUint64(offset + f.sector_number, true),
    seg,
  };
}

function decodeDiscard(view: DataView, offset: number, abi: AbiName): BlkifDiscardRequest {
  const f = BLKIF_REQUEST_DISCARD.layouts[abi].fields;
  return {
    kind: 'discard',
    operation: BLKIF_OP_DISCARD,
    flag: view.getUint8(offset + f.flag),
    handle: view.getUint16(offset + f.handle, true),
    id: view.getBigUint64(offset + f.id, true),
    sector_number: view.getBigUint64(offset + f.sector_number, true),
    nr_sectors: view.getBigUint64(offset + f.nr_sectors, true),
  };
}

function decodeIndirect(view: DataView, offset: number, abi: AbiName): BlkifIndirectRequest {
  const f = BLKIF_REQUEST_INDIRECT.layouts[abi].fields;
  const indirect_grefs: number[] = [];
  for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) {
    indirect_grefs.push(view.getUint32(offset + f.indirect_grefs + 4 * i, true));
  }
  return {
    kind: 'indirect',
    operation: BLKIF_OP_INDIRECT,
    indirect_op: view.getUint8(offset + f.indirect_op),
    nr_segments: view.getUint16(offset + f.nr_segments, true),
    id: view.getBigUint64(offset + f.id, true),
    sector_number: view.getBigUint64(offset + f.sector_number, true),
    handle: view.getUint16(offset + f.handle, true),
    indirect_grefs,
  };
}

/**
 * Write a request into a slot. The whole slot (`sizeof(struct blkif_request)` for the ABI) is
 * zeroed first, so padding and unused segments never carry stale bytes to the peer.
 */
export function encodeBlkifRequest(view: DataView, offset: number, abi: AbiName, req: BlkifRequestOut): void {
  zeroBytes(view, offset, BLKIF_REQUEST.layouts[abi].size);
  switch (req.kind) {
    case 'rw':
      return encodeRw(view, offset, abi, req);
    case 'discard': {
      const f = BLKIF_REQUEST_DISCARD.layouts[abi].fields;
      view.setUint8(offset + f.operation, BLKIF_OP_DISCARD);
      view.setUint8(offset + f.flag, req.flag);
      view.setUint16(offset + f.handle, req.handle, true);
      view.setBigUint64(offset + f.id, req.id, true);
      view.setBigUint64(offset + f.sector_number, req.sector_number, true);
      view.setBigUint64(offset + f.nr_sectors, req.nr_sectors, true);
      return;
    }
    case 'indirect': {
      const f = BLKIF_REQUEST_INDIRECT.layouts[abi].fields;
      view.setUint8(offset + f.operation, BLKIF_OP_INDIRECT);
      view.setUint8(offset + f.indirect_op, req.indirect_op);
      view.setUint16(offset + f.nr_segments, req.nr_segments, true);
      view.setBigUint64(offset + f.id, req.id, true);
      view.setBigUint64(offset + f.sector_number, req.sector_number, true);
      view.setUint16(offset + f.handle, req.handle, true);
      const n = Math.min(req.indirect_grefs.length, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
      for (let i = 0; i < n; i++) view.setUint32(offset + f.indirect_grefs + 4 * i, req.indirect_grefs[i]!, true);
      return;
    }
  }
}

function encodeRw(view: DataView, offset: number, abi: AbiName, req: BlkifRwRequest): void {
  const f = BLKIF_REQUEST.layouts[abi].fields;
  if (req.seg.length > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
    throw new RangeError(`blkif: ${req.seg.length} segments > ${BLKIF_MAX_SEGMENTS_PER_REQUEST}`);
  }
  view.setUint8(offset + f.operation, req.operation);
  view.setUint8(offset + f.nr_segments, req.nr_segments);
  view.setUint16(offset + f.handle, req.handle, true);
  view.setBigUint64(offset + f.id, req.id, true);
  view.setBigUint64(offset + f.sector_number, req.sector_number, true);
  const stride = BLKIF_REQUEST_SEGMENT.layouts.x86_64.size;
  for (let i = 0; i < req.seg.length; i++) encodeBlkifSegment(view, offset + f.seg + i * stride, req.seg[i]!);
}

/** Zero `n` bytes of `view` at `offset` (no view object per slot: the ring's hot path). */
function zeroBytes(view: DataView, offset: number, n: number): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) view.setUint32(offset + i, 0, true);
  for (; i < n; i++) view.setUint8(offset + i, 0);
}

export function decodeBlkifResponse(view: DataView, offset: number, abi: AbiName): BlkifResponse {
  const f = BLKIF_RESPONSE.layouts[abi].fields;
  return {
    id: view.getBigUint64(offset + f.id, true),
    operation: view.getUint8(offset + f.operation),
    status: view.getInt16(offset + f.status, true),
  };
}

/** Write a response; the response's own bytes (padding included) are zeroed first. */
export function encodeBlkifResponse(view: DataView, offset: number, abi: AbiName, rsp: BlkifResponse): void {
  const l = BLKIF_RESPONSE.layouts[abi];
  zeroBytes(view, offset, l.size);
  view.setBigUint64(offset + l.fields.id, rsp.id, true);
  view.setUint8(offset + l.fields.operation, rsp.operation);
  view.setInt16(offset + l.fields.status, rsp.status, true);
}
