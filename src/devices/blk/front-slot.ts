/**
 * A blkfront queue's shadow slots and the ring codec that writes a request straight from one.
 *
 * Linux blkfront keeps a `blk_shadow` per ring slot and uses its index as the request id; so
 * does FrontQueue. A `Slot` is made once per ring entry and reused for every request that
 * takes that id: it holds the chunk, the operation sent (a response must name it) and the
 * pages granted for it. Everything the ring slot says follows from it, so the codec encodes
 * the request from the slot itself (ids and sectors as numbers; a direct READ/WRITE with the
 * layout's offsets, discard and indirect with abi's field encoders): no request record,
 * segment records, page arrays or BigInt per request. The bytes are those of
 * `encodeBlkifRequest` for the equivalent record (front-slot.test.ts).
 */
import {
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_REQUEST,
  BLKIF_REQUEST_SEGMENT,
  BLKIF_RESPONSE,
} from '../../abi/io/blkif.js';
import {
  blkifRequestBytes,
  blkifRequestLength,
  decodeBlkifResponseInto,
  encodeBlkifDiscardFields,
  encodeBlkifSegmentFields,
  encodeBlkifIndirectFields,
  encodeBlkifIndirectGref,
  encodeBlkifResponse,
  u64FromWords,
  zeroBlkifRequest,
  type BlkifResponseWords,
} from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import { BugError, type DomId } from '../../base/index.js';
import type { RingCodec } from '../../ring/index.js';
import type { BlkBuffer } from './blk-buffer.js';
import type { GrantedPage } from './front-grants.js';
import type { Chunk } from './front-queue.js';

const NO_REFS = new Uint32Array(0);

/** One ring slot's request while it is in flight (Linux `struct blk_shadow`). */
export class Slot {
  /** The chunk in flight with this id; undefined while the slot is free. */
  chunk: Chunk | undefined = undefined;
  /** The operation sent (READ, WRITE, FLUSH, BARRIER, DISCARD): what the response must name. */
  operation = 0;
  /** Data segments: pages[0..segments) are data pages, one per 4 KiB of the chunk. */
  segments = 0;
  /** Pages granted for the request: the data pages, then the indirect pages (if any). */
  pageCount = 0;
  /** The pages by index; entries past pageCount are stale (reused arrays never shrink). */
  readonly pages: (GrantedPage | undefined)[] = [];
  /** Per page: it came from the queue's persistent pool (and goes back to it). */
  readonly pooled: boolean[] = [];
  /**
   * The data pages are a persistent buffer's own (kept: nothing to give back for them), named
   * by their grant refs `keptRefs[keptFirst..keptFirst+segments)`; `pages` then holds only the
   * indirect pages, from index `segments` on. `ref(i)` reads either.
   */
  keptData = false;
  keptRefs: Uint32Array = NO_REFS;
  keptFirst = 0;

  constructor(
    /** The request id: this slot's index in the shadow table. */
    readonly id: number,
  ) {}

  /** Take the slot for `chunk`; pages are added with addPage. */
  begin(chunk: Chunk, operation: number): void {
    this.chunk = chunk;
    this.operation = operation;
    this.segments = 0;
    this.pageCount = 0;
    this.keptData = false;
  }

  /** The data pages of a chunk on a persistent buffer: its kept pages `first..first+n` (BlkBuffer.keptRefs). */
  addKept(buf: Pick<BlkBuffer, 'keptRefs'>, remote: DomId, first: number, n: number): void {
    this.keptRefs = buf.keptRefs(remote, first, n);
    this.keptFirst = first;
    for (let i = 0; i < n; i++) this.pooled[i] = false;
    this.pageCount = n;
    this.segments = n;
    this.keptData = true;
  }

  /** The grant ref of page `i` (a data page or an indirect one). */
  ref(i: number): number {
    return this.keptData && i < this.segments ? this.keptRefs[this.keptFirst + i]! : this.pages[i]!.ref;
  }

  addPage(page: GrantedPage, pooled: boolean): void {
    this.pages[this.pageCount] = page;
    this.pooled[this.pageCount] = pooled;
    this.pageCount++;
  }

  /** Drop the references the slot held (the pages are released by the queue first). */
  clear(): void {
    for (let i = this.keptData ? this.segments : 0; i < this.pageCount; i++) this.pages[i] = undefined;
    this.keptRefs = NO_REFS;
    this.pageCount = 0;
    this.segments = 0;
    this.chunk = undefined;
  }

  /** Whether the request goes out as BLKIF_OP_INDIRECT (more segments than a slot holds). */
  get indirect(): boolean {
    return this.segments > BLKIF_MAX_SEGMENTS_PER_REQUEST;
  }

  /** last_sect of data segment `i`: a chunk is page-aligned, so only its last page may be partial. */
  lastSect(i: number): number {
    const left = this.chunk!.sectors - i * 8;
    return (left < 8 ? left : 8) - 1;
  }
}

/**
 * The encoder of a slot's request for one ABI. A direct READ/WRITE (every 4 KiB I/O) is
 * written here with the layout's offsets taken once: abi's field encoders look the layout up
 * and check every u64 per call, ~57 ns a request against ~20 (guest CPU per 4 KiB read at
 * QD32). Its values were checked before: the id is a slot index, the sector a safe integer
 * (BlkFront.checkRange). Discard and indirect requests use abi's encoders.
 */
function slotEncoder(abi: AbiName): (s: Slot, view: DataView) => void {
  const f = BLKIF_REQUEST.layouts[abi].fields;
  const seg = BLKIF_REQUEST_SEGMENT.layouts[abi];
  const segSize = seg.size;
  const requestBytes = blkifRequestBytes(abi);
  const gref = f.seg + seg.fields.gref;
  const lastSect = f.seg + seg.fields.last_sect;
  return (s, view) => {
    const c = s.chunk;
    if (c === undefined) throw new BugError('encoding a free blkfront slot');
    if (s.operation === BLKIF_OP_DISCARD || s.indirect) return encodeOther(view, abi, s, c);
    // The request's own bytes (a READ/WRITE's header and segments) zeroed first, so padding,
    // handle 0 and first_sect 0 are 0; unused segment slots are left alone.
    const end = requestBytes(s.operation, s.segments);
    let i = 0;
    for (; i + 8 <= end; i += 8) view.setFloat64(i, 0);
    for (; i < end; i += 4) view.setUint32(i, 0, true);
    view.setUint8(f.operation, s.operation);
    view.setUint8(f.nr_segments, s.segments);
    view.setUint32(f.id, s.id, true);
    view.setUint32(f.sector_number, c.sector >>> 0, true);
    view.setUint32(f.sector_number + 4, Math.floor(c.sector / 0x1_0000_0000), true);
    for (let k = 0; k < s.segments; k++) {
      view.setUint32(gref + k * segSize, s.ref(k), true);
      view.setUint8(lastSect + k * segSize, s.lastSect(k));
    }
  };
}

/** A discard or an indirect request, with abi's encoders (the slot zeroed first). */
function encodeOther(view: DataView, abi: AbiName, s: Slot, c: Chunk): void {
  zeroBlkifRequest(view, 0, abi);
  if (s.operation === BLKIF_OP_DISCARD) {
    encodeBlkifDiscardFields(view, 0, abi, c.secure === true ? BLKIF_DISCARD_SECURE : 0, 0, s.id, c.sector, c.sectors);
    return;
  }
  // The segments are in the indirect pages (written when the request was built).
  encodeBlkifIndirectFields(view, 0, abi, s.operation, s.segments, 0, s.id, c.sector);
  for (let k = s.segments; k < s.pageCount; k++) encodeBlkifIndirectGref(view, 0, abi, k - s.segments, s.pages[k]!.ref);
}

/**
 * The blkif ring codec of one frontend queue: requests encoded from Slots, responses decoded
 * into one record owned by the codec (the queue consumes each before taking the next), so a
 * codec serves one ring. A front ring never reads requests.
 */
export function frontRingCodec(abi: AbiName): RingCodec<Slot, BlkifResponseWords> {
  const rsp: BlkifResponseWords = { idLow: 0, idHigh: 0, operation: 0, status: 0 };
  return {
    requestSize: BLKIF_REQUEST.layouts[abi].size,
    responseSize: BLKIF_RESPONSE.layouts[abi].size,
    entrySize: BLKIF_REQUEST.layouts[abi].size,
    // slotEncoder zeroes the request's own bytes first, encodeBlkifResponse the whole response
    // (front-slot.test.ts checks the claim), so the ring does not zero the slot again.
    encodesEveryByte: true,
    requestLength: blkifRequestLength(abi),
    encodeRequest: slotEncoder(abi),
    encodeResponse: (r, out) => encodeBlkifResponse(out, 0, abi, { id: u64FromWords(r.idLow, r.idHigh), operation: r.operation, status: r.status }),
    decodeRequest: () => {
      throw new BugError('a blkfront ring never reads requests');
    },
    decodeResponse: (bytes) => decodeBlkifResponseInto(bytes, 0, abi, rsp),
  };
}

/** Whether typed-array words are little-endian here (the wire is: blkif.h is x86's and Arm's). */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Write the segments `first..end` of `slot` into an indirect page (`page`, 4 KiB, 4-aligned):
 * one blkif_request_segment each, { gref u32 @0, first_sect 0 @4, last_sect @5, padding 0 },
 * the bytes encodeBlkifSegmentFields writes (front-slot.test.ts). Two word stores a segment:
 * abi's encoder makes four DataView calls, which over shared memory V8 does not inline; at
 * 256 segments a MiB they were 13 % of the guest's CPU on 1 MiB reads (perf, QD32).
 */
export function writeSegmentList(page: Uint8Array, slot: Slot, first: number, end: number): void {
  if (!LITTLE_ENDIAN || (page.byteOffset & 3) !== 0) {
    const view = new DataView(page.buffer, page.byteOffset, page.length);
    for (let i = first; i < end; i++) encodeBlkifSegmentFields(view, (i - first) * 8, slot.ref(i), 0, slot.lastSect(i));
    return;
  }
  const words = new Uint32Array(page.buffer, page.byteOffset, (end - first) * 2);
  for (let i = first, w = 0; i < end; i++, w += 2) {
    words[w] = slot.ref(i);
    words[w + 1] = slot.lastSect(i) << 8;
  }
}
