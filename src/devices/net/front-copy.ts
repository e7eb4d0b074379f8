/**
 * netfront's private copies out of its shared rx pages: the one copy each received byte gets.
 */
import { PAGE_SIZE } from '../../hv/platform.js';
import type { FrameSlab } from './bridge/index.js';

/**
 * One reused buffer for the copy of a one-slot frame, for a receiver that copies what it keeps
 * (NetFront.rxTransient). The frame is placed at its offset in its page mod 8: V8 copies out of
 * shared memory by 8-byte words only between addresses equal mod 8, byte by byte otherwise
 * (several times slower). The view handed out last is reused while the place repeats (a
 * stream's frames have one size and offset).
 */
export class RxCopyBuffer {
  private readonly bytes = new Uint8Array(PAGE_SIZE + 8);
  private view = this.bytes.subarray(0, 0);
  private at = 0;

  /** `len` bytes (len <= PAGE_SIZE) for a frame found at `pageOffset` in its page. */
  frame(pageOffset: number, len: number): Uint8Array {
    const at = pageOffset & 7;
    if (this.view.length !== len || this.at !== at) {
      this.view = this.bytes.subarray(at, at + len);
      this.at = at;
    }
    return this.view;
  }
}

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
