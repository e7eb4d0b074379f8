/**
 * The entry array of a shared ring: geometry, and copy-once access to one slot.
 *
 * Reading (RING_COPY_REQUEST / RING_COPY_RESPONSE, XSA-155): an entry's bytes are copied out
 * of shared memory exactly once, into a private buffer, and decoded from that copy.
 *
 * Writing: an entry is built in its slot field by field after the slot is zeroed, so padding
 * never carries stale bytes (the XSA-216 fix: "build the response in place, field by
 * field"); the zeroing is skipped for codecs that declare they write every byte. A slot that
 * straddles a page boundary, or a memory that is not plain pages, is built in a private
 * buffer and copied in.
 */
import { BugError } from '../base/index.js';
import { PagedMemory, RING_PAGE_SIZE, type RingMemory } from './memory.js';
import { entrySizeOf, ringEntries, SRING_ENTRIES, type RingCodec } from './sring.js';

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Direct access to one slot that lies inside one plain page. */
interface SlotView {
  readonly words: Int32Array;
  /** Index in `words` of the slot's first word. */
  readonly base: number;
  readonly req: DataView;
  readonly rsp: DataView;
}

export class RingSlots<Req, Rsp> {
  /** RING_SIZE: entries in the ring, a power of two. */
  readonly size: number;
  readonly entrySize: number;
  private readonly mask: number;
  // One private buffer holds the request and the response copy.
  private readonly scratch: Uint8Array;
  private readonly scratchWords: Int32Array;
  private readonly rspAt: number;
  private readonly reqView: DataView;
  private readonly rspView: DataView;
  /** Per slot: direct access, or undefined (straddles a page, or not plain pages). */
  private readonly direct: (SlotView | undefined)[] = [];
  private readonly zeroReq: boolean;
  private readonly zeroRsp: boolean;

  constructor(
    readonly mem: RingMemory,
    readonly codec: RingCodec<Req, Rsp>,
  ) {
    this.entrySize = entrySizeOf(codec as RingCodec<unknown, unknown>);
    if (codec.requestLength !== undefined && codec.requestSize < HEAD_BYTES) {
      throw new BugError(`a ${codec.requestSize}-byte request has no ${HEAD_BYTES}-byte head for requestLength`);
    }
    this.size = ringEntries(mem.byteLength, this.entrySize);
    this.mask = this.size - 1;
    this.rspAt = align4(codec.requestSize);
    this.scratch = new Uint8Array(this.rspAt + align4(codec.responseSize));
    this.scratchWords = new Int32Array(this.scratch.buffer);
    this.reqView = new DataView(this.scratch.buffer, 0, codec.requestSize);
    this.rspView = new DataView(this.scratch.buffer, this.rspAt, codec.responseSize);
    this.zeroReq = codec.encodesEveryByte !== true;
    this.zeroRsp = codec.encodesEveryByte !== true;
    const wordSized = this.entrySize % 4 === 0 && codec.requestSize % 4 === 0 && codec.responseSize % 4 === 0;
    for (let i = 0; i < this.size; i++) {
      this.direct.push(mem instanceof PagedMemory && wordSized ? this.slotView(mem, i) : undefined);
    }
  }

  private slotView(mem: PagedMemory, i: number): SlotView | undefined {
    const off = this.slotOffset(i);
    const inPage = off % RING_PAGE_SIZE;
    if (inPage + this.entrySize > RING_PAGE_SIZE) return undefined;
    const page = mem.page(Math.floor(off / RING_PAGE_SIZE));
    const at = page.byteOffset + inPage;
    return {
      words: mem.pageWords(Math.floor(off / RING_PAGE_SIZE)),
      base: inPage >>> 2,
      req: new DataView(page.buffer, at, this.codec.requestSize),
      rsp: new DataView(page.buffer, at, this.codec.responseSize),
    };
  }

  /** Byte offset of the slot for free-running index `idx`. */
  slotOffset(idx: number): number {
    return SRING_ENTRIES + (idx & this.mask) * this.entrySize;
  }

  writeRequest(idx: number, req: Req): void {
    const n = this.codec.requestSize;
    const slot = this.direct[idx & this.mask];
    if (slot !== undefined) {
      if (this.zeroReq) zeroWords(slot.words, slot.base, n >>> 2);
      this.codec.encodeRequest(req, slot.req);
      return;
    }
    this.scratch.fill(0, 0, n);
    this.codec.encodeRequest(req, this.reqView);
    this.mem.copyIn(this.slotOffset(idx), this.scratch, 0, n);
  }

  writeResponse(idx: number, rsp: Rsp): void {
    const n = this.codec.responseSize;
    const slot = this.direct[idx & this.mask];
    if (slot !== undefined) {
      if (this.zeroRsp) zeroWords(slot.words, slot.base, n >>> 2);
      this.codec.encodeResponse(rsp, slot.rsp);
      return;
    }
    this.scratch.fill(0, this.rspAt, this.rspAt + n);
    this.codec.encodeResponse(rsp, this.rspView);
    this.mem.copyIn(this.slotOffset(idx), this.scratch, this.rspAt, n);
  }

  /**
   * RING_COPY_REQUEST, then decode the private copy. With `codec.requestLength`, the first 4
   * bytes are copied, the request's length taken from that copy, and only the rest of the
   * request copied after them: still one read of each byte, and none of the slot past it.
   */
  readRequest(idx: number): Req {
    const length = this.codec.requestLength;
    const size = this.codec.requestSize;
    if (length === undefined) {
      this.copyOut(idx, 0, 0, size);
    } else {
      this.copyOut(idx, 0, 0, HEAD_BYTES);
      this.copyOut(idx, HEAD_BYTES, HEAD_BYTES, requestBytesOf(length(this.reqView), size) - HEAD_BYTES);
    }
    return this.codec.decodeRequest(this.reqView, idx);
  }

  /** RING_COPY_RESPONSE, then decode the private copy. */
  readResponse(idx: number): Rsp {
    this.copyOut(idx, 0, this.rspAt, this.codec.responseSize);
    return this.codec.decodeResponse(this.rspView);
  }

  /**
   * Copy bytes [from, from + n) of the slot of `idx` into scratch[at..]: one read of each
   * shared byte. On a direct slot all three are multiples of 4 (the constructor's wordSized).
   */
  private copyOut(idx: number, from: number, at: number, n: number): void {
    const slot = this.direct[idx & this.mask];
    if (slot === undefined) {
      this.mem.copyOut(this.slotOffset(idx) + from, this.scratch, at, n);
      return;
    }
    const w = this.scratchWords;
    const words = slot.words;
    for (let k = 0, f = slot.base + (from >>> 2), t = at >>> 2, end = n >>> 2; k < end; k++) w[t + k] = words[f + k]!;
  }
}

/** The request head `RingCodec.requestLength` is given: the first word of the slot. */
const HEAD_BYTES = 4;

/**
 * A codec's request length rounded up to whole words (a direct slot copies words), within
 * [HEAD_BYTES, `size`] whatever the codec answered.
 */
function requestBytesOf(bytes: number, size: number): number {
  const rounded = (Math.ceil(bytes / 4) * 4) | 0;
  return rounded >= HEAD_BYTES && rounded <= size ? rounded : size;
}

function zeroWords(words: Int32Array, base: number, count: number): void {
  for (let k = 0; k < count; k++) words[base + k] = 0;
}
