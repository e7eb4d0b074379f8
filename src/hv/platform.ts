/**
 * The platform a device runs on (DESIGN.md §3), shaped like Linux's Xen user interfaces:
 * grant mapping as /dev/xen/gntdev, granting as /dev/xen/gntalloc, event channels as
 * /dev/xen/evtchn, the store as a byte-stream connection.
 *
 * Backends and frontends receive a `Platform` through their constructor and never reach the
 * hypervisor any other way, so the same device code runs on the in-process `sim` platform
 * and, later, on a real Xen dom0 (`xen` platform) unchanged.
 *
 * Errors: a refused hypercall throws a `XenpvError` whose `code` is the Xen status name
 * (`GNTST_bad_gntref`, `EINVAL`, ...). Device code turns those into the protocol's answer for
 * the peer; it never lets them escape into the peer's path.
 */
import type { Disposable, DomId, EvtchnPort, Frame, GrantRef } from '../base/index.js';
import type { CopyPtr, GrantCopyOp, GrantMapping } from '../grant/types.js';

/** XEN_PAGE_SIZE: the protocol page is always 4 KiB (ring.h, grant_table.h). */
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/** The domain's own memory (guest-physical frames). */
export interface DomainMemory {
  readonly pageCount: number;
  /** A live 4 KiB view of one of our own frames. Throws RangeError for a frame out of range. */
  page(frame: Frame): Uint8Array;
  /** Allocate zeroed frames; throws XenpvError('ENOMEM') when none are left. */
  allocPages(count: number): Frame[];
  freePages(frames: readonly Frame[]): void;
  /**
   * `dst.set(src, at)`. On the sim, where both lie in machine memory (our pages, views of
   * them), one memmove (memory/wasm-copy.ts) instead of V8's word loop over shared memory.
   */
  copy(dst: Uint8Array, at: number, src: Uint8Array): void;
}

// Defined with the grant layer (below this one, src/layers.test.ts), which implements them on
// the sim; every platform's devices take them from here.
export type { CopyPtr, GrantCopyOp, GrantMapping } from '../grant/types.js';

export interface GrantOps {
  /** gnttab_grant_foreign_access: let `remote` map `frame` of ours. */
  grantAccess(remote: DomId, frame: Frame, readonly: boolean): GrantRef;
  /**
   * gnttab_end_foreign_access_ref: returns false, changing nothing, while the grantee still
   * has the page mapped (reliability.md R8: the frontend must not reuse the page then).
   */
  endAccess(ref: GrantRef): boolean;
  /**
   * gnttab_end_foreign_access_ref keeping the ref: the grantee can no longer map or copy the
   * page (false, changing nothing, while it does), so we read what it wrote there with no one
   * able to change it; `resumeAccess` grants the page again. Absent where the platform cannot
   * (xen: gntalloc ends a grant only by freeing its page): callers copy out instead.
   */
  suspendAccess?(ref: GrantRef): boolean;
  /** Grant a ref that `suspendAccess` ended to the same domain and frame again. */
  resumeAccess?(ref: GrantRef, readonly: boolean): void;
  /** GNTTABOP_map_grant_ref for each ref; all or nothing. Throws XenpvError with code GNTST_*. */
  map(remote: DomId, refs: readonly GrantRef[], writable: boolean): GrantMapping;
  /**
   * GNTTABOP_copy of `ops[0, count)`; one GNTST_* status per op (0 = GNTST_okay), written into
   * `status` when given (a caller's reused array: a batch per 64 packets is too often for a
   * new one) and returned. Never throws for a bad op.
   */
  copy(ops: readonly GrantCopyOp[], count?: number, status?: number[]): number[];
}

/** A bound local event-channel port (evtchn device's bind). */
export interface EvtchnBinding extends Disposable {
  readonly port: EvtchnPort;
  /** EVTCHNOP_send on this port. */
  notify(): void;
  /** Clear the mask bit; a pending event that arrived while masked is then delivered. */
  unmask(): void;
}

export interface EventOps {
  /** EVTCHNOP_alloc_unbound: a port that `remote` may bind to. */
  allocUnbound(remote: DomId, handler: () => void): EvtchnBinding;
  /** EVTCHNOP_bind_interdomain to `remotePort` of `remote`. Throws XenpvError (EINVAL, ...). */
  bindInterdomain(remote: DomId, remotePort: EvtchnPort, handler: () => void): EvtchnBinding;
  /** EVTCHNOP_bind_virq (VIRQ_DOM_EXC etc.); dom0 only for global VIRQs. */
  bindVirq(virq: number, handler: () => void): EvtchnBinding;
  /**
   * Bind a port that is already open in this domain, allocated for it by someone else (the
   * domain builder's xenstore and console ports of start_info), as a guest kernel binds them
   * at boot: no EVTCHNOP to bind. Disposing stops delivery here; the port itself is closed on
   * `sim` (EVTCHNOP_close, like every binding there) and left open on `xen` (Linux's evtchn
   * device never closes a port it did not allocate). Throws XenpvError: EINVAL for a port that
   * is not open, EEXIST if bound here already, ENOSYS where the platform cannot (xen: Linux
   * before 6.6 has no IOCTL_EVTCHN_BIND_STATIC; a port the kernel bound itself is EBUSY).
   */
  adopt(port: EvtchnPort, handler: () => void): EvtchnBinding;
}

/** A byte-stream connection to the store (the socket, or the xenstore ring page + port). */
export interface StoreTransport extends Disposable {
  write(bytes: Uint8Array): void;
  onData(handler: (chunk: Uint8Array) => void): void;
  onClose(handler: (reason?: Error) => void): void;
}

export interface Platform {
  /** Which platform this is: 'sim' (in-process model) or 'xen' (real /dev/xen/*). */
  readonly kind: 'sim' | 'xen';
  /** The domain this code runs as. */
  readonly domid: DomId;
  readonly memory: DomainMemory;
  readonly grants: GrantOps;
  readonly events: EventOps;
  /** Open a connection to the store, as this domain. */
  openStore(): Promise<StoreTransport>;
}
