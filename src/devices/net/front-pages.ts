/**
 * Netfront's granted pages: allocated zeroed (nothing of ours leaks to the backend, XSA-403),
 * granted once for the life of a connection, and given back only when the grant could be
 * ended. `endAccess` fails while the backend still maps the page (R8, XSA-396): such pages are
 * kept aside and retried, never reused or freed under a live mapping.
 */
import type { DomId, Frame, GrantRef } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';

export interface GrantedPage {
  readonly frame: Frame;
  readonly ref: GrantRef;
  /** A live view of our own page. */
  readonly bytes: Uint8Array;
}

export class PagePool {
  private readonly deferred: GrantedPage[] = [];
  private retry: NodeJS.Timeout | undefined;
  private retries = 0;

  constructor(private readonly platform: Platform, private readonly backend: DomId) {}

  /** `count` zeroed pages granted to the backend (read-only or writable). All or nothing. */
  grant(count: number, readonly: boolean): GrantedPage[] {
    const frames = this.platform.memory.allocPages(count);
    const out: GrantedPage[] = [];
    try {
      for (const frame of frames) {
        const ref = this.platform.grants.grantAccess(this.backend, frame, readonly);
        out.push({ frame, ref, bytes: this.platform.memory.page(frame) });
      }
    } catch (err) {
      this.release(out);
      this.platform.memory.freePages(frames.slice(out.length));
      throw err;
    }
    return out;
  }

  /** End access and free; pages the backend still maps wait for a later retry. */
  release(pages: readonly GrantedPage[]): void {
    const free: Frame[] = [];
    for (const p of pages) {
      if (this.platform.grants.endAccess(p.ref)) free.push(p.frame);
      else this.deferred.push(p);
    }
    if (free.length > 0) this.platform.memory.freePages(free);
    this.scheduleRetry();
  }

  /** Pages still waiting for the backend to unmap them. */
  get pending(): number {
    return this.deferred.length;
  }

  /** Try the deferred pages again now; true when none are left. */
  retryNow(): boolean {
    const waiting = this.deferred.splice(0);
    this.release(waiting);
    return this.deferred.length === 0;
  }

  private scheduleRetry(): void {
    if (this.deferred.length === 0 || this.retry !== undefined) return;
    // Back off up to 1 s; a backend that never unmaps keeps its pages, we keep trying rarely.
    const delay = Math.min(1000, 10 * 2 ** Math.min(this.retries++, 7));
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.retryNow();
    }, delay);
    this.retry.unref();
  }

  /** Try once more now; what is still mapped keeps being retried (never reused). */
  dispose(): void {
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
    this.retryNow();
  }
}

/**
 * Views of spans of a fixed list of pages, the last one per page kept: netback writes each
 * rx buffer at the same offset and length for a stream's frames, so the receive path reuses
 * its view instead of making one per frame (a new view of guest memory costs about as much
 * as the memmove of the frame out of it).
 */
export class SpanCache {
  private readonly offsets: Int32Array;
  private readonly lengths: Int32Array;
  private readonly views: Uint8Array[];

  constructor(private readonly pages: readonly GrantedPage[]) {
    this.offsets = new Int32Array(pages.length).fill(-1);
    this.lengths = new Int32Array(pages.length);
    this.views = new Array<Uint8Array>(pages.length);
  }

  /** `pages[i].bytes.subarray(offset, offset + len)`; the caller checked the span lies in the page. */
  get(i: number, offset: number, len: number): Uint8Array {
    if (this.offsets[i] === offset && this.lengths[i] === len) return this.views[i]!;
    const v = this.pages[i]!.bytes.subarray(offset, offset + len);
    this.offsets[i] = offset;
    this.lengths[i] = len;
    this.views[i] = v;
    return v;
  }
}
