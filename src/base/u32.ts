/**
 * Free-running 32-bit index arithmetic (ring.h's RING_IDX). Every index a peer can see is
 * a u32 that wraps at 2^32; comparing or subtracting them as plain numbers breaks at the wrap.
 */
export function u32(v: number): number {
  return v >>> 0;
}

export function u32Add(a: number, b: number): number {
  return (a + b) >>> 0;
}

/** a - b modulo 2^32: the distance from b forward to a. */
export function u32Sub(a: number, b: number): number {
  return (a - b) >>> 0;
}
