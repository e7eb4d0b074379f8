/**
 * netfront's private copies out of its shared rx pages: the one copy each received byte gets,
 * but for the one-slot frames of a transient receiver on a platform that can suspend the
 * backend's access to a page (front-queue.ts receiveSingle reads those in place).
 */
import type { Disposable, Frame } from '../../base/index.js';
import type { DomainMemory } from '../../hv/platform.js';
import { ScratchFrame, type FrameSlab } from './bridge/index.js';

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

/**
 * The copy of a one-slot frame for a receiver that copies what it keeps
 * (NetFront.rxTransient), reused frame after frame, placed at the frame's offset in its page
 * mod 8: V8 copies out of shared memory by 8-byte words only between addresses equal mod 8,
 * byte by byte otherwise. A page of our own (a frame ends inside its rx page, so at its offset
 * mod 8 it fits one): on the sim it lies in machine memory, where the copy is a memmove
 * (DomainMemory.copy).
 */
export class TransientCopy implements Disposable {
  private readonly frame: Frame;
  private readonly buf: ScratchFrame;
  private held = true;

  constructor(private readonly memory: DomainMemory) {
    [this.frame] = memory.allocPages(1) as [Frame];
    this.buf = new ScratchFrame(memory.page(this.frame));
  }

  /** A copy of `src`, which starts at `offset` in its rx page; valid until the next call. */
  of(src: Uint8Array, offset: number): Uint8Array {
    const frame = this.buf.frameAt(offset & 7, src.length);
    this.memory.copy(frame, 0, src);
    return frame;
  }

  dispose(): void {
    if (this.held) this.memory.freePages([this.frame]);
    this.held = false;
  }
}
