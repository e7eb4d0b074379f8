/**
 * The backend's request validator, sans-IO (reliability.md R3): a decoded ring request (a
 * private copy, abi/io/blkif-codec.ts) in, a plan or a rejection out. Nothing here touches
 * shared memory, grants or storage, so every rule is a table-driven unit test.
 *
 * The rules are Linux blkback's (`dispatch_rw_block_io`, `dispatch_discard_io`) and blkif.h's:
 * - READ/WRITE carry 1..11 segments, FLUSH_DISKCACHE and WRITE_BARRIER 0..11;
 * - INDIRECT carries 1..feature-max-indirect-segments segments in ceil(n/512) pages, and its
 *   `indirect_op` is READ or WRITE;
 * - each segment: `first_sect <= last_sect <= 7` ("first/last sector in the frame");
 * - the sector range lies inside the disk and is aligned to `sector-size`;
 * - nothing that writes is accepted on a read-only disk;
 * - unknown operations are answered BLKIF_RSP_EOPNOTSUPP.
 */
import {
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
  BLKIF_REQUEST_SEGMENT,
} from '../../abi/io/blkif.js';
import { type BlkifRequest, type BlkifRwWords, type BlkifSegment, u64FromWords } from '../../abi/io/blkif-codec.js';
import { SECTORS_PER_PAGE } from './protocol.js';

/** What the validator needs to know about the disk and the negotiated features. */
export interface RequestContext {
  /** Disk size in 512-byte sectors. */
  readonly sectors: number;
  readonly readOnly: boolean;
  /** `sector-size` / 512: offsets and lengths must be multiples of it. */
  readonly blockSectors: number;
  /** The advertised `feature-max-indirect-segments` (0: none advertised). */
  readonly maxIndirectSegments: number;
  readonly discard: boolean;
  readonly discardSecure: boolean;
}

/** Contiguous data of one request: `sectors` sectors from `sector`, spread over `segments`. */
export interface DataPlan {
  readonly write: boolean;
  readonly sector: number;
  readonly sectors: number;
  readonly segments: readonly BlkifSegment[];
}

export type Plan =
  | { readonly kind: 'rw'; readonly id: bigint; readonly operation: number; readonly data: DataPlan }
  /** FLUSH_DISKCACHE / WRITE_BARRIER, optionally with data to write between the flushes. */
  | { readonly kind: 'flush'; readonly id: bigint; readonly operation: number; readonly barrier: boolean; readonly data?: DataPlan }
  | { readonly kind: 'discard'; readonly id: bigint; readonly operation: number; readonly sector: number; readonly count: number; readonly secure: boolean }
  /** The segments are in indirect pages: map `grefs`, copy them, then `planIndirect`. `operation` is the indirect_op. */
  | { readonly kind: 'indirect'; readonly id: bigint; readonly operation: number; readonly write: boolean; readonly sector: bigint; readonly nrSegments: number; readonly grefs: readonly number[] }
  | { readonly kind: 'reject'; readonly id: bigint; readonly operation: number; readonly status: number; readonly why: string };

function reject(id: bigint, operation: number, status: number, why: string): Plan {
  return { kind: 'reject', id, operation, status, why };
}

export function planRequest(req: BlkifRequest, ctx: RequestContext): Plan {
  switch (req.kind) {
    case 'unknown':
      return reject(req.id, req.op, BLKIF_RSP_EOPNOTSUPP, `unknown operation ${req.op}`);
    case 'discard':
      return planDiscard(req.id, req.operation, req.flag, req.sector_number, req.nr_sectors, ctx);
    case 'indirect':
      return planIndirectHeader(req.id, req.indirect_op, req.nr_segments, req.sector_number, req.indirect_grefs, ctx);
    case 'rw':
      return planRw(req.id, req.operation, req.nr_segments, req.sector_number, req.seg, ctx);
  }
}

function planRw(id: bigint, op: number, nr: number, sector: bigint, seg: readonly BlkifSegment[], ctx: RequestContext): Plan {
  const isFlush = op === BLKIF_OP_FLUSH_DISKCACHE || op === BLKIF_OP_WRITE_BARRIER;
  // "nr_segments: number of segments" — 0 only makes sense for a pure flush.
  if ((nr === 0 && !isFlush) || nr > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
    return reject(id, op, BLKIF_RSP_ERROR, `bad nr_segments ${nr}`);
  }
  const write = op !== BLKIF_OP_READ;
  if (write && ctx.readOnly) return reject(id, op, BLKIF_RSP_ERROR, 'write to a read-only disk');
  if (isFlush && nr === 0) return { kind: 'flush', id, operation: op, barrier: op === BLKIF_OP_WRITE_BARRIER };
  const data = checkData(write, sector, seg, ctx);
  if (typeof data === 'string') return reject(id, op, BLKIF_RSP_ERROR, data);
  if (isFlush) return { kind: 'flush', id, operation: op, barrier: op === BLKIF_OP_WRITE_BARRIER, data };
  return { kind: 'rw', id, operation: op, data };
}

/** Segment and range checks shared by direct and indirect requests; a string is the reason to refuse. */
export function checkData(write: boolean, sector: bigint, seg: readonly BlkifSegment[], ctx: RequestContext): DataPlan | string {
  let sectors = 0;
  for (const s of seg) {
    const n = segmentSectors(s.first_sect, s.last_sect);
    if (n < 0) return `segment sectors ${s.first_sect}..${s.last_sect} outside the page`;
    sectors += n;
  }
  const why = checkRange(sector, Number(sector), sectors, ctx);
  return why ?? { write, sector: Number(sector), sectors, segments: seg };
}

/**
 * The checks of a direct READ/WRITE that came off the ring as numbers (ring-codec.ts
 * FastRwRequest: op READ or WRITE, 1..11 segments, as its decoder guarantees): the same rules
 * as planRw + checkData, on the same helpers. Its sector count, or the reason to refuse it.
 */
export function checkRwWords(req: BlkifRwWords, ctx: RequestContext): number | string {
  if (req.operation !== BLKIF_OP_READ && ctx.readOnly) return 'write to a read-only disk';
  const sectors = segmentWordsSectors(req, req.nrSegments);
  if (typeof sectors === 'string') return sectors;
  // hi·2^32 + lo is exact below 2^53; above it the rounded value is still past any disk's end.
  const start = req.sectorHigh * 0x1_0000_0000 + req.sectorLow;
  return checkRange(req, start, sectors, ctx) ?? sectors;
}

/** A request's segments as numbers, in arrays a caller reuses (no object per segment). */
export type SegmentWords = Pick<BlkifRwWords, 'grefs' | 'firstSect' | 'lastSect'>;

/** The sectors the first `n` segments span, or the reason one leaves its page. */
function segmentWordsSectors(w: SegmentWords, n: number): number | string {
  let sectors = 0;
  const first = w.firstSect;
  const last = w.lastSect;
  for (let i = 0; i < n; i++) {
    const k = segmentSectors(first[i]!, last[i]!);
    if (k < 0) return `segment sectors ${first[i]}..${last[i]} outside the page`;
    sectors += k;
  }
  return sectors;
}

/**
 * Sectors segment `first..last` spans, or -1 when it leaves its page ("first_sect: first sector
 * in frame to transfer (inclusive); last_sect: last sector in frame to transfer (inclusive)").
 */
export function segmentSectors(first: number, last: number): number {
  return last >= SECTORS_PER_PAGE || first > last ? -1 : last - first + 1;
}

/**
 * The request's sectors lie inside the disk and are aligned to `sector-size`; undefined when
 * they do, else the reason. `start` is the first sector as a number (rounding above 2^53 keeps
 * the order, and the disk's size is below it, so the comparisons stay exact where it matters);
 * `shown` is how the reason shows it.
 */
function checkRange(shown: bigint | BlkifRwWords, start: number, sectors: number, ctx: RequestContext): string | undefined {
  if (start > ctx.sectors || sectors > ctx.sectors - start) {
    return `sectors ${sectorText(shown)}+${sectors} past the end (${ctx.sectors})`;
  }
  if ((start % ctx.blockSectors) !== 0 || (sectors % ctx.blockSectors) !== 0) {
    return `sectors ${start}+${sectors} not aligned to the ${ctx.blockSectors * 512}-byte sector size`;
  }
  return undefined;
}

function sectorText(shown: bigint | BlkifRwWords): string {
  return typeof shown === 'bigint' ? String(shown) : String(u64FromWords(shown.sectorLow, shown.sectorHigh));
}

function planDiscard(id: bigint, op: number, flag: number, sector: bigint, count: bigint, ctx: RequestContext): Plan {
  if (!ctx.discard) return reject(id, op, BLKIF_RSP_EOPNOTSUPP, 'discard not offered');
  const secure = (flag & BLKIF_DISCARD_SECURE) !== 0;
  // "BLKIF_DISCARD_SECURE ... ignored if discard-secure=0": Linux answers EOPNOTSUPP rather
  // than silently doing an insecure discard, and so do we.
  if (secure && !ctx.discardSecure) return reject(id, op, BLKIF_RSP_EOPNOTSUPP, 'secure discard not offered');
  if (ctx.readOnly) return reject(id, op, BLKIF_RSP_ERROR, 'discard on a read-only disk');
  if (sector > BigInt(ctx.sectors) || count > BigInt(ctx.sectors) - sector) {
    return reject(id, op, BLKIF_RSP_ERROR, `discard ${sector}+${count} past the end`);
  }
  return { kind: 'discard', id, operation: op, sector: Number(sector), count: Number(count), secure };
}

function planIndirectHeader(
  id: bigint,
  indirectOp: number,
  nr: number,
  sector: bigint,
  grefs: readonly number[],
  ctx: RequestContext,
): Plan {
  // Responses to an indirect request carry its `indirect_op`, not BLKIF_OP_INDIRECT: Linux
  // blkback answers with it and Linux blkfront refuses anything else as "wrong operation".
  if (ctx.maxIndirectSegments === 0) return reject(id, indirectOp, BLKIF_RSP_EOPNOTSUPP, 'indirect not offered');
  if (indirectOp !== BLKIF_OP_READ && indirectOp !== BLKIF_OP_WRITE) {
    return reject(id, indirectOp, BLKIF_RSP_ERROR, `indirect_op ${indirectOp} is not READ or WRITE`);
  }
  if (nr === 0 || nr > ctx.maxIndirectSegments) return reject(id, indirectOp, BLKIF_RSP_ERROR, `bad indirect nr_segments ${nr}`);
  const write = indirectOp === BLKIF_OP_WRITE;
  if (write && ctx.readOnly) return reject(id, indirectOp, BLKIF_RSP_ERROR, 'write to a read-only disk');
  const pages = indirectPages(nr);
  return { kind: 'indirect', id, operation: indirectOp, write, sector, nrSegments: nr, grefs: grefs.slice(0, pages) };
}

/** INDIRECT_PAGES(n): pages of `struct blkif_request_segment` needed for n segments. */
export function indirectPages(nrSegments: number): number {
  return Math.ceil(nrSegments / BLKIF_SEGMENTS_PER_INDIRECT_PAGE);
}

/**
 * Decode an indirect request's segments from a private copy of its pages (`copy` holds the
 * pages back to back, taken once from the mapping) and check them: a plan with a segment
 * record each (blkback's asynchronous path). The rules are checkIndirectWords'.
 */
export function planIndirect(plan: Extract<Plan, { kind: 'indirect' }>, copy: Uint8Array, ctx: RequestContext): Plan {
  const n = plan.nrSegments;
  const w: SegmentWords = { grefs: new Uint32Array(n), firstSect: new Uint8Array(n), lastSect: new Uint8Array(n) };
  const sectors = checkIndirectWords(plan, copy, w, ctx);
  if (typeof sectors === 'string') return reject(plan.id, plan.operation, BLKIF_RSP_ERROR, sectors);
  const segments: BlkifSegment[] = [];
  for (let i = 0; i < n; i++) segments.push({ gref: w.grefs[i]!, first_sect: w.firstSect[i]!, last_sect: w.lastSect[i]! });
  return { kind: 'rw', id: plan.id, operation: plan.operation, data: { write: plan.write, sector: Number(plan.sector), sectors, segments } };
}

/**
 * An indirect request's segments decoded from the private copy of its pages (`copy`, segments
 * back to back) into `out` (reused arrays of `nrSegments` entries at least) and checked: each
 * inside its page, the range inside the disk and aligned. Its sector count, or the reason to
 * refuse it. blkback's synchronous path uses it as it is: no object per segment (at 256
 * segments a MiB, segment records and their plan were the disk thread's garbage, GC 6 % of it).
 */
export function checkIndirectWords(plan: Extract<Plan, { kind: 'indirect' }>, copy: Uint8Array, out: SegmentWords, ctx: RequestContext): number | string {
  const n = plan.nrSegments;
  // A private, unshared copy: DataView reads of it are inlined (and endian-explicit).
  const view = new DataView(copy.buffer, copy.byteOffset, n * SEGMENT_BYTES);
  const f = BLKIF_REQUEST_SEGMENT.layouts.x86_64.fields;
  for (let i = 0, at = 0; i < n; i++, at += SEGMENT_BYTES) {
    out.grefs[i] = view.getUint32(at + f.gref, true);
    out.firstSect[i] = view.getUint8(at + f.first_sect);
    out.lastSect[i] = view.getUint8(at + f.last_sect);
  }
  const sectors = segmentWordsSectors(out, n);
  if (typeof sectors === 'string') return sectors;
  return checkRange(plan.sector, Number(plan.sector), sectors, ctx) ?? sectors;
}

const SEGMENT_BYTES = BLKIF_REQUEST_SEGMENT.layouts.x86_64.size;

/** Byte offset of segment `s` within its page, and its length. */
export function segmentSpan(s: BlkifSegment): { offset: number; length: number } {
  return { offset: s.first_sect * 512, length: (s.last_sect - s.first_sect + 1) * 512 };
}
