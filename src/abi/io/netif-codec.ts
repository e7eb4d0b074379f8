/**
 * Pure codecs for netif ring slots (layouts in netif.ts), and the Toeplitz hash the control
 * ring configures. Sans-IO; the decoders read each field once and validate nothing. Layouts are
 * identical on x86_64 and x86_32, so these take no ABI.
 */
import type { Writable } from '../../base/index.js';
import {
  NETIF_EXTRA_INFO,
  NETIF_RX_REQUEST,
  NETIF_RX_RESPONSE,
  NETIF_TX_REQUEST,
  NETIF_TX_RESPONSE,
  XEN_NETIF_CTRL_REQUEST,
  XEN_NETIF_CTRL_RESPONSE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_HASH,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
} from './netif.js';

export interface NetifTxRequest {
  readonly gref: number;
  readonly offset: number;
  readonly flags: number;
  readonly id: number;
  readonly size: number;
}
export interface NetifTxResponse {
  readonly id: number;
  readonly status: number;
}
export interface NetifRxRequest {
  readonly id: number;
  readonly gref: number;
}
export interface NetifRxResponse {
  readonly id: number;
  readonly offset: number;
  readonly flags: number;
  readonly status: number;
}

export type NetifExtraInfo =
  | {
      readonly kind: 'gso';
      readonly flags: number;
      /** MSS */
      readonly size: number;
      /** XEN_NETIF_GSO_TYPE_* */
      readonly type: number;
      readonly features: number;
    }
  | { readonly kind: 'mcast_add' | 'mcast_del'; readonly flags: number; readonly addr: Uint8Array }
  | {
      readonly kind: 'hash';
      readonly flags: number;
      /** _XEN_NETIF_CTRL_HASH_TYPE_* (a bit number) */
      readonly type: number;
      /** XEN_NETIF_CTRL_HASH_ALGORITHM_* */
      readonly algorithm: number;
      readonly value: number;
    }
  /** NONE (invalid) and any type this ABI does not define; `raw` is the 6-byte union. */
  | { readonly kind: 'unknown'; readonly type: number; readonly flags: number; readonly raw: Uint8Array };

export interface XenNetifCtrlRequest {
  readonly id: number;
  readonly type: number;
  readonly data: readonly [number, number, number];
}
export interface XenNetifCtrlResponse {
  readonly id: number;
  readonly type: number;
  readonly status: number;
  readonly data: number;
}

const TXQ = NETIF_TX_REQUEST.layouts.x86_64.fields;
const TXS = NETIF_TX_RESPONSE.layouts.x86_64.fields;
const RXQ = NETIF_RX_REQUEST.layouts.x86_64.fields;
const RXS = NETIF_RX_RESPONSE.layouts.x86_64.fields;
const EXT = NETIF_EXTRA_INFO.layouts.x86_64.fields;
const CTQ = XEN_NETIF_CTRL_REQUEST.layouts.x86_64.fields;
const CTS = XEN_NETIF_CTRL_RESPONSE.layouts.x86_64.fields;

export function decodeNetifTxRequest(v: DataView, at: number): NetifTxRequest {
  return decodeNetifTxRequestInto(v, at, { gref: 0, offset: 0, flags: 0, id: 0, size: 0 });
}

/** `decodeNetifTxRequest` into an object the caller reuses. */
export function decodeNetifTxRequestInto<T extends Writable<NetifTxRequest>>(v: DataView, at: number, out: T): T {
  out.gref = v.getUint32(at + TXQ.gref, true);
  out.offset = v.getUint16(at + TXQ.offset, true);
  out.flags = v.getUint16(at + TXQ.flags, true);
  out.id = v.getUint16(at + TXQ.id, true);
  out.size = v.getUint16(at + TXQ.size, true);
  return out;
}

export function encodeNetifTxRequest(v: DataView, at: number, r: NetifTxRequest): void {
  v.setUint32(at + TXQ.gref, r.gref, true);
  v.setUint16(at + TXQ.offset, r.offset, true);
  v.setUint16(at + TXQ.flags, r.flags, true);
  v.setUint16(at + TXQ.id, r.id, true);
  v.setUint16(at + TXQ.size, r.size, true);
}

export function decodeNetifTxResponse(v: DataView, at: number): NetifTxResponse {
  return { id: v.getUint16(at + TXS.id, true), status: v.getInt16(at + TXS.status, true) };
}

export function encodeNetifTxResponse(v: DataView, at: number, r: NetifTxResponse): void {
  v.setUint16(at + TXS.id, r.id, true);
  v.setInt16(at + TXS.status, r.status, true);
}

export function decodeNetifRxRequest(v: DataView, at: number): NetifRxRequest {
  return decodeNetifRxRequestInto(v, at, { id: 0, gref: 0 });
}

/** `decodeNetifRxRequest` into an object the caller reuses. */
export function decodeNetifRxRequestInto<T extends Writable<NetifRxRequest>>(v: DataView, at: number, out: T): T {
  out.id = v.getUint16(at + RXQ.id, true);
  out.gref = v.getUint32(at + RXQ.gref, true);
  return out;
}

export function encodeNetifRxRequest(v: DataView, at: number, r: NetifRxRequest): void {
  v.setUint16(at + RXQ.id, r.id, true);
  v.setUint16(at + RXQ.pad, 0, true);
  v.setUint32(at + RXQ.gref, r.gref, true);
}

export function decodeNetifRxResponse(v: DataView, at: number): NetifRxResponse {
  return {
    id: v.getUint16(at + RXS.id, true),
    offset: v.getUint16(at + RXS.offset, true),
    flags: v.getUint16(at + RXS.flags, true),
    status: v.getInt16(at + RXS.status, true),
  };
}

export function encodeNetifRxResponse(v: DataView, at: number, r: NetifRxResponse): void {
  v.setUint16(at + RXS.id, r.id, true);
  v.setUint16(at + RXS.offset, r.offset, true);
  v.setUint16(at + RXS.flags, r.flags, true);
  v.setInt16(at + RXS.status, r.status, true);
}

/** Copy `n` bytes out of the view: the result never aliases shared memory. */
function copyBytes(v: DataView, at: number, n: number): Uint8Array {
  return new Uint8Array(v.buffer.slice(v.byteOffset + at, v.byteOffset + at + n));
}

export function decodeNetifExtraInfo(v: DataView, at: number): NetifExtraInfo {
  const type = v.getUint8(at + EXT.type);
  const flags = v.getUint8(at + EXT.flags);
  switch (type) {
    case XEN_NETIF_EXTRA_TYPE_GSO:
      return {
        kind: 'gso',
        flags,
        size: v.getUint16(at + EXT['u.gso.size'], true),
        type: v.getUint8(at + EXT['u.gso.type']),
        features: v.getUint16(at + EXT['u.gso.features'], true),
      };
    case XEN_NETIF_EXTRA_TYPE_MCAST_ADD:
    case XEN_NETIF_EXTRA_TYPE_MCAST_DEL:
      return {
        kind: type === XEN_NETIF_EXTRA_TYPE_MCAST_ADD ? 'mcast_add' : 'mcast_del',
        flags,
        addr: copyBytes(v, at + EXT['u.mcast.addr'], 6),
      };
    case XEN_NETIF_EXTRA_TYPE_HASH:
      return {
        kind: 'hash',
        flags,
        type: v.getUint8(at + EXT['u.hash.type']),
        algorithm: v.getUint8(at + EXT['u.hash.algorithm']),
        // value[4]: "LSB ---- value ---- MSB" in the header diagram, so little-endian.
        value: v.getUint32(at + EXT['u.hash.value'], true),
      };
    default:
      return { kind: 'unknown', type, flags, raw: copyBytes(v, at + EXT['u.pad'], 6) };
  }
}

/** Write an extra-info slot (all 8 bytes; unused union bytes are zeroed). */
export function encodeNetifExtraInfo(v: DataView, at: number, e: NetifExtraInfo): void {
  new Uint8Array(v.buffer, v.byteOffset + at, NETIF_EXTRA_INFO.layouts.x86_64.size).fill(0);
  v.setUint8(at + EXT.flags, e.flags);
  switch (e.kind) {
    case 'gso':
      v.setUint8(at + EXT.type, XEN_NETIF_EXTRA_TYPE_GSO);
      v.setUint16(at + EXT['u.gso.size'], e.size, true);
      v.setUint8(at + EXT['u.gso.type'], e.type);
      v.setUint16(at + EXT['u.gso.features'], e.features, true);
      return;
    case 'mcast_add':
    case 'mcast_del':
      v.setUint8(
        at + EXT.type,
        e.kind === 'mcast_add' ? XEN_NETIF_EXTRA_TYPE_MCAST_ADD : XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
      );
      new Uint8Array(v.buffer, v.byteOffset + at + EXT['u.mcast.addr'], 6).set(e.addr.subarray(0, 6));
      return;
    case 'hash':
      v.setUint8(at + EXT.type, XEN_NETIF_EXTRA_TYPE_HASH);
      v.setUint8(at + EXT['u.hash.type'], e.type);
      v.setUint8(at + EXT['u.hash.algorithm'], e.algorithm);
      v.setUint32(at + EXT['u.hash.value'], e.value, true);
      return;
    case 'unknown':
      v.setUint8(at + EXT.type, e.type);
      new Uint8Array(v.buffer, v.byteOffset + at + EXT['u.pad'], 6).set(e.raw.subarray(0, 6));
      return;
  }
}

export function decodeXenNetifCtrlRequest(v: DataView, at: number): XenNetifCtrlRequest {
  return {
    id: v.getUint16(at + CTQ.id, true),
    type: v.getUint16(at + CTQ.type, true),
    data: [
      v.getUint32(at + CTQ.data, true),
      v.getUint32(at + CTQ.data + 4, true),
      v.getUint32(at + CTQ.data + 8, true),
    ],
  };
}

export function encodeXenNetifCtrlRequest(v: DataView, at: number, r: XenNetifCtrlRequest): void {
  v.setUint16(at + CTQ.id, r.id, true);
  v.setUint16(at + CTQ.type, r.type, true);
  r.data.forEach((d, i) => v.setUint32(at + CTQ.data + 4 * i, d, true));
}

export function decodeXenNetifCtrlResponse(v: DataView, at: number): XenNetifCtrlResponse {
  return {
    id: v.getUint16(at + CTS.id, true),
    type: v.getUint16(at + CTS.type, true),
    status: v.getUint32(at + CTS.status, true),
    data: v.getUint32(at + CTS.data, true),
  };
}

export function encodeXenNetifCtrlResponse(v: DataView, at: number, r: XenNetifCtrlResponse): void {
  v.setUint16(at + CTS.id, r.id, true);
  v.setUint16(at + CTS.type, r.type, true);
  v.setUint32(at + CTS.status, r.status, true);
  v.setUint32(at + CTS.data, r.data, true);
}

/**
 * The Toeplitz hash as netif.h defines it: treat key and data as bit strings, MSB of byte 0
 * first; for every set bit of the data, XOR in the 32 key bits that start at that bit's
 * position. Key bits past the end of the key count as zero.
 */
export function toeplitzHash(key: Uint8Array, data: Uint8Array): number {
  const keyBit = (i: number): number => {
    const byte = key[i >>> 3] ?? 0;
    return (byte >>> (7 - (i & 7))) & 1;
  };
  // `window` holds key bits [pos, pos + 32); it slides one bit per data bit.
  let window = 0;
  for (let i = 0; i < 32; i++) window = ((window << 1) | keyBit(i)) >>> 0;
  let hash = 0;
  for (let pos = 0; pos < data.length * 8; pos++) {
    const bit = ((data[pos >>> 3] ?? 0) >>> (7 - (pos & 7))) & 1;
    if (bit) hash = (hash ^ window) >>> 0;
    window = ((window << 1) | keyBit(pos + 32)) >>> 0;
  }
  return hash;
}
