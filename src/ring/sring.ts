/**
 * The shared ring page header and ring geometry of `io/ring.h`, and the codec contract a
 * protocol gives its ring.
 *
 * ```c
 * struct __name##_sring {
 *     RING_IDX req_prod, req_event;
 *     RING_IDX rsp_prod, rsp_event;
 *     union { ... uint8_t pvt_pad[4]; } pvt;
 *     uint8_t __pad[44];
 *     union __name##_sring_entry ring[1]; // variable-length
 * };
 * ```
 */
import { BugError } from '../base/index.js';
import { ringSize, SRING_FIELDS, SRING_HEADER_SIZE } from '../abi/io/ring.js';
import type { RingMemory } from './memory.js';

// Offsets inside `struct __name##_sring` (identical on x86_64 and x86_32), from abi/.
export const SRING_REQ_PROD = SRING_FIELDS.req_prod;
export const SRING_REQ_EVENT = SRING_FIELDS.req_event;
export const SRING_RSP_PROD = SRING_FIELDS.rsp_prod;
export const SRING_RSP_EVENT = SRING_FIELDS.rsp_event;
export const SRING_PVT = SRING_FIELDS.pvt;
/** offsetof(struct __name##_sring, ring): the entries start after the 64-byte header. */
export const SRING_ENTRIES = SRING_HEADER_SIZE;

/** The protocol side of a ring: entry sizes and pure codecs (the `abi/` layouts). */
export interface RingCodec<Req, Rsp> {
  /** sizeof(request), sizeof(response) in bytes. */
  readonly requestSize: number;
  readonly responseSize: number;
  /** sizeof(union __name##_sring_entry); defaults to max(requestSize, responseSize). */
  readonly entrySize?: number;
  /**
   * True when `encodeRequest`/`encodeResponse` write every byte of `out` (padding included;
   * with `requestLength`, every byte of the request's length), so the ring need not zero the
   * slot first. `encodesEveryByte()` (ring/codec-check.ts)
   * tests the claim; a false claim would leave stale bytes in shared memory.
   */
  readonly encodesEveryByte?: boolean;
  /**
   * The length in bytes of the request whose first 4 bytes `head` holds, when a protocol's
   * request is shorter than its slot: a blkif READ of one segment is 32 of 112 bytes, the
   * other ten segment slots unused. A consumer copies only these bytes (the first 4 once,
   * then the rest) and `decodeRequest` reads no further; an `encodeRequest` that encodes every
   * byte need write no further.
   * Absent: every request is `requestSize` bytes.
   *
   * Why: a slot spans two or three 64-byte cache lines, each written last by the producer's
   * CPU, and every line read is a transfer from that CPU (4 KiB random reads at QD32: the
   * whole-slot copy was blkback's top JavaScript cost).
   */
  readonly requestLength?: (head: DataView) => number;
  /** Write `req` into `out` (zero-filled, `requestSize` bytes): fields only, padding stays 0. */
  encodeRequest(req: Req, out: DataView): void;
  encodeResponse(rsp: Rsp, out: DataView): void;
  /**
   * Decode from the ring's private copy. The copy is reused for the next entry, so return
   * values, not views into `bytes`. Unknown values decode to a value the protocol rejects;
   * never throw for peer data. `index` is the free-running index of the slot the copy came
   * from: a codec made for one ring may decode into an object kept for that slot and
   * rewritten when the index comes round again, a ring's size of requests later (netback's,
   * devices/net/protocol.ts), so its consumer must not keep a request past that.
   */
  decodeRequest(bytes: DataView, index: number): Req;
  decodeResponse(bytes: DataView): Rsp;
}

export function entrySizeOf(codec: RingCodec<unknown, unknown>): number {
  const size = codec.entrySize ?? Math.max(codec.requestSize, codec.responseSize);
  if (size < codec.requestSize || size < codec.responseSize || size <= 0) {
    throw new BugError(`ring entry size ${size} smaller than its request or response`);
  }
  return size;
}

/**
 * __CONST_RING_SIZE: how many entries fit after the header in `bytes`, rounded down to a
 * power of two "so we can mask with (size-1) to loop around".
 */
export function ringEntries(bytes: number, entrySize: number): number {
  const n = ringSize(bytes, entrySize);
  if (n < 1) throw new BugError(`no ring entry of ${entrySize} bytes fits in ${bytes} bytes`);
  return n;
}

/**
 * SHARED_RING_INIT: producers 0, `req_event = rsp_event = 1`, pads zeroed. Only the front
 * calls this; a back that re-initialised the ring would lose requests already posted
 * (mirage-net-xen#68, protocols.md 0.1).
 */
export function initSharedRing(mem: RingMemory): void {
  mem.copyIn(SRING_PVT, new Uint8Array(SRING_ENTRIES - SRING_PVT), 0, SRING_ENTRIES - SRING_PVT);
  mem.store32(SRING_REQ_PROD, 0);
  mem.store32(SRING_RSP_PROD, 0);
  mem.store32(SRING_REQ_EVENT, 1);
  mem.store32(SRING_RSP_EVENT, 1);
}

/**
 * The notification hold-off rule of RING_PUSH_*_AND_CHECK_NOTIFY: notify iff the peer's
 * event index lies in (old, new], i.e. `(RING_IDX)(new - event) < (RING_IDX)(new - old)`.
 */
export function needsNotify(newProd: number, oldProd: number, event: number): boolean {
  return ((newProd - event) >>> 0) < ((newProd - oldProd) >>> 0);
}

/**
 * What RING_PUSH_REQUESTS_AND_CHECK_NOTIFY and RING_PUSH_RESPONSES_AND_CHECK_NOTIFY share,
 * over the producer and event index of their direction: publish `newProd` (the Atomics store
 * orders the slot writes before it), then read the peer's event index (the store→load order
 * of Atomics is the full mb) and say whether the peer must be notified.
 */
export function pushAndCheckNotify(mem: RingMemory, prodOffset: number, eventOffset: number, oldProd: number, newProd: number): boolean {
  mem.store32(prodOffset, newProd);
  return needsNotify(newProd, oldProd, mem.load32(eventOffset));
}

/** Why a ring stopped: the peer's producer index claimed more entries than can exist. */
export interface RingBroken {
  readonly reason: 'request-prod-overflow' | 'response-prod-overflow';
  /** The producer index the peer published. */
  readonly prod: number;
  /** Our index it was checked against (rsp_prod_pvt for requests, rsp_cons for responses). */
  readonly against: number;
  readonly size: number;
}

export interface RingOptions {
  /** Called once when the peer is found broken; the ring stops consuming and notifying. */
  readonly onBroken?: (broken: RingBroken) => void;
}
