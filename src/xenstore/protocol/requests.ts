/**
 * The argument forms of every request (docs/misc/xenstore.txt, C xenstored's parsing), as one
 * typed union with an encoder (client side) and a decoder (server side).
 *
 * Decoding is strict where C xenstored is: one-argument requests must be exactly `arg\0`
 * (onearg()); multi-argument requests count only NUL-terminated strings (get_strings()).
 * A malformed payload decodes to EINVAL, never an exception.
 */
import { XsOp, type XsOpName } from './ops.js';
import { oneArg, splitStrings, strings, stringThenBytes } from './strings.js';
import { formatPerm, parsePerms, type XsPerm } from './perms.js';
import type { XsErrorName } from './errors.js';

export type XsRequest =
  | { readonly op: 'control'; readonly args: readonly string[] }
  | { readonly op: 'directory' | 'read' | 'getPerms' | 'mkdir' | 'rm'; readonly path: string }
  | { readonly op: 'watch'; readonly path: string; readonly token: string; readonly depth?: number }
  | { readonly op: 'unwatch'; readonly path: string; readonly token: string }
  | { readonly op: 'transactionStart' }
  | { readonly op: 'transactionEnd'; readonly commit: boolean }
  | { readonly op: 'introduce'; readonly domid: number; readonly gfn: number; readonly port: number }
  | { readonly op: 'release' | 'getDomainPath' | 'isDomainIntroduced' | 'resume'; readonly domid: number }
  | { readonly op: 'write'; readonly path: string; readonly value: Uint8Array }
  | { readonly op: 'setPerms'; readonly path: string; readonly perms: readonly XsPerm[] }
  | { readonly op: 'setTarget'; readonly domid: number; readonly target: number }
  | { readonly op: 'resetWatches' }
  | { readonly op: 'directoryPart'; readonly path: string; readonly offset: number }
  | { readonly op: 'getFeature'; readonly domid?: number }
  | { readonly op: 'setFeature'; readonly domid: number; readonly features: number }
  | { readonly op: 'getQuota'; readonly domid?: number; readonly quota?: string }
  | { readonly op: 'setQuota'; readonly domid?: number; readonly quota: string; readonly value: number };

export type DecodeResult = { readonly ok: true; readonly req: XsRequest } | { readonly ok: false; readonly error: XsErrorName };

const bad: DecodeResult = { ok: false, error: 'EINVAL' };

/** A domid argument: decimal 0..65535 (xenstore.txt "<domid>"). */
export function parseDomidArg(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const v = Number(s);
  return v <= 0xffff ? v : undefined;
}

/** An unsigned decimal u32 argument. */
export function parseU32Arg(s: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(s)) return undefined;
  const v = Number(s);
  return v <= 0xffffffff ? v : undefined;
}

function ok(req: XsRequest): DecodeResult {
  return { ok: true, req };
}

function decodePath(op: 'directory' | 'read' | 'getPerms' | 'mkdir' | 'rm', payload: Uint8Array): DecodeResult {
  const path = oneArg(payload);
  return path === undefined ? bad : ok({ op, path });
}

function decodeDomidOnly(op: 'release' | 'getDomainPath' | 'isDomainIntroduced' | 'resume', payload: Uint8Array): DecodeResult {
  const arg = oneArg(payload);
  const domid = arg === undefined ? undefined : parseDomidArg(arg);
  return domid === undefined ? bad : ok({ op, domid });
}

function decodeWatch(payload: Uint8Array): DecodeResult {
  const { list } = splitStrings(payload);
  if (list.length !== 2 && list.length !== 3) return bad;
  const [path, token, depthArg] = list as [string, string, string?];
  if (depthArg === undefined) return ok({ op: 'watch', path, token });
  const depth = parseU32Arg(depthArg);
  return depth === undefined ? bad : ok({ op: 'watch', path, token, depth });
}

function decodeWrite(payload: Uint8Array): DecodeResult {
  const nul = payload.indexOf(0);
  if (nul < 0) return bad;
  const path = splitStrings(payload.subarray(0, nul + 1)).list[0]!;
  return ok({ op: 'write', path, value: payload.slice(nul + 1) });
}

function decodeSetPerms(payload: Uint8Array): DecodeResult {
  const { list } = splitStrings(payload);
  if (list.length < 2) return bad;
  const perms = parsePerms(list.slice(1));
  return perms === undefined ? bad : ok({ op: 'setPerms', path: list[0]!, perms });
}

function decodeIntroduce(payload: Uint8Array): DecodeResult {
  const { list } = splitStrings(payload);
  if (list.length < 3) return bad;
  const domid = parseDomidArg(list[0]!);
  const gfn = /^-?[0-9]{1,19}$/.test(list[1]!) ? Number(list[1]) : undefined;
  const port = parseU32Arg(list[2]!);
  if (domid === undefined || gfn === undefined || !Number.isSafeInteger(gfn) || port === undefined) return bad;
  return ok({ op: 'introduce', domid, gfn, port });
}

function decodeTwoDomids(payload: Uint8Array): DecodeResult {
  const { list } = splitStrings(payload);
  if (list.length !== 2) return bad;
  const domid = parseDomidArg(list[0]!);
  const target = parseDomidArg(list[1]!);
  return domid === undefined || target === undefined ? bad : ok({ op: 'setTarget', domid, target });
}

function decodeDirectoryPart(payload: Uint8Array): DecodeResult {
  const { list, trailing } = splitStrings(payload);
  if (list.length !== 2 || trailing !== 0) return bad;
  const offset = parseU32Arg(list[1]!);
  return offset === undefined ? bad : ok({ op: 'directoryPart', path: list[0]!, offset });
}

function decodeTransactionEnd(payload: Uint8Array): DecodeResult {
  const arg = oneArg(payload);
  if (arg === 'T') return ok({ op: 'transactionEnd', commit: true });
  if (arg === 'F') return ok({ op: 'transactionEnd', commit: false });
  return bad;
}

function decodeGetFeature(payload: Uint8Array): DecodeResult {
  const { list } = splitStrings(payload);
  if (list.length === 0) return ok({ op: 'getFeature' });
  if (list.length !== 1) return bad;
  const domid = parseDomidArg(list[0]!);
  return domid === undefined ? bad : ok({ op: 'getFeature', domid });
}

function decodeSetFeature(payload: Uint8Array): DecodeResult {
  const { list } = splitStrings(payload);
  if (list.length !== 2) return bad;
  const domid = parseDomidArg(list[0]!);
  const features = parseU32Arg(list[1]!);
  return domid === undefined || features === undefined ? bad : ok({ op: 'setFeature', domid, features });
}

function decodeGetQuota(payload: Uint8Array): DecodeResult {
  const { list } = splitStrings(payload);
  if (list.length === 0) return ok({ op: 'getQuota' });
  if (list.length === 1) return ok({ op: 'getQuota', quota: list[0]! });
  if (list.length !== 2) return bad;
  const domid = parseDomidArg(list[0]!);
  return domid === undefined ? bad : ok({ op: 'getQuota', domid, quota: list[1]! });
}

function decodeSetQuota(payload: Uint8Array): DecodeResult {
  const { list } = splitStrings(payload);
  if (list.length !== 2 && list.length !== 3) return bad;
  const domArg = list.length === 3 ? list[0]! : undefined;
  const [quota, valueArg] = list.slice(-2) as [string, string];
  const value = parseU32Arg(valueArg);
  if (value === undefined) return bad;
  if (domArg === undefined) return ok({ op: 'setQuota', quota, value });
  const domid = parseDomidArg(domArg);
  return domid === undefined ? bad : ok({ op: 'setQuota', domid, quota, value });
}

/**
 * Decode a request payload for a known op. Server-to-client types (WATCH_EVENT, ERROR) are
 * not requests: EINVAL.
 */
export function decodeRequest(op: XsOpName, payload: Uint8Array): DecodeResult {
  switch (op) {
    case 'control': {
      const { list } = splitStrings(payload);
      return list.length < 1 ? bad : ok({ op, args: list });
    }
    case 'directory':
    case 'read':
    case 'getPerms':
    case 'mkdir':
    case 'rm':
      return decodePath(op, payload);
    case 'watch':
      return decodeWatch(payload);
    case 'unwatch': {
      const { list } = splitStrings(payload);
      return list.length !== 2 ? bad : ok({ op, path: list[0]!, token: list[1]! });
    }
    case 'transactionStart':
      return ok({ op });
    case 'transactionEnd':
      return decodeTransactionEnd(payload);
    case 'introduce':
      return decodeIntroduce(payload);
    case 'release':
    case 'getDomainPath':
    case 'isDomainIntroduced':
    case 'resume':
      return decodeDomidOnly(op, payload);
    case 'write':
      return decodeWrite(payload);
    case 'setPerms':
      return decodeSetPerms(payload);
    case 'setTarget':
      return decodeTwoDomids(payload);
    case 'resetWatches':
      return ok({ op });
    case 'directoryPart':
      return decodeDirectoryPart(payload);
    case 'getFeature':
      return decodeGetFeature(payload);
    case 'setFeature':
      return decodeSetFeature(payload);
    case 'getQuota':
      return decodeGetQuota(payload);
    case 'setQuota':
      return decodeSetQuota(payload);
    case 'watchEvent':
    case 'error':
      return bad;
  }
}

function optional(...xs: (string | undefined)[]): string[] {
  return xs.filter((x): x is string => x !== undefined);
}

/** The wire type and payload of a request, in the exact form libxenstore sends it. */
export function encodeRequest(req: XsRequest): { type: number; payload: Uint8Array } {
  return { type: XsOp[req.op], payload: encodeRequestPayload(req) };
}

function encodeRequestPayload(req: XsRequest): Uint8Array {
  switch (req.op) {
    case 'control':
      return strings(req.args);
    case 'directory':
    case 'read':
    case 'getPerms':
    case 'mkdir':
    case 'rm':
      return strings([req.path]);
    case 'watch':
      return strings(optional(req.path, req.token, req.depth === undefined ? undefined : String(req.depth)));
    case 'unwatch':
      return strings([req.path, req.token]);
    case 'transactionStart':
    case 'resetWatches':
      return strings(['']);
    case 'transactionEnd':
      return strings([req.commit ? 'T' : 'F']);
    case 'introduce':
      return strings([String(req.domid), String(req.gfn), String(req.port)]);
    case 'release':
    case 'getDomainPath':
    case 'isDomainIntroduced':
    case 'resume':
      return strings([String(req.domid)]);
    case 'write':
      return stringThenBytes(req.path, req.value);
    case 'setPerms':
      return strings([req.path, ...req.perms.map(formatPerm)]);
    case 'setTarget':
      return strings([String(req.domid), String(req.target)]);
    case 'directoryPart':
      return strings([req.path, String(req.offset)]);
    case 'getFeature':
      return strings(optional(req.domid === undefined ? undefined : String(req.domid)));
    case 'setFeature':
      return strings([String(req.domid), String(req.features)]);
    case 'getQuota':
      return strings(optional(req.domid === undefined ? undefined : String(req.domid), req.quota));
    case 'setQuota':
      return strings(optional(req.domid === undefined ? undefined : String(req.domid), req.quota, String(req.value)));
  }
}
