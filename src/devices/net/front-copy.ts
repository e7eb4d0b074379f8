/**
 * netfront's private copies out of its shared rx pages: the one copy each received byte gets.
 */
import type { FrameSlab } from './bridge/index.js';

/** One private copy of the packet's parts (views of our shared rx pages): each byte read once. */
export function concat(parts: Uint8Array[], slab: FrameSlab): Uint8Array {
  if (parts.length === 1) return slab.copy(parts[0]!);
  let len = 0;
  for (const p of parts) len += p.length;
  const out = slab.alloc(len);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
