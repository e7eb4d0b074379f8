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

export function encodeHeader(h: XsHeader, out = new Uint8Array(HEADER_SIZE), offset = 0): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset + offset, HEADER_SIZE);
  dv.setUint32(0, h.type >>> 0, true);
  dv.setUint32(4, h.reqId >>> 0, true);
  dv.setUint32(8, h.txId >>> 0, true);
  dv.setUint32(12, h.len >>> 0, true);
  return out;
}

/** Decode 16 bytes at `offset`. The caller guarantees they are there (RangeError otherwise). */
export function decodeHeader(bytes: Uint8Array, offset = 0): XsHeader {
  if (bytes.length - offset < HEADER_SIZE) throw new RangeError('short header');
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, HEADER_SIZE);
  return {
    type: dv.getUint32(0, true),
    reqId: dv.getUint32(4, true),
    txId: dv.getUint32(8, true),
    len: dv.getUint32(12, true),
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
