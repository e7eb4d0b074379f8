/**
 * Branded integer ids, so a grant ref cannot be passed where a port is expected.
 * Each constructor validates its range: values from a peer go through these before use.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type DomId = Brand<number, 'DomId'>;
export type GrantRef = Brand<number, 'GrantRef'>;
export type EvtchnPort = Brand<number, 'EvtchnPort'>;
export type Frame = Brand<number, 'Frame'>;

/** DOMID_FIRST_RESERVED in xen.h: ids at or above it are special (DOMID_SELF, DOMID_IO, ...). */
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0 as DomId;
export const DOMID_INVALID = 0x7ff4 as DomId;
export const DOM0 = 0 as DomId;

export function isU16(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

export function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** A real domain id (not a reserved one), or undefined. */
export function toDomId(v: number): DomId | undefined {
  return Number.isInteger(v) && v >= 0 && v < DOMID_FIRST_RESERVED ? (v as DomId) : undefined;
}

export function toGrantRef(v: number): GrantRef | undefined {
  return isU32(v) ? (v as GrantRef) : undefined;
}

export function toEvtchnPort(v: number): EvtchnPort | undefined {
  return isU32(v) ? (v as EvtchnPort) : undefined;
}

export function toFrame(v: number): Frame | undefined {
  return isU32(v) ? (v as Frame) : undefined;
}
