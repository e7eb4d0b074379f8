/**
 * Reply and event payloads (docs/misc/xenstore.txt): encoders for the server, decoders for the
 * client. "Where no reply payload format is specified below, success responses have the
 * following payload: OK|".
 */
import { XsOp } from './ops.js';
import { latin1, splitStrings, strings } from './strings.js';
import { parsePerms, type XsPerm } from './perms.js';

export const OK_PAYLOAD: Uint8Array = strings(['OK']);

/** WATCH_EVENT `<epath>|<token>|`, sent with req_id = tx_id = 0. */
export function encodeWatchEvent(path: string, token: string): { type: number; payload: Uint8Array } {
  return { type: XsOp.watchEvent, payload: strings([path, token]) };
}

export function decodeWatchEvent(payload: Uint8Array): { path: string; token: string } | undefined {
  const { list } = splitStrings(payload);
  if (list.length < 2) return undefined;
  return { path: list[0]!, token: list[1]! };
}

/** DIRECTORY `<child-leaf-name>|*`, GET_PERMS `<perm-as-string>|+`: NUL-terminated strings. */
export function decodeStringList(payload: Uint8Array): string[] {
  return splitStrings(payload).list;
}

export function decodePermsReply(payload: Uint8Array): XsPerm[] | undefined {
  return parsePerms(splitStrings(payload).list);
}

/** A single-string reply (`<transid>|`, `<path>|`, `T|`/`F|`, GET_FEATURE's value …). */
export function decodeSingleString(payload: Uint8Array): string {
  const nul = payload.indexOf(0);
  return latin1(nul < 0 ? payload : payload.subarray(0, nul));
}

/**
 * DIRECTORY_PART `<gencnt>|<child-leaf-name>|*`. C xenstored appends one empty string after
 * the last child of the list, so `done` tells the caller to stop asking for more.
 */
export function decodeDirectoryPart(payload: Uint8Array): { generation: string; children: string[]; done: boolean } | undefined {
  const { list } = splitStrings(payload);
  if (list.length === 0) return undefined;
  const [generation, ...rest] = list as [string, ...string[]];
  const end = rest.indexOf('');
  const children = end < 0 ? rest : rest.slice(0, end);
  return { generation, children, done: end >= 0 };
}

export function isOkPayload(payload: Uint8Array): boolean {
  return decodeSingleString(payload) === 'OK';
}
