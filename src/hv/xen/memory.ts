/**
 * Our own pages on a real Xen domain. A userspace process cannot write its kernel's grant
 * table, so pages that a peer must map come from /dev/xen/gntalloc: IOCTL_GNTALLOC_ALLOC_GREF
 * allocates a kernel page, grants it to one domain and returns the ref; mmap gives us the page.
 *
 * Consequence for the `DomainMemory`/`GrantOps` contract: gntalloc grants a page at the moment
 * it is allocated, to the one domain named then. So each frame here is granted (writable) to
 * the platform's `grantPeer` when allocated, and `grantAccess(remote, frame)` hands out that
 * ref when `remote` is the peer (EINVAL otherwise). A read-only request is granted writable:
 * the granter can only lose by that, never the peer. `endAccess` returns true: the kernel
 * ends the grant when the page is deallocated, deferring it while the peer still maps the
 * page (gnttab_end_foreign_access), so a freed frame is never handed to the peer's mapping.
 *
 * Without gntalloc (or without a peer) frames are plain private pages that cannot be granted.
 */
import { XenpvError, trackResource, type DomId, type Frame, type GrantRef } from '../../base/index.js';
import { PAGE_SIZE, type DomainMemory } from '../platform.js';
import { check, ioc, type Native } from './ffi.js';
import { MappedRegion } from './region.js';

// <xen/sys/gntalloc.h>
export const IOCTL_GNTALLOC_ALLOC_GREF = ioc('G', 5, 24);
export const IOCTL_GNTALLOC_DEALLOC_GREF = ioc('G', 6, 16);
const GNTALLOC_FLAG_WRITABLE = 1;

interface OwnPage {
  readonly region: MappedRegion;
  readonly page: Uint8Array;
  /** gntalloc's offset for the page, or undefined for a private page. */
  readonly index: bigint | undefined;
  readonly ref: GrantRef | undefined;
  granted: boolean;
  untrack: (() => void) | undefined;
}

export class XenDomainMemory implements DomainMemory {
  private readonly frames = new Map<number, OwnPage>();
  private readonly byRef = new Map<number, number>();
  private nextFrame = 1;

  constructor(
    private readonly native: Native,
    private readonly gntallocFd: number | undefined,
    /** The one domain our pages are granted to (usually the backend domain), if any. */
    readonly grantPeer: DomId | undefined,
    /** Most frames alive at once (bounds what a runaway caller can pin in the kernel). */
    readonly pageCount = 65536,
  ) {}

  page(frame: Frame): Uint8Array {
    const p = this.frames.get(frame);
    if (p === undefined) throw new RangeError(`frame ${frame} is not allocated here`);
    return p.page;
  }

  allocPages(count: number): Frame[] {
    if (!Number.isInteger(count) || count < 0) throw new XenpvError('EINVAL', `bad page count ${count}`);
    if (this.frames.size + count > this.pageCount) throw new XenpvError('ENOMEM', `more than ${this.pageCount} pages`);
    const out: Frame[] = [];
    try {
      for (let i = 0; i < count; i++) out.push(this.allocOne());
    } catch (err) {
      this.freePages(out);
      throw err;
    }
    return out;
  }

  freePages(frames: readonly Frame[]): void {
    for (const f of frames) {
      const p = this.frames.get(f);
      if (p === undefined) continue;
      this.frames.delete(f);
      p.untrack?.();
      p.region.retire();
      if (p.index !== undefined) {
        this.byRef.delete(p.ref!);
        const req = new Uint8Array(16);
        const dv = new DataView(req.buffer);
        dv.setBigUint64(0, p.index, true);
        dv.setUint32(8, 1, true);
        this.native.ioctl(this.gntallocFd!, IOCTL_GNTALLOC_DEALLOC_GREF, req);
      }
    }
  }

  /** GrantOps.grantAccess for a frame of ours. */
  grantOf(remote: DomId, frame: Frame, _readonly: boolean): GrantRef {
    const p = this.frames.get(frame);
    if (p === undefined) throw new XenpvError('EINVAL', `frame ${frame} is not ours`, { frame });
    if (p.ref === undefined || remote !== this.grantPeer) {
      throw new XenpvError('EINVAL', `xen platform: frame ${frame} can only be granted to dom${this.grantPeer ?? '(none)'}`, { remote, frame });
    }
    if (!p.granted) {
      p.granted = true;
      p.untrack = trackResource('grant-access', `xen: ref ${p.ref} to dom${remote}`);
    }
    return p.ref;
  }

  /** GrantOps.endAccess. */
  endGrant(ref: GrantRef): boolean {
    const frame = this.byRef.get(ref);
    const p = frame === undefined ? undefined : this.frames.get(frame);
    if (p === undefined || !p.granted) throw new XenpvError('EINVAL', `ref ${ref} is not granted`, { ref });
    p.granted = false;
    p.untrack?.();
    p.untrack = undefined;
    return true;
  }

  private allocOne(): Frame {
    const frame = this.nextFrame++ as Frame;
    if (this.gntallocFd === undefined || this.grantPeer === undefined) {
      const region = MappedRegion.anonymous(this.native, PAGE_SIZE);
      this.frames.set(frame, { region, page: new Uint8Array(region.buffer), index: undefined, ref: undefined, granted: false, untrack: undefined });
      return frame;
    }
    const req = new Uint8Array(24);
    const dv = new DataView(req.buffer);
    dv.setUint16(0, this.grantPeer, true);
    dv.setUint16(2, GNTALLOC_FLAG_WRITABLE, true);
    dv.setUint32(4, 1, true);
    check(this.native, this.native.ioctl(this.gntallocFd, IOCTL_GNTALLOC_ALLOC_GREF, req), 'IOCTL_GNTALLOC_ALLOC_GREF');
    const index = dv.getBigUint64(8, true);
    const ref = dv.getUint32(16, true) as GrantRef;
    const region = MappedRegion.map(this.native, this.gntallocFd, index, PAGE_SIZE, true, 'a gntalloc page');
    const page = new Uint8Array(region.buffer);
    page.fill(0);
    this.frames.set(frame, { region, page, index, ref, granted: false, untrack: undefined });
    this.byRef.set(ref, frame);
    return frame;
  }
}
