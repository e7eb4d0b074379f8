/**
 * The entry array of a shared ring: geometry, and copy-once access to one slot.
 *
 * Copy-once (RING_COPY_REQUEST / RING_COPY_RESPONSE, XSA-155): an entry's bytes are copied
 * out of shared memory exactly once, into a private buffer, and decoded from that copy. An
 * entry is encoded privately (zero-filled first, so padding never carries stale bytes:
 * XSA-216) and then copied into its slot.
 */
import { type RingMemory } from './memory.js';
import { entrySizeOf, ringEntries, SRING_ENTRIES, type RingCodec } from './sring.js';

function align4(n: number): number {
  return (n + 3) & ~3;
}

export class RingSlots<Req, Rsp> {
  /** RING_SIZE: entries in the ring, a power of two. */
  readonly size: number;
  readonly entrySize: number;
  private readonly mask: number;
  // One private buffer holds the request and the response copy, so the memory's word fast
  // path sees the same buffer every time.
  private readonly scratch: Uint8Array;
  private readonly rspAt: number;
  private readonly reqView: DataView;
  private readonly rspView: DataView;

  constructor(
    readonly mem: RingMemory,
    readonly codec: RingCodec<Req, Rsp>,
  ) {
    this.entrySize = entrySizeOf(codec as RingCodec<unknown, unknown>);
    this.size = ringEntries(mem.byteLength, this.entrySize);
    this.mask = this.size - 1;
    this.rspAt = align4(codec.requestSize);
    this.scratch = new Uint8Array(this.rspAt + align4(codec.responseSize));
    this.reqView = new DataView(this.scratch.buffer, 0, codec.requestSize);
    this.rspView = new DataView(this.scratch.buffer, this.rspAt, codec.responseSize);
  }

  /** Byte offset of the slot for free-running index `idx`. */
  slotOffset(idx: number): number {
    return SRING_ENTRIES + (idx & this.mask) * this.entrySize;
  }

  writeRequest(idx: number, req: Req): void {
    const n = this.codec.requestSize;
    this.scratch.fill(0, 0, n);
    this.codec.encodeRequest(req, this.reqView);
    this.mem.copyIn(this.slotOffset(idx), this.scratch, 0, n);
  }

  writeResponse(idx: number, rsp: Rsp): void {
    const n = this.codec.responseSize;
    this.scratch.fill(0, this.rspAt, this.rspAt + n);
    this.codec.encodeResponse(rsp, this.rspView);
    this.mem.copyIn(this.slotOffset(idx), this.scratch, this.rspAt, n);
  }

  /** RING_COPY_REQUEST, then decode the private copy. */
  readRequest(idx: number): Req {
    this.mem.copyOut(this.slotOffset(idx), this.scratch, 0, this.codec.requestSize);
    return this.codec.decodeRequest(this.reqView);
  }

  /** RING_COPY_RESPONSE, then decode the private copy. */
  readResponse(idx: number): Rsp {
    this.mem.copyOut(this.slotOffset(idx), this.scratch, this.rspAt, this.codec.responseSize);
    return this.codec.decodeResponse(this.rspView);
  }
}
