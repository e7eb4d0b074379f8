/**
 * `xen/io/xs_wire.h`: the xenstore wire protocol: message types, the error table, the 16-byte
 * message header, and the shared ring page (`xenstore_domain_interface`) a guest talks through.
 *
 * Versions: Debian's libxen-dev is Xen 4.17. Newer Xen (4.21, commit 0fd49cc, 2025-03) adds
 * XS_GET_FEATURE, XS_SET_FEATURE, XS_GET_QUOTA, XS_SET_QUOTA (23..26) and the ring page's
 * `evtchn_port`; 4.22 adds XENSTORE_SERVER_FEATURE_WATCHDEPTH and _DOMID_ANY. Those are marked
 * `unchecked` below: the C comparison lists them and skips them.
 */
import { defineConstants, defineStruct } from '../layout.js';

const H = 'xen/io/xs_wire.h';
const NEWER_421 = 'Xen 4.21 (xs_wire.h, commit 0fd49cc); not in libxen-dev 4.17';
const NEWER_422 = 'Xen 4.22 (xs_wire.h); not in libxen-dev 4.17';

/**
 * `enum xsd_sockmsg_type`. Numbers spelled out: 20 (XS_RESTRICT) was removed and must stay a
 * hole; XS_DEBUG is an alias of XS_CONTROL.
 */
export const XS_OP = defineConstants(H, {
  XS_CONTROL: 0,
  XS_DEBUG: 0,
  XS_DIRECTORY: 1,
  XS_READ: 2,
  XS_GET_PERMS: 3,
  XS_WATCH: 4,
  XS_UNWATCH: 5,
  XS_TRANSACTION_START: 6,
  XS_TRANSACTION_END: 7,
  XS_INTRODUCE: 8,
  XS_RELEASE: 9,
  XS_GET_DOMAIN_PATH: 10,
  XS_WRITE: 11,
  XS_MKDIR: 12,
  XS_RM: 13,
  XS_SET_PERMS: 14,
  XS_WATCH_EVENT: 15,
  XS_ERROR: 16,
  XS_IS_DOMAIN_INTRODUCED: 17,
  XS_RESUME: 18,
  XS_SET_TARGET: 19,
  // 20: XS_RESTRICT, removed
  XS_RESET_WATCHES: 21,
  XS_DIRECTORY_PART: 22,
  XS_INVALID: 0xffff, // guaranteed to remain an invalid type
});
/** Message types newer than libxen-dev 4.17's header. */
export const XS_OP_421 = defineConstants(
  H,
  { XS_GET_FEATURE: 23, XS_SET_FEATURE: 24, XS_GET_QUOTA: 25, XS_SET_QUOTA: 26, XS_TYPE_COUNT: 27 },
  { unchecked: `${NEWER_421} (4.17 has XS_TYPE_COUNT 23)` },
);
export const {
  XS_CONTROL, XS_DEBUG, XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH, XS_TRANSACTION_START,
  XS_TRANSACTION_END, XS_INTRODUCE, XS_RELEASE, XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM,
  XS_SET_PERMS, XS_WATCH_EVENT, XS_ERROR, XS_IS_DOMAIN_INTRODUCED, XS_RESUME, XS_SET_TARGET,
  XS_RESET_WATCHES, XS_DIRECTORY_PART, XS_INVALID,
} = XS_OP;
export const { XS_GET_FEATURE, XS_SET_FEATURE, XS_GET_QUOTA, XS_SET_QUOTA, XS_TYPE_COUNT } = XS_OP_421;

type OpTable = typeof XS_OP & typeof XS_OP_421;
export type XsOp = OpTable[keyof OpTable];

const opNames = new Map<number, string>();
for (const [name, value] of Object.entries({ ...XS_OP, ...XS_OP_421 })) {
  if (name !== 'XS_DEBUG' && name !== 'XS_TYPE_COUNT') opNames.set(value, name);
}

/** A defined message type (not XS_INVALID, not the hole at 20, not XS_TYPE_COUNT). */
export function isXsOp(n: number): n is XsOp {
  return n !== XS_INVALID && opNames.has(n);
}

/** `XS_READ` for 2; `XS_<n>` for a number with no name. */
export function xsOpName(n: number): string {
  return opNames.get(n) ?? `XS_${n}`;
}

/** `enum xs_watch_type`: the index of each string in a XS_WATCH_EVENT payload. */
export const XS_WATCH_TYPE = defineConstants(H, { XS_WATCH_PATH: 0, XS_WATCH_TOKEN: 1 });

export const XS_WRITE_MODE = defineConstants(H, {
  XS_WRITE_NONE: 'NONE',
  XS_WRITE_CREATE: 'CREATE',
  XS_WRITE_CREATE_EXCL: 'CREATE|EXCL',
});

export interface XsdError {
  /** The errno value (Linux numbering, as `<errno.h>` gives it where the header is compiled). */
  readonly errnum: number;
  /** The name sent on the wire, as the payload of an XS_ERROR reply (`"ENOENT\0"`). */
  readonly errstring: string;
}

/**
 * `xsd_errors[]`, in header order. "New errors should be added at the end of the array":
 * clients that translate names back to numbers walk this table.
 */
export const xsd_errors: readonly XsdError[] = [
  { errnum: 22, errstring: 'EINVAL' },
  { errnum: 13, errstring: 'EACCES' },
  { errnum: 17, errstring: 'EEXIST' },
  { errnum: 21, errstring: 'EISDIR' },
  { errnum: 2, errstring: 'ENOENT' },
  { errnum: 12, errstring: 'ENOMEM' },
  { errnum: 28, errstring: 'ENOSPC' },
  { errnum: 5, errstring: 'EIO' },
  { errnum: 39, errstring: 'ENOTEMPTY' },
  { errnum: 38, errstring: 'ENOSYS' },
  { errnum: 30, errstring: 'EROFS' },
  { errnum: 16, errstring: 'EBUSY' },
  { errnum: 11, errstring: 'EAGAIN' },
  { errnum: 106, errstring: 'EISCONN' },
  { errnum: 7, errstring: 'E2BIG' },
  { errnum: 1, errstring: 'EPERM' },
];

export type XsdErrorName =
  | 'EINVAL' | 'EACCES' | 'EEXIST' | 'EISDIR' | 'ENOENT' | 'ENOMEM' | 'ENOSPC' | 'EIO'
  | 'ENOTEMPTY' | 'ENOSYS' | 'EROFS' | 'EBUSY' | 'EAGAIN' | 'EISCONN' | 'E2BIG' | 'EPERM';

export function isXsdErrorName(s: string): s is XsdErrorName {
  return xsd_errors.some((e) => e.errstring === s);
}

/** errno for a wire error name, as libxenstore maps it (unknown names map to EINVAL, entry 0). */
export function xsdErrnum(name: string): number {
  return (xsd_errors.find((e) => e.errstring === name) ?? xsd_errors[0]!).errnum;
}

/*
 * struct xsd_sockmsg {                        sizeof = 16; native byte order (little-endian here)
 *     uint32_t type;    @0   XS_*
 *     uint32_t req_id;  @4   echoed in the reply
 *     uint32_t tx_id;   @8   0 if not in a transaction
 *     uint32_t len;     @12  payload bytes that follow (<= XENSTORE_PAYLOAD_MAX)
 * };
 */
export const XSD_SOCKMSG = defineStruct(H, 'xsd_sockmsg', {
  size: 16,
  fields: { type: 0, req_id: 4, tx_id: 8, len: 12 },
});

export interface XsdSockmsg {
  readonly type: number;
  readonly req_id: number;
  readonly tx_id: number;
  readonly len: number;
}

/**
 * Decode a header; validates nothing (the caller bounds `len` and checks `type`). Byte reads,
 * not a DataView: dom0's xenbus gate decodes every message it passes.
 */
export function decodeXsdSockmsg(bytes: Uint8Array, offset = 0): XsdSockmsg {
  if (offset < 0 || bytes.length - offset < XSD_SOCKMSG.layouts.x86_64.size) throw new RangeError('short xsd_sockmsg');
  const f = XSD_SOCKMSG.layouts.x86_64.fields;
  return {
    type: u32le(bytes, offset + f.type),
    req_id: u32le(bytes, offset + f.req_id),
    tx_id: u32le(bytes, offset + f.tx_id),
    len: u32le(bytes, offset + f.len),
  };
}

function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

export function encodeXsdSockmsg(h: XsdSockmsg, out = new Uint8Array(16), offset = 0): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset + offset, XSD_SOCKMSG.layouts.x86_64.size);
  const f = XSD_SOCKMSG.layouts.x86_64.fields;
  v.setUint32(f.type, h.type, true);
  v.setUint32(f.req_id, h.req_id, true);
  v.setUint32(f.tx_id, h.tx_id, true);
  v.setUint32(f.len, h.len, true);
  return out;
}

export const XENSTORE_LIMITS = defineConstants(H, {
  XENSTORE_RING_SIZE: 1024,
  /** Payload bytes of one message, either direction; exceeding it kills the connection. */
  XENSTORE_PAYLOAD_MAX: 4096,
  XENSTORE_ABS_PATH_MAX: 3072,
  XENSTORE_REL_PATH_MAX: 2048,
});
export const { XENSTORE_RING_SIZE, XENSTORE_PAYLOAD_MAX, XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX } =
  XENSTORE_LIMITS;

/** `MASK_XENSTORE_IDX(idx)`: ring indices are free-running u32s. */
export function maskXenstoreIdx(idx: number): number {
  return idx & (XENSTORE_RING_SIZE - 1);
}

/** `server_features` bits: set only by the server, never cleared. */
export const XENSTORE_SERVER_FEATURE = defineConstants(H, {
  XENSTORE_SERVER_FEATURE_RECONNECTION: 1, // Xen 4.5
  XENSTORE_SERVER_FEATURE_ERROR: 2, // Xen 4.17
});
export const XENSTORE_SERVER_FEATURE_422 = defineConstants(
  H,
  { XENSTORE_SERVER_FEATURE_WATCHDEPTH: 4, XENSTORE_SERVER_FEATURE_DOMID_ANY: 8 },
  { unchecked: NEWER_422 },
);
export const { XENSTORE_SERVER_FEATURE_RECONNECTION, XENSTORE_SERVER_FEATURE_ERROR } = XENSTORE_SERVER_FEATURE;

/** `connection`: the guest writes RECONNECT; the server resets the rings and writes CONNECTED. */
export const XENSTORE_CONNECTION = defineConstants(H, { XENSTORE_CONNECTED: 0, XENSTORE_RECONNECT: 1 });
export const { XENSTORE_CONNECTED, XENSTORE_RECONNECT } = XENSTORE_CONNECTION;

/** `error`: why the server stopped serving the ring (with XENSTORE_SERVER_FEATURE_ERROR). */
export const XENSTORE_ERROR = defineConstants(H, {
  XENSTORE_ERROR_NONE: 0,
  XENSTORE_ERROR_COMM: 1, // communication problem
  XENSTORE_ERROR_RINGIDX: 2, // invalid ring index
  XENSTORE_ERROR_PROTO: 3, // protocol violation (payload too long)
});
export const { XENSTORE_ERROR_NONE, XENSTORE_ERROR_COMM, XENSTORE_ERROR_RINGIDX, XENSTORE_ERROR_PROTO } =
  XENSTORE_ERROR;

/*
 * struct xenstore_domain_interface {          one page shared by guest and xenstored
 *     char req[XENSTORE_RING_SIZE];   @0     guest -> server bytes
 *     char rsp[XENSTORE_RING_SIZE];   @1024  server -> guest: replies and watch events
 *     XENSTORE_RING_IDX req_cons;     @2048  written by the server
 *     XENSTORE_RING_IDX req_prod;     @2052  written by the guest
 *     XENSTORE_RING_IDX rsp_cons;     @2056  written by the guest
 *     XENSTORE_RING_IDX rsp_prod;     @2060  written by the server
 *     uint32_t server_features;       @2064  XENSTORE_SERVER_FEATURE_*
 *     uint32_t connection;            @2068  XENSTORE_CONNECTED / XENSTORE_RECONNECT
 *     uint32_t error;                 @2072  XENSTORE_ERROR_*
 *     uint32_t evtchn_port;           @2076  Xen 4.21 only (see XENSTORE_EVTCHN_PORT_OFFSET)
 * };                                  sizeof = 2076 in Xen 4.17
 */
export const XENSTORE_DOMAIN_INTERFACE = defineStruct(H, 'xenstore_domain_interface', {
  size: 2076,
  fields: {
    req: 0,
    rsp: 1024,
    req_cons: 2048,
    req_prod: 2052,
    rsp_cons: 2056,
    rsp_prod: 2060,
    server_features: 2064,
    connection: 2068,
    error: 2072,
  },
});

/**
 * Xen 4.21's `evtchn_port` field, appended after `error`: filled by Xen for dom0less guests and
 * used if non-zero. Not in libxen-dev 4.17, so not part of the registered layout.
 */
export const XENSTORE_EVTCHN_PORT_OFFSET = 2076;
