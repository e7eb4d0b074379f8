/**
 * A bridge's FrameMemory (bridge/slab.ts) from dom0's platform: on the sim, dom0's own pages,
 * where a queued frame's copies in and out are memmoves; elsewhere none (on Xen a page of our
 * own is a mapping of its own, and copies there are V8's whatever the buffer).
 */
import { errorCode, type Frame } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import type { FrameMemory } from './bridge/index.js';

export function frameMemoryOf(platform: Platform): FrameMemory | undefined {
  if (platform.kind !== 'sim') return undefined;
  const memory = platform.memory;
  const frames = new Map<Uint8Array, Frame>();
  return {
    takePage: () => {
      try {
        const [f] = memory.allocPages(1);
        const page = memory.page(f!);
        frames.set(page, f!);
        return page;
      } catch (err) {
        // dom0 has no page to spare: the pool's buffers are V8's, as without a FrameMemory.
        if (errorCode(err) === 'ENOMEM') return undefined;
        throw err;
      }
    },
    copy: (dst, at, src) => memory.copy(dst, at, src),
    releasePages: (pages) => {
      const back: Frame[] = [];
      for (const p of pages) {
        const f = frames.get(p);
        if (f === undefined) continue; // not ours: nothing to free twice
        frames.delete(p);
        back.push(f);
      }
      if (back.length > 0) memory.freePages(back);
    },
  };
}
