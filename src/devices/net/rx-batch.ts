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
import type { GrantCopyOp, GrantOps } from '../../hv/platform.js';
import type { MutableCopyOp } from './tx-batch.js';

/** Frames per grant-copy call: two tx batches (tx-batch.ts TX_BATCH) of one sender. */
export const RX_BATCH = 64;

export class RxBatch {
  private readonly ops: MutableCopyOp<'local', 'grant'>[] = [];
  /** The ops of the staged frames, handed to GrantOps.copy (its length is `size`). */
  private readonly list: GrantCopyOp[] = [];
  private readonly ids = new Uint16Array(RX_BATCH);
  private readonly flagWords = new Uint16Array(RX_BATCH);
  private n = 0;

  /** `idle`: what an op's source points at while no frame is staged in it (holds no frame alive). */
  constructor(frontDomid: DomId, private readonly idle: Uint8Array) {
    for (let i = 0; i < RX_BATCH; i++) {
      this.ops.push({ source: { kind: 'local', buf: idle, offset: 0 }, dest: { kind: 'grant', domid: frontDomid, ref: 0 as GrantRef, offset: 0 }, len: 0 });
    }
  }

  get size(): number {
    return this.n;
  }

  get full(): boolean {
    return this.n === RX_BATCH;
  }

  /** Stage `frame` (one page at most) for the posted buffer `gref` of request `id`. Call only while not `full`. */
  stage(frame: Uint8Array, gref: number, id: number, flags: number): void {
    const i = this.n++;
    const op = this.ops[i]!;
    op.source.buf = frame;
    op.dest.ref = gref as GrantRef;
    op.len = frame.length;
    this.ids[i] = id;
    this.flagWords[i] = flags;
    this.list.push(op);
  }

  /** Copy every staged frame into its buffer: a GNTST_* status per frame. */
  copy(grants: GrantOps): readonly number[] {
    return grants.copy(this.list);
  }

  id(i: number): number {
    return this.ids[i]!;
  }

  flags(i: number): number {
    return this.flagWords[i]!;
  }

  len(i: number): number {
    return this.ops[i]!.len;
  }

  /** Forget the staged frames (their bytes belong to the bridge's senders). */
  clear(): void {
    for (let i = 0; i < this.n; i++) this.ops[i]!.source.buf = this.idle;
    this.n = 0;
    this.list.length = 0;
  }
}
