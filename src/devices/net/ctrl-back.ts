/**
 * Netback's control-ring operations (netif.h "Control messages"), one `do<Op>` per request type
 * in one dispatch table (STYLE.md, oxenstored). Sans-IO apart from `copyIn`, the grant copy
 * that fetches a key or mapping table from the frontend's page.
 *
 * Choices, each the one Linux netback (hash.c) makes:
 * - GET_HASH_FLAGS needs an algorithm other than NONE, else NOT_SUPPORTED; it answers all four types.
 * - SET_HASH_FLAGS with unknown bits, or while the algorithm is NONE: INVALID_PARAMETER.
 * - SET_HASH_KEY longer than 40 octets: INVALID_PARAMETER (netif.h also allows BUFFER_OVERFLOW;
 *   Linux answers INVALID_PARAMETER); the rest of the key is zeroed.
 * - SET_HASH_MAPPING_SIZE above 128: INVALID_PARAMETER; the table is zeroed.
 * - SET_HASH_MAPPING outside the table or naming a queue >= the number of queues:
 *   INVALID_PARAMETER. Unlike Linux 6.x (which checks the old table before copying), the new
 *   entries are copied privately first and checked there, then committed all at once.
 * - The gref mapping operations (staging grants) are NOT_SUPPORTED.
 */
import {
  XEN_NETIF_CTRL_HASH_ALGORITHM_NONE,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
  XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
  XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED,
  XEN_NETIF_CTRL_STATUS_SUCCESS,
  XEN_NETIF_CTRL_TYPE,
} from '../../abi/io/netif.js';
import type { XenNetifCtrlRequest, XenNetifCtrlResponse } from '../../abi/io/netif-codec.js';
import { PAGE_SIZE } from '../../hv/platform.js';
import { SUPPORTED_HASH_TYPES, type HashConfig } from './hash.js';

export interface CtrlContext {
  readonly hash: HashConfig;
  readonly numQueues: number;
  /** Grant-copy `len` bytes from offset 0 of the frontend's `gref`; false if the copy failed. */
  copyIn(gref: number, dest: Uint8Array, len: number): boolean;
}

type Result = { status: number; data?: number };
type Op = (ctx: CtrlContext, d: readonly [number, number, number]) => Result;

const T = XEN_NETIF_CTRL_TYPE;
const OK: Result = { status: XEN_NETIF_CTRL_STATUS_SUCCESS };
const INVALID: Result = { status: XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER };
const UNSUPPORTED: Result = { status: XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED };

function doSetHashAlgorithm(ctx: CtrlContext, d: readonly [number, number, number]): Result {
  if (d[0] !== XEN_NETIF_CTRL_HASH_ALGORITHM_NONE && d[0] !== XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ) return INVALID;
  ctx.hash.algorithm = d[0];
  return OK;
}

function doGetHashFlags(ctx: CtrlContext): Result {
  if (ctx.hash.algorithm === XEN_NETIF_CTRL_HASH_ALGORITHM_NONE) return UNSUPPORTED;
  return { status: XEN_NETIF_CTRL_STATUS_SUCCESS, data: SUPPORTED_HASH_TYPES };
}

function doSetHashFlags(ctx: CtrlContext, d: readonly [number, number, number]): Result {
  if ((d[0] & ~SUPPORTED_HASH_TYPES) !== 0) return INVALID;
  if (ctx.hash.algorithm === XEN_NETIF_CTRL_HASH_ALGORITHM_NONE) return INVALID;
  ctx.hash.flags = d[0];
  return OK;
}

function doSetHashKey(ctx: CtrlContext, d: readonly [number, number, number]): Result {
  const [gref, len] = d;
  if (len > ctx.hash.maxKey) return INVALID;
  const key = new Uint8Array(ctx.hash.maxKey);
  if (len > 0 && !ctx.copyIn(gref, key, len)) return INVALID;
  // "specifying a new key invalidates any previous key": octets past `len` are zero.
  ctx.hash.key.set(key);
  return OK;
}

function doGetHashMappingSize(ctx: CtrlContext): Result {
  return { status: XEN_NETIF_CTRL_STATUS_SUCCESS, data: ctx.hash.maxMapping };
}

function doSetHashMappingSize(ctx: CtrlContext, d: readonly [number, number, number]): Result {
  if (d[0] > ctx.hash.maxMapping) return INVALID;
  // "Any previous table is invalidated by this message and any new table is assumed to be zero filled."
  ctx.hash.mapping = new Uint32Array(d[0]);
  return OK;
}

function doSetHashMapping(ctx: CtrlContext, d: readonly [number, number, number]): Result {
  const [gref, len, off] = d;
  const table = ctx.hash.mapping;
  if (off > table.length || len > table.length - off || len * 4 > PAGE_SIZE) return INVALID;
  if (len === 0) return OK;
  const bytes = new Uint8Array(len * 4);
  if (!ctx.copyIn(gref, bytes, bytes.length)) return INVALID;
  const view = new DataView(bytes.buffer);
  const entries = Uint32Array.from({ length: len }, (_, i) => view.getUint32(i * 4, true));
  // "each mapping must specify a queue between 0 and multi-queue-num-queues"
  if (entries.some((q) => q >= ctx.numQueues)) return INVALID;
  table.set(entries, off);
  return OK;
}

const OPS: Readonly<Record<number, Op>> = {
  [T.XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM]: doSetHashAlgorithm,
  [T.XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS]: doGetHashFlags,
  [T.XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS]: doSetHashFlags,
  [T.XEN_NETIF_CTRL_TYPE_SET_HASH_KEY]: doSetHashKey,
  [T.XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE]: doGetHashMappingSize,
  [T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE]: doSetHashMappingSize,
  [T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING]: doSetHashMapping,
};

/** Answer one control request; the response echoes id and type (netif.h). Never throws. */
export function handleCtrlRequest(ctx: CtrlContext, req: XenNetifCtrlRequest): XenNetifCtrlResponse {
  const op = OPS[req.type];
  const r = op === undefined ? UNSUPPORTED : op(ctx, req.data);
  return { id: req.id, type: req.type, status: r.status, data: r.data ?? 0 };
}
