/**
 * Shapes of hv/platform.ts's grant types, restated here because the grant layer sits below
 * hv (src/layers.test.ts). hv/sim checks structurally that SimGrantOps satisfies GrantOps.
 */
import type { Disposable, DomId, GrantRef } from '../base/index.js';

export type CopyPtr =
  | { readonly kind: 'grant'; readonly domid: DomId; readonly ref: GrantRef; readonly offset: number }
  | { readonly kind: 'local'; readonly buf: Uint8Array; readonly offset: number };

export interface GrantCopyOp {
  readonly source: CopyPtr;
  readonly dest: CopyPtr;
  readonly len: number;
}

export interface GrantMapping extends Disposable {
  readonly domid: DomId;
  readonly refs: readonly GrantRef[];
  readonly writable: boolean;
  readonly pages: readonly Uint8Array[];
}
