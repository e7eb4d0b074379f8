/**
 * netfront's rx buffers between one post and the next: the free ones, first in first out, and
 * the grants suspended while a transient receiver reads a frame in place (front-queue.ts
 * receiveSingle), given back when the buffer is posted again.
 *
 * First in first out: buffers are reposted in the order they came back, so the grant entries
 * that are suspended and resumed are taken in turn (eight to a cache line) instead of all over
 * the table (bench net: the in-place read gained with this order, and was neutral without it).
 */
import { BugError, type GrantRef } from '../../base/index.js';
import type { GrantOps } from '../../hv/platform.js';

export class RxBufferQueue {
  private readonly free: Int32Array;
  private head = 0;
  private count = 0;
  /** 1 for a buffer whose grant `suspend` ended; `take` resumes it. */
  private readonly suspended: Uint8Array;
  /** The platform's suspendAccess / resumeAccess (GrantOps), where it has both. */
  private readonly suspendAccess: ((ref: GrantRef) => boolean) | undefined;
  private readonly resumeAccess: ((ref: GrantRef, readonly: boolean) => void) | undefined;

  /** Buffers 0..refs.length-1 (granted writable to the backend as `refs`), all free. */
  constructor(private readonly refs: Uint32Array, grants: GrantOps) {
    this.free = new Int32Array(refs.length);
    this.suspended = new Uint8Array(refs.length);
    if (grants.suspendAccess !== undefined && grants.resumeAccess !== undefined) {
      this.suspendAccess = grants.suspendAccess.bind(grants);
      this.resumeAccess = grants.resumeAccess.bind(grants);
    }
    for (let i = 0; i < refs.length; i++) this.put(i);
  }

  get available(): number {
    return this.count;
  }

  /** Can frames be read in place? Not where the platform cannot suspend a grant (xen: gntalloc). */
  get inPlace(): boolean {
    return this.suspendAccess !== undefined;
  }

  /** A buffer the backend answered for is free again. */
  put(buf: number): void {
    // Each buffer is posted at most once (front-queue.ts rxAt), so the queue never holds more.
    if (this.count === this.free.length) throw new BugError(`rx buffer ${buf} freed with all ${this.count} free`);
    this.free[(this.head + this.count) % this.free.length] = buf;
    this.count++;
  }

  /** The next buffer to post (call while `available`), its grant given back if it was suspended. */
  take(): number {
    const buf = this.free[this.head]!;
    this.head = (this.head + 1) % this.free.length;
    this.count--;
    if (this.suspended[buf] === 1) {
      // Read in place since it came back: the backend may write it again.
      this.suspended[buf] = 0;
      this.resumeAccess!(this.refs[buf]! as GrantRef, false);
    }
    return buf;
  }

  /**
   * End the backend's access to free buffer `buf` (call only when `inPlace`), so that its frame
   * can be read with nobody able to change it, until `take` posts it again. False, changing
   * nothing, while the backend is still copying into it.
   */
  suspend(buf: number): boolean {
    if (!this.suspendAccess!(this.refs[buf]! as GrantRef)) return false;
    this.suspended[buf] = 1;
    return true;
  }
}
