/**
 * Message types of the xenstore wire protocol (xs_wire.h `enum xsd_sockmsg_type`), by camelCase
 * name. Numbers are spelled out (STYLE.md habit 2), never derived from array order.
 *
 * 0..22 are Xen 4.17's header; GET_FEATURE..SET_QUOTA (23..26) were added in Xen 4.21/4.22
 * (docs/misc/xenstore.txt "Defined Xenstore message types"). 20 was XS_RESTRICT and is invalid.
 */
export const XsOp = {
  control: 0,
  directory: 1,
  read: 2,
  getPerms: 3,
  watch: 4,
  unwatch: 5,
  transactionStart: 6,
  transactionEnd: 7,
  introduce: 8,
  release: 9,
  getDomainPath: 10,
  write: 11,
  mkdir: 12,
  rm: 13,
  setPerms: 14,
  watchEvent: 15,
  error: 16,
  isDomainIntroduced: 17,
  resume: 18,
  setTarget: 19,
  resetWatches: 21,
  directoryPart: 22,
  getFeature: 23,
  setFeature: 24,
  getQuota: 25,
  setQuota: 26,
} as const;

export type XsOpName = keyof typeof XsOp;
export type XsOpNumber = (typeof XsOp)[XsOpName];

/** XS_INVALID: "Guaranteed to remain an invalid type". */
export const XS_TYPE_INVALID = 0xffff;

const byNumber = new Map<number, XsOpName>(
  (Object.entries(XsOp) as [XsOpName, number][]).map(([name, n]) => [n, name]),
);

/** The op name of a wire type, or undefined for a type no xenstored defines (→ ENOSYS). */
export function opName(type: number): XsOpName | undefined {
  return byNumber.get(type);
}

/** XENSTORE_PAYLOAD_MAX: "Violating this is very bad" — the limit in both directions. */
export const PAYLOAD_MAX = 4096;
/** XENSTORE_ABS_PATH_MAX / XENSTORE_REL_PATH_MAX: "Violating these just gets you an error back". */
export const ABS_PATH_MAX = 3072;
export const REL_PATH_MAX = 2048;
/** sizeof(struct xsd_sockmsg): type, req_id, tx_id, len, each a native-order u32. */
export const HEADER_SIZE = 16;
