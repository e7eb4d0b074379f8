/**
 * struct xsd_sockmsg (xs_wire.h):
 *
 *   struct xsd_sockmsg {
 *       uint32_t type;   // XS_???
 *       uint32_t req_id; // Request identifier, echoed in daemon's response.
 *       uint32_t tx_id;  // Transaction id (0 if not related to a transaction).
 *       uint32_t len;    // Length of data following this.
 *   };
 *
 * Native byte order; every Xen host we talk to (x86_64, x86_32, arm) is little-endian.
 */
import { HEADER_SIZE, PAYLOAD_MAX } from './ops.js';

export interface XsHeader {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly len: number;
}

/** One framed message: header plus exactly `header.len` payload bytes. */
export interface XsMessage {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: Uint8Array;
}

// Byte arithmetic rather than a DataView per header: on Node 20 constructing the DataView
// cost 4-5x the whole encode, and every request and reply pays it (bench xenstore profile).
function putU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v;
  out[at + 1] = v >>> 8;
  out[at + 2] = v >>> 16;
  out[at + 3] = v >>> 24;
}

function getU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

export function encodeHeader(h: XsHeader, out = new Uint8Array(HEADER_SIZE), offset = 0): Uint8Array {
  if (offset < 0 || out.length - offset < HEADER_SIZE) throw new RangeError('no room for a header');
  putU32(out, offset, h.type);
  putU32(out, offset + 4, h.reqId);
  putU32(out, offset + 8, h.txId);
  putU32(out, offset + 12, h.len);
  return out;
}

/** Decode 16 bytes at `offset`. The caller guarantees they are there (RangeError otherwise). */
export function decodeHeader(bytes: Uint8Array, offset = 0): XsHeader {
  if (offset < 0 || bytes.length - offset < HEADER_SIZE) throw new RangeError('short header');
  return {
    type: getU32(bytes, offset),
    reqId: getU32(bytes, offset + 4),
    txId: getU32(bytes, offset + 8),
    len: getU32(bytes, offset + 12),
  };
}

/**
 * Header + payload in one buffer. A payload over XENSTORE_PAYLOAD_MAX is the caller's bug
 * (the server turns oversized replies into E2BIG before it gets here): RangeError.
 */
export function encodeMessage(msg: XsMessage): Uint8Array {
  if (msg.payload.length > PAYLOAD_MAX) {
    throw new RangeError(`xenstore payload of ${msg.payload.length} bytes exceeds ${PAYLOAD_MAX}`);
  }
  const out = new Uint8Array(HEADER_SIZE + msg.payload.length);
  encodeHeader({ type: msg.type, reqId: msg.reqId, txId: msg.txId, len: msg.payload.length }, out);
  out.set(msg.payload, HEADER_SIZE);
  return out;
}
