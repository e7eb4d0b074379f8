/**
 * The grant types every platform's devices use (hv/platform.ts re-exports them with GrantOps):
 * a mapping of foreign pages, and GNTTABOP_copy's ops. They live here, in the layer below hv,
 * so that the sim's grant table (ops.ts) implements them without importing hv.
 */
import type { Disposable, DomId, GrantRef } from '../base/index.js';

/** One side of a GNTTABOP_copy: a granted page of another domain, or a local buffer. */
export type CopyPtr =
  | { readonly kind: 'grant'; readonly domid: DomId; readonly ref: GrantRef; readonly offset: number }
  | { readonly kind: 'local'; readonly buf: Uint8Array; readonly offset: number };

export interface GrantCopyOp {
  readonly source: CopyPtr;
  readonly dest: CopyPtr;
  readonly len: number;
}

/** A set of foreign pages mapped through the grant table (gntdev's mapping). */
export interface GrantMapping extends Disposable {
  readonly domid: DomId;
  readonly refs: readonly GrantRef[];
  readonly writable: boolean;
  /**
   * One 4 KiB view per ref, into the granter's page. The granter can change it at any time:
   * copy once, validate the copy, act on the copy (STYLE.md habit 3).
   */
  readonly pages: readonly Uint8Array[];
}
