/**
 * Our own pages on a real Xen domain, and the grants of them. A userspace process cannot
 * write its kernel's grant table, so a grant is made through /dev/xen/gntalloc:
 * IOCTL_GNTALLOC_ALLOC_GREF allocates a kernel page, grants it to the one domain named in that
 * call (writable only with GNTALLOC_FLAG_WRITABLE) and returns the ref; mmap gives us the page.
 *
 * gntalloc grants a page when it allocates it, while the `DomainMemory`/`GrantOps` contract
 * allocates a frame first and grants it later, to any domain, read-only or not. So a frame
 * here is private memory until `grantAccess`, which allocates a gntalloc page for exactly that
 * (remote, readonly) and maps it over the frame's address (MAP_FIXED), bytes kept: every view
 * of the frame now reads and writes the granted page. `endAccess` maps private memory back over
 * it (bytes kept) and deallocates the gntalloc page. One grant per frame at a time (EBUSY for a
 * second): a gntalloc page has one grantee.
 *
 * What `endAccess` can know (reliability.md R8): Linux's gntalloc ends the grant when the page
 * is deallocated, and while the grantee still maps it the kernel keeps the page and retries
 * later (gnttab_end_foreign_access); the ioctl says nothing about which happened. Whether the
 * grantee maps the page is the entry's GTF_reading/GTF_writing bits, which only the kernel and
 * Xen see. So endAccess asks `inUse` (grant-status.ts, reading the entry through the grant
 * table when this domain can map it: a PV dom0; a domU's Linux refuses every privcmd hypercall,
 * EPERM, "No target domain found, blocking all hypercalls", seen on real Xen 4.17 with Debian's
 * 6.1 kernel) and, when that cannot tell, answers true: the frame's
 * memory is then ours again (private pages), never the page the grantee may still map, so
 * reusing the frame cannot leak to or be corrupted by the grantee, which is R8's purpose.
 */
import { XenpvError, trackResource, type DomId, type Frame, type GrantRef } from '../../base/index.js';
import { PAGE_SIZE, type DomainMemory } from '../platform.js';
import { check, ioc, type Native } from './ffi.js';
import { MappedRegion } from './region.js';

// <xen/sys/gntalloc.h>
export const GNTALLOC_FLAG_WRITABLE = 1;
/** struct ioctl_gntalloc_alloc_gref with one gref: domid u16, flags u16, count u32, index u64, gref_ids[1]. */
export const ALLOC_GREF_LAYOUT = { size: 24, domid: 0, flags: 2, count: 4, index: 8, grefIds: 16 } as const;
/** struct ioctl_gntalloc_dealloc_gref: index u64, count u32. */
export const DEALLOC_GREF_LAYOUT = { size: 16, index: 0, count: 8 } as const;
export const IOCTL_GNTALLOC_ALLOC_GREF = ioc('G', 5, ALLOC_GREF_LAYOUT.size);
export const IOCTL_GNTALLOC_DEALLOC_GREF = ioc('G', 6, DEALLOC_GREF_LAYOUT.size);

interface Grant {
  readonly index: bigint;
  readonly ref: GrantRef;
  readonly remote: DomId;
  readonly readonly: boolean;
  readonly untrack: () => void;
}

interface OwnPage {
  readonly region: MappedRegion;
  readonly page: Uint8Array;
  grant: Grant | undefined;
}

/** Is `ref` (granted to `remote`) mapped by the grantee now? undefined: cannot be told here. */
export type GrantInUse = (ref: GrantRef, remote: DomId) => boolean | undefined;

export class XenDomainMemory implements DomainMemory {
  private readonly frames = new Map<number, OwnPage>();
  private readonly byRef = new Map<number, number>();
  private nextFrame = 1;
  /** Set by the platform when the grant entries can be read (grant-status.ts). */
  inUse: GrantInUse = () => undefined;

  constructor(
    private readonly native: Native,
    private readonly gntallocFd: number | undefined,
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
    for (let i = 0; i < count; i++) {
      const frame = this.nextFrame++ as Frame;
      const region = MappedRegion.anonymous(this.native, PAGE_SIZE);
      this.frames.set(frame, { region, page: new Uint8Array(region.buffer), grant: undefined });
      out.push(frame);
    }
    return out;
  }

  /** DomainMemory.copy: our pages are separate mappings here, so V8's copy. */
  copy(dst: Uint8Array, at: number, src: Uint8Array): void {
    dst.set(src, at);
  }

  /** Free frames; a frame still granted has its grant ended first (gntalloc defers if mapped). */
  freePages(frames: readonly Frame[]): void {
    for (const f of frames) {
      const p = this.frames.get(f);
      if (p === undefined) continue;
      this.frames.delete(f);
      // Retiring first drops our mapping of a granted page without copying it back.
      p.region.retire();
      if (p.grant !== undefined) this.dropGrant(p, p.grant);
    }
  }

  /** GrantOps.grantAccess: a gntalloc page for (remote, readonly) under the frame. */
  grantOf(remote: DomId, frame: Frame, readonly: boolean): GrantRef {
    const p = this.frames.get(frame);
    if (p === undefined) throw new XenpvError('EINVAL', `frame ${frame} is not ours`, { frame });
    if (this.gntallocFd === undefined) throw new XenpvError('ENODEV', 'xen platform: /dev/xen/gntalloc is not open, nothing can be granted', { remote, frame });
    if (p.grant !== undefined) {
      throw new XenpvError('EBUSY', `xen platform: frame ${frame} is already granted (ref ${p.grant.ref}); gntalloc gives a page one grantee`, { remote, frame });
    }
    const req = encodeAllocGref(remote, readonly);
    check(this.native, this.native.ioctl(this.gntallocFd, IOCTL_GNTALLOC_ALLOC_GREF, req), 'IOCTL_GNTALLOC_ALLOC_GREF', { remote, frame });
    const dv = new DataView(req.buffer);
    const index = dv.getBigUint64(ALLOC_GREF_LAYOUT.index, true);
    const ref = dv.getUint32(ALLOC_GREF_LAYOUT.grefIds, true) as GrantRef;
    try {
      p.region.adoptDevicePages(this.gntallocFd, index, `the gntalloc page of ref ${ref}`);
    } catch (err) {
      this.dealloc(index);
      throw err;
    }
    const untrack = trackResource('grant-access', `xen: ref ${ref} to dom${remote}${readonly ? ' (ro)' : ''}`);
    p.grant = { index, ref, remote, readonly, untrack };
    this.byRef.set(ref, frame);
    return ref;
  }

  /** GrantOps.endAccess: false, changing nothing, while the grantee is seen to map the page. */
  endGrant(ref: GrantRef): boolean {
    const frame = this.byRef.get(ref);
    const p = frame === undefined ? undefined : this.frames.get(frame);
    if (p?.grant === undefined) throw new XenpvError('EINVAL', `ref ${ref} is not granted`, { ref });
    if (this.inUse(ref, p.grant.remote) === true) return false;
    this.dropGrant(p, p.grant);
    return true;
  }

  /** The grant a frame has now (tests, diagnostics). */
  grantOfFrame(frame: Frame): { readonly ref: GrantRef; readonly remote: DomId; readonly readonly: boolean } | undefined {
    return this.frames.get(frame)?.grant;
  }

  private dropGrant(p: OwnPage, g: Grant): void {
    p.grant = undefined;
    this.byRef.delete(g.ref);
    g.untrack();
    // Our mapping goes first (bytes kept in private pages), then the gntalloc page: the
    // kernel frees it, ending the grant, once neither we nor the grantee map it.
    if (p.region.mapped) p.region.toPrivatePages(`frame of ref ${g.ref}`);
    this.dealloc(g.index);
  }

  private dealloc(index: bigint): void {
    const req = new Uint8Array(DEALLOC_GREF_LAYOUT.size);
    const dv = new DataView(req.buffer);
    dv.setBigUint64(DEALLOC_GREF_LAYOUT.index, index, true);
    dv.setUint32(DEALLOC_GREF_LAYOUT.count, 1, true);
    this.native.ioctl(this.gntallocFd!, IOCTL_GNTALLOC_DEALLOC_GREF, req);
  }
}

/** The IOCTL_GNTALLOC_ALLOC_GREF request for one page to `remote`. */
export function encodeAllocGref(remote: DomId, readonly: boolean): Uint8Array {
  const req = new Uint8Array(ALLOC_GREF_LAYOUT.size);
  const dv = new DataView(req.buffer);
  dv.setUint16(ALLOC_GREF_LAYOUT.domid, remote, true);
  dv.setUint16(ALLOC_GREF_LAYOUT.flags, readonly ? 0 : GNTALLOC_FLAG_WRITABLE, true);
  dv.setUint32(ALLOC_GREF_LAYOUT.count, 1, true);
  return req;
}
