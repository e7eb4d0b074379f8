/**
 * Netback's receive batch: one-slot frames the bridge hands over as stable (their bytes stay
 * as they are until it calls PortSink.complete: the end of a sending netback's tx batch, or
 * of a run of queued frames), each given its posted rx request at once, then copied into the
 * guest's buffers with ONE GNTTABOP_copy call for all of them (Linux netback batches its rx
 * grant copies too, xenvif_rx_copy_add / xenvif_rx_copy_flush). The responses are written
 * after the copy, in ring order. The hypervisor model then takes the receiver's domain
 * reference and grant lock once per batch instead of once per frame.
 */
import type { DomId, GrantRef } from '../../base/index.js';
import { CopyBatch } from './tx-batch.js';

/** Frames per grant-copy call: a tx batch (tx-batch.ts TX_BATCH) of one sender. */
export const RX_BATCH = 64;

export class RxBatch extends CopyBatch<'local', 'grant'> {
  /** `idle`: what an op's source points at while no frame is staged in it (holds no frame alive). */
  constructor(frontDomid: DomId, private readonly idle: Uint8Array) {
    super(Array.from({ length: RX_BATCH }, () => ({ source: { kind: 'local', buf: idle, offset: 0 }, dest: { kind: 'grant', domid: frontDomid, ref: 0 as GrantRef, offset: 0 }, len: 0 })));
  }

  /** Stage `frame` (one page at most) for the posted buffer `gref` of request `id`. Call only while not `full`. */
  stage(frame: Uint8Array, gref: number, id: number, flags: number): void {
    const op = this.next(id, flags);
    op.source.buf = frame;
    op.dest.ref = gref as GrantRef;
    op.len = frame.length;
  }

  len(i: number): number {
    return this.ops[i]!.len;
  }

  /** Forget the staged frames (their bytes belong to the bridge's senders). */
  override clear(): void {
    for (let i = 0; i < this.n; i++) this.ops[i]!.source.buf = this.idle;
    super.clear();
  }
}
