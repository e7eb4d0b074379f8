/**
 * The frontend's granted pages: allocation, the persistent pool, and revocation that may fail.
 *
 * R8 / grant_table.h: ending foreign access "cannot be done directly" while the backend maps
 * the page; `endAccess` then returns false and the page must not be reused or freed — the
 * backend could still write into whatever we would put there. Such pages wait in the
 * reclaimer, which retries until the backend lets go; only then is the frame freed.
 *
 * Pages are zeroed when allocated (DomainMemory.allocPages) and, before each reuse from the
 * persistent pool, zeroed again when the backend is not trusted (R4: a granted page carries
 * nothing but the payload of the request it serves).
 */
import type { DomId, Frame, GrantRef } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';

export interface GrantedPage {
  readonly frame: Frame;
  readonly ref: GrantRef;
  readonly bytes: Uint8Array;
  readonly readonly: boolean;
  /** Set for a caller's BlkBuffer page granted in place (zero copy). */
  readonly borrowed?: BorrowedPage;
  /** A persistent BlkBuffer's page: stays granted after the request (the buffer ends it). */
  readonly kept?: true;
}

/** A page granted from a caller's BlkBuffer: its frame is not ours to free. */
export interface BorrowedPage {
  /** Called once the grant has ended (immediately, or when the backend finally unmaps). */
  readonly returned: () => void;
  /** Called when ending the grant had to be deferred. */
  readonly deferred: () => void;
}

interface Waiting {
  readonly ref: GrantRef;
  readonly frame: Frame;
  readonly borrowed?: BorrowedPage;
}

/** Pages whose grant could not be ended yet; retried on a timer until the backend unmaps. */
export class GrantReclaimer {
  private readonly waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly platform: Platform) {}

  get pending(): number {
    return this.waiting.length;
  }

  /**
   * End access to `page` and free its frame (or hand a borrowed frame back), now or as soon
   * as the backend allows.
   */
  release(page: { ref: GrantRef; frame: Frame; borrowed?: BorrowedPage }): void {
    if (this.platform.grants.endAccess(page.ref)) {
      this.done(page);
      return;
    }
    page.borrowed?.deferred();
    this.waiting.push({ ref: page.ref, frame: page.frame, borrowed: page.borrowed });
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.retry(), 10);
      // Retrying must not hold a thread whose work is done: a peer that never unmaps would
      // keep it alive for ever (its pages stay allocated either way, R8).
      this.timer.unref();
    }
  }

  private done(w: { frame: Frame; borrowed?: BorrowedPage }): void {
    if (w.borrowed !== undefined) w.borrowed.returned();
    else this.platform.memory.freePages([w.frame]);
  }

  /** Try again to end every deferred grant; returns how many are still mapped by the peer. */
  retry(): number {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const w = this.waiting[i]!;
      if (this.platform.grants.endAccess(w.ref)) {
        this.waiting.splice(i, 1);
        this.done(w);
      }
    }
    if (this.waiting.length === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    return this.waiting.length;
  }

  /** Wait (bounded) until every deferred grant is reclaimed; false if some are still mapped. */
  async settle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.retry() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.waiting.length === 0;
  }

  /** Stop retrying. Pages still mapped by the peer stay allocated: never reused (R8). */
  dispose(): void {
    this.retry();
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Allocate one zeroed frame and grant it to `remote`. */
export function grantNewPage(platform: Platform, remote: DomId, readonly: boolean): GrantedPage {
  const [frame] = platform.memory.allocPages(1) as [Frame];
  try {
    const ref = platform.grants.grantAccess(remote, frame, readonly);
    return { frame, ref, bytes: platform.memory.page(frame), readonly };
  } catch (err) {
    platform.memory.freePages([frame]);
    throw err;
  }
}

/**
 * A queue's persistent grants (feature-persistent): read-write pages granted once and reused,
 * LIFO as blkif.h recommends ("a subset of all persistently mapped grants gets used
 * commonly"). Bounded: past `max` pages, callers use transient grants.
 */
export class PersistentPool {
  private readonly free: GrantedPage[] = [];
  private readonly all: GrantedPage[] = [];

  constructor(
    private readonly platform: Platform,
    private readonly remote: DomId,
    private readonly max: number,
    private readonly zeroOnReuse: boolean,
  ) {}

  get size(): number {
    return this.all.length;
  }

  /** A page, or undefined when the pool is at its bound and all pages are in use. */
  take(): GrantedPage | undefined {
    const p = this.free.pop();
    if (p !== undefined) {
      if (this.zeroOnReuse) p.bytes.fill(0);
      return p;
    }
    if (this.all.length >= this.max) return undefined;
    const fresh = grantNewPage(this.platform, this.remote, false);
    this.all.push(fresh);
    return fresh;
  }

  put(page: GrantedPage): void {
    this.free.push(page);
  }

  /** Hand every page to the reclaimer (disconnect). */
  dispose(reclaimer: GrantReclaimer): void {
    for (const p of this.all) reclaimer.release(p);
    this.all.length = 0;
    this.free.length = 0;
  }
}
