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
  encodeBlkifSegmentFields(view, offset, s.gref, s.first_sect, s.last_sect);
}

/** `struct blkif_request_segment` from plain numbers (an indirect page's entry, or a slot's). */
export function encodeBlkifSegmentFields(view: DataView, offset: number, gref: number, firstSect: number, lastSect: number): void {
  const f = BLKIF_REQUEST_SEGMENT.layouts.x86_64.fields;
  view.setUint32(offset + f.gref, gref, true);
  view.setUint8(offset + f.first_sect, firstSect);
  view.setUint8(offset + f.last_sect, lastSect);
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
  zeroBlkifRequest(view, offset, abi);
  switch (req.kind) {
    case 'rw':
      return encodeRw(view, offset, abi, req);
    case 'discard':
      return encodeBlkifDiscardFields(view, offset, abi, req.flag, req.handle, req.id, req.sector_number, req.nr_sectors);
    case 'indirect': {
      encodeBlkifIndirectFields(view, offset, abi, req.indirect_op, req.nr_segments, req.handle, req.id, req.sector_number);
      const n = Math.min(req.indirect_grefs.length, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
      for (let i = 0; i < n; i++) encodeBlkifIndirectGref(view, offset, abi, i, req.indirect_grefs[i]!);
      return;
    }
  }
}

function encodeRw(view: DataView, offset: number, abi: AbiName, req: BlkifRwRequest): void {
  if (req.seg.length > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
    throw new RangeError(`blkif: ${req.seg.length} segments > ${BLKIF_MAX_SEGMENTS_PER_REQUEST}`);
  }
  encodeBlkifRwFields(view, offset, abi, req.operation, req.nr_segments, req.handle, req.id, req.sector_number);
  for (let i = 0; i < req.seg.length; i++) {
    const s = req.seg[i]!;
    encodeBlkifRwSegment(view, offset, abi, i, s.gref, s.first_sect, s.last_sect);
  }
}

/*
 * Field-by-field encoders from plain numbers: a frontend's hot path builds each request in its
 * slot with no request record, segment records or BigInt per request. encodeBlkifRequest is
 * written with them, so both give the same bytes. The slot must be zeroed first
 * (zeroBlkifRequest); fields not written (e.g. a handle of 0) stay zero.
 */

/**
 * A u64 field: a bigint, or a number that is a non-negative safe integer, written as two
 * little-endian u32 halves (the bytes setBigUint64 writes, without making a BigInt).
 */
export type U64 = bigint | number;

/** The u64 whose little-endian u32 halves are `low` and `high` (an id or sector kept as two words). */
export function u64FromWords(low: number, high: number): bigint {
  return (BigInt(high) << 32n) | BigInt(low);
}

function setU64(view: DataView, offset: number, v: U64): void {
  if (typeof v === 'bigint') {
    view.setBigUint64(offset, v, true);
    return;
  }
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`blkif: ${v} is not a u64 below 2^53`);
  view.setUint32(offset, v >>> 0, true);
  view.setUint32(offset + 4, Math.floor(v / 0x1_0000_0000), true);
}

/** Zero the whole request slot for the ABI (padding and unused segments included). */
export function zeroBlkifRequest(view: DataView, offset: number, abi: AbiName): void {
  zeroBytes(view, offset, BLKIF_REQUEST.layouts[abi].size);
}

/** `struct blkif_request` without its segments (READ, WRITE, WRITE_BARRIER, FLUSH_DISKCACHE). */
export function encodeBlkifRwFields(view: DataView, offset: number, abi: AbiName, operation: number, nrSegments: number, handle: number, id: U64, sector: U64): void {
  const f = BLKIF_REQUEST.layouts[abi].fields;
  view.setUint8(offset + f.operation, operation);
  view.setUint8(offset + f.nr_segments, nrSegments);
  view.setUint16(offset + f.handle, handle, true);
  setU64(view, offset + f.id, id);
  setU64(view, offset + f.sector_number, sector);
}

/** Segment `index` (< BLKIF_MAX_SEGMENTS_PER_REQUEST) of a `struct blkif_request` slot. */
export function encodeBlkifRwSegment(view: DataView, offset: number, abi: AbiName, index: number, gref: number, firstSect: number, lastSect: number): void {
  if (index >= BLKIF_MAX_SEGMENTS_PER_REQUEST) throw new RangeError(`blkif: segment ${index} of ${BLKIF_MAX_SEGMENTS_PER_REQUEST}`);
  const at = offset + BLKIF_REQUEST.layouts[abi].fields.seg + index * BLKIF_REQUEST_SEGMENT.layouts.x86_64.size;
  encodeBlkifSegmentFields(view, at, gref, firstSect, lastSect);
}

/** `struct blkif_request_discard` (operation BLKIF_OP_DISCARD). */
export function encodeBlkifDiscardFields(view: DataView, offset: number, abi: AbiName, flag: number, handle: number, id: U64, sector: U64, nrSectors: U64): void {
  const f = BLKIF_REQUEST_DISCARD.layouts[abi].fields;
  view.setUint8(offset + f.operation, BLKIF_OP_DISCARD);
  view.setUint8(offset + f.flag, flag);
  view.setUint16(offset + f.handle, handle, true);
  setU64(view, offset + f.id, id);
  setU64(view, offset + f.sector_number, sector);
  setU64(view, offset + f.nr_sectors, nrSectors);
}

/** `struct blkif_request_indirect` (operation BLKIF_OP_INDIRECT) without its indirect_grefs. */
export function encodeBlkifIndirectFields(view: DataView, offset: number, abi: AbiName, indirectOp: number, nrSegments: number, handle: number, id: U64, sector: U64): void {
  const f = BLKIF_REQUEST_INDIRECT.layouts[abi].fields;
  view.setUint8(offset + f.operation, BLKIF_OP_INDIRECT);
  view.setUint8(offset + f.indirect_op, indirectOp);
  view.setUint16(offset + f.nr_segments, nrSegments, true);
  setU64(view, offset + f.id, id);
  setU64(view, offset + f.sector_number, sector);
  view.setUint16(offset + f.handle, handle, true);
}

/** `indirect_grefs[index]` (< BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST) of an indirect request. */
export function encodeBlkifIndirectGref(view: DataView, offset: number, abi: AbiName, index: number, gref: number): void {
  if (index >= BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST) throw new RangeError(`blkif: indirect page ${index} of ${BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST}`);
  view.setUint32(offset + BLKIF_REQUEST_INDIRECT.layouts[abi].fields.indirect_grefs + 4 * index, gref, true);
}

/**
 * Zero `n` bytes of `view` at `offset` (no view object per slot: the ring's hot path). +0 as
 * a float64 is eight zero bytes: half the stores of u32 words (a request slot is 14, not 28).
 */
function zeroBytes(view: DataView, offset: number, n: number): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) view.setFloat64(offset + i, 0);
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

/**
 * A response as a frontend checks it, with the id as two u32 halves: no BigInt per response
 * (a frontend's ids are small; a hostile `idHigh` is just another unknown id).
 */
export interface BlkifResponseWords {
  idLow: number;
  idHigh: number;
  operation: number;
  status: number;
}

/** decodeBlkifResponse into a caller's reused record (each field read once). */
export function decodeBlkifResponseInto(view: DataView, offset: number, abi: AbiName, out: BlkifResponseWords): BlkifResponseWords {
  const f = BLKIF_RESPONSE.layouts[abi].fields;
  out.idLow = view.getUint32(offset + f.id, true);
  out.idHigh = view.getUint32(offset + f.id + 4, true);
  out.operation = view.getUint8(offset + f.operation);
  out.status = view.getInt16(offset + f.status, true);
  return out;
}

/** Write a response; the response's own bytes (padding included) are zeroed first. */
export function encodeBlkifResponse(view: DataView, offset: number, abi: AbiName, rsp: BlkifResponse): void {
  const l = BLKIF_RESPONSE.layouts[abi];
  zeroBytes(view, offset, l.size);
  view.setBigUint64(offset + l.fields.id, rsp.id, true);
  view.setUint8(offset + l.fields.operation, rsp.operation);
  view.setInt16(offset + l.fields.status, rsp.status, true);
}

/**
 * A direct READ or WRITE (`struct blkif_request`) as plain numbers, for a backend's hot path:
 * the id and sector as two u32 halves (no BigInt), the segments in typed arrays (no record
 * per segment). A caller decodes every request into the same record (decodeBlkifRwInto).
 */
export interface BlkifRwWords {
  operation: number;
  /** As the peer wrote it (0..255); the arrays hold min(nrSegments, 11) segments. */
  nrSegments: number;
  handle: number;
  idLow: number;
  idHigh: number;
  sectorLow: number;
  sectorHigh: number;
  readonly grefs: Uint32Array;
  readonly firstSect: Uint8Array;
  readonly lastSect: Uint8Array;
}

export function newBlkifRwWords(): BlkifRwWords {
  const n = BLKIF_MAX_SEGMENTS_PER_REQUEST;
  return {
    operation: 0,
    nrSegments: 0,
    handle: 0,
    idLow: 0,
    idHigh: 0,
    sectorLow: 0,
    sectorHigh: 0,
    grefs: new Uint32Array(n),
    firstSect: new Uint8Array(n),
    lastSect: new Uint8Array(n),
  };
}

/** decodeRw into a caller's reused record: the same fields, each read once (a private copy's bytes). */
export function decodeBlkifRwInto(view: DataView, offset: number, abi: AbiName, out: BlkifRwWords): BlkifRwWords {
  const f = BLKIF_REQUEST.layouts[abi].fields;
  const nr = view.getUint8(offset + f.nr_segments);
  const count = nr < BLKIF_MAX_SEGMENTS_PER_REQUEST ? nr : BLKIF_MAX_SEGMENTS_PER_REQUEST;
  const s = BLKIF_REQUEST_SEGMENT.layouts.x86_64;
  out.operation = view.getUint8(offset + f.operation);
  out.nrSegments = nr;
  out.handle = view.getUint16(offset + f.handle, true);
  out.idLow = view.getUint32(offset + f.id, true);
  out.idHigh = view.getUint32(offset + f.id + 4, true);
  out.sectorLow = view.getUint32(offset + f.sector_number, true);
  out.sectorHigh = view.getUint32(offset + f.sector_number + 4, true);
  for (let i = 0, at = offset + f.seg; i < count; i++, at += s.size) {
    out.grefs[i] = view.getUint32(at + s.fields.gref, true);
    out.firstSect[i] = view.getUint8(at + s.fields.first_sect);
    out.lastSect[i] = view.getUint8(at + s.fields.last_sect);
  }
  return out;
}

/** A direct READ or WRITE of 1..11 segments: the request both sides keep to its own length. */
export function isDirectRw(op: number, nr: number): boolean {
  return (op === BLKIF_OP_READ || op === BLKIF_OP_WRITE) && nr >= 1 && nr <= BLKIF_MAX_SEGMENTS_PER_REQUEST;
}

/**
 * The bytes of a blkif request of operation `op` and `nr` segments: a direct READ/WRITE is its
 * header and its `nr` segments (a 4 KiB request: 32 of 112 bytes on x86_64), any other
 * request the whole struct. Linux's blkfront copies a whole request into its slot and blkback
 * a whole one out of it (RING_COPY_REQUEST); the unused segment slots carry nothing either
 * side reads.
 */
export function blkifRequestBytes(abi: AbiName): (op: number, nr: number) => number {
  const { size, fields: f } = BLKIF_REQUEST.layouts[abi];
  const segSize = BLKIF_REQUEST_SEGMENT.layouts[abi].size;
  return (op, nr) => (isDirectRw(op, nr) ? f.seg + nr * segSize : size);
}

/** RingCodec.requestLength for blkif: `blkifRequestBytes` of the request whose head is `head`. */
export function blkifRequestLength(abi: AbiName): (head: DataView) => number {
  const f = BLKIF_REQUEST.layouts[abi].fields;
  const bytes = blkifRequestBytes(abi);
  return (head) => bytes(head.getUint8(f.operation), head.getUint8(f.nr_segments));
}

/** encodeBlkifResponse with the id as two u32 halves (the same bytes, no BigInt). */
export function encodeBlkifResponseFields(view: DataView, offset: number, abi: AbiName, idLow: number, idHigh: number, operation: number, status: number): void {
  const l = BLKIF_RESPONSE.layouts[abi];
  zeroBytes(view, offset, l.size);
  view.setUint32(offset + l.fields.id, idLow, true);
  view.setUint32(offset + l.fields.id + 4, idHigh, true);
  view.setUint8(offset + l.fields.operation, operation);
  view.setInt16(offset + l.fields.status, status, true);
}
