/**
 * Error replies travel by name: type XS_ERROR, payload "E<name>\0" (docs/misc/xenstore.txt
 * "Error replies"). The names are xs_wire.h's `xsd_errors[]` table, which is append-only.
 */
import { xsd_errors, type XsdErrorName } from '../../abi/io/xs_wire.js';
import { latin1, strings } from './strings.js';

/** xsd_errors[] names in table order ("New errors should be added at the end of the array"). */
export const XS_ERROR_NAMES: readonly XsErrorName[] = xsd_errors.map((e) => e.errstring as XsErrorName);

export type XsErrorName = XsdErrorName;

/** Linux errno values of the names (what libxenstore sets `errno` to on the client side). */
export const XS_ERRNO: Readonly<Record<XsErrorName, number>> = Object.fromEntries(
  xsd_errors.map((e) => [e.errstring, e.errnum]),
) as Record<XsErrorName, number>;

const names = new Set<string>(XS_ERROR_NAMES);

export function isXsErrorName(s: string): s is XsErrorName {
  return names.has(s);
}

/** The payload of an XS_ERROR reply: the name and its NUL. */
export function encodeErrorPayload(name: XsErrorName): Uint8Array {
  return strings([name]);
}

/**
 * The error name in an XS_ERROR payload. libxenstore maps unknown names to EINVAL; we keep
 * the unknown text so a caller can report it, flagged `known: false`.
 */
export function decodeErrorPayload(payload: Uint8Array): { name: string; known: boolean } {
  const nul = payload.indexOf(0);
  const name = latin1(nul < 0 ? payload : payload.subarray(0, nul));
  return { name, known: isXsErrorName(name) };
}

/** A failed request as a value (never thrown across the protocol boundary). */
export class XsError extends Error {
  constructor(readonly errorName: XsErrorName, detail?: string) {
    super(detail === undefined ? errorName : `${errorName}: ${detail}`);
    this.name = 'XsError';
  }
}
