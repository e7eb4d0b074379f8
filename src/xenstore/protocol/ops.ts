/**
 * Message types of the xenstore wire protocol (xs_wire.h `enum xsd_sockmsg_type`), by camelCase
 * name; the numbers are the abi file's (`abi/io/xs_wire.ts`), spelled out there.
 *
 * 0..22 are Xen 4.17's header; GET_FEATURE..SET_QUOTA (23..26) were added in Xen 4.21/4.22
 * (docs/misc/xenstore.txt "Defined Xenstore message types"). 20 was XS_RESTRICT and is invalid.
 */
import {
  XS_CONTROL, XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH, XS_TRANSACTION_START,
  XS_TRANSACTION_END, XS_INTRODUCE, XS_RELEASE, XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM,
  XS_SET_PERMS, XS_WATCH_EVENT, XS_ERROR, XS_IS_DOMAIN_INTRODUCED, XS_RESUME, XS_SET_TARGET,
  XS_RESET_WATCHES, XS_DIRECTORY_PART, XS_INVALID, XS_GET_FEATURE, XS_SET_FEATURE, XS_GET_QUOTA,
  XS_SET_QUOTA, XENSTORE_PAYLOAD_MAX, XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX, XSD_SOCKMSG,
} from '../../abi/io/xs_wire.js';

export const XsOp = {
  control: XS_CONTROL,
  directory: XS_DIRECTORY,
  read: XS_READ,
  getPerms: XS_GET_PERMS,
  watch: XS_WATCH,
  unwatch: XS_UNWATCH,
  transactionStart: XS_TRANSACTION_START,
  transactionEnd: XS_TRANSACTION_END,
  introduce: XS_INTRODUCE,
  release: XS_RELEASE,
  getDomainPath: XS_GET_DOMAIN_PATH,
  write: XS_WRITE,
  mkdir: XS_MKDIR,
  rm: XS_RM,
  setPerms: XS_SET_PERMS,
  watchEvent: XS_WATCH_EVENT,
  error: XS_ERROR,
  isDomainIntroduced: XS_IS_DOMAIN_INTRODUCED,
  resume: XS_RESUME,
  setTarget: XS_SET_TARGET,
  resetWatches: XS_RESET_WATCHES,
  directoryPart: XS_DIRECTORY_PART,
  getFeature: XS_GET_FEATURE,
  setFeature: XS_SET_FEATURE,
  getQuota: XS_GET_QUOTA,
  setQuota: XS_SET_QUOTA,
} as const;

export type XsOpName = keyof typeof XsOp;
export type XsOpNumber = (typeof XsOp)[XsOpName];

/** XS_INVALID: "Guaranteed to remain an invalid type". */
export const XS_TYPE_INVALID = XS_INVALID;

const byNumber = new Map<number, XsOpName>(
  (Object.entries(XsOp) as [XsOpName, number][]).map(([name, n]) => [n, name]),
);

/** The op name of a wire type, or undefined for a type no xenstored defines (→ ENOSYS). */
export function opName(type: number): XsOpName | undefined {
  return byNumber.get(type);
}

/** XENSTORE_PAYLOAD_MAX: "Violating this is very bad" — the limit in both directions. */
export const PAYLOAD_MAX = XENSTORE_PAYLOAD_MAX;
/** XENSTORE_ABS_PATH_MAX / XENSTORE_REL_PATH_MAX: "Violating these just gets you an error back". */
export const ABS_PATH_MAX = XENSTORE_ABS_PATH_MAX;
export const REL_PATH_MAX = XENSTORE_REL_PATH_MAX;
/** sizeof(struct xsd_sockmsg): type, req_id, tx_id, len, each a native-order u32. */
export const HEADER_SIZE = XSD_SOCKMSG.layouts.x86_64.size;
