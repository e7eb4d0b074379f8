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
import { PAGE_SIZE } from '../../hv/platform.js';
import { CopyBatch, TX_BATCH } from './tx-batch.js';

/** Frames per grant-copy call: what one tx batch of one sender brings. */
export const RX_BATCH = TX_BATCH;

export class RxBatch extends CopyBatch<'local', 'grant'> {
  /** `source.buf.byteOffset & 7` of each op, kept with the frame the op points at (see `stage`). */
  private readonly aligns = new Uint8Array(RX_BATCH);

  /** `idle`: what an op's source points at before its first frame and after `release` (holds no frame alive). */
  constructor(frontDomid: DomId, private readonly idle: Uint8Array) {
    super(Array.from({ length: RX_BATCH }, () => ({ source: { kind: 'local', buf: idle, offset: 0 }, dest: { kind: 'grant', domid: frontDomid, ref: 0 as GrantRef, offset: 0 }, len: 0 })));
    this.aligns.fill(idle.byteOffset & 7);
  }

  /**
   * Stage `frame` (one page at most) for the posted buffer `gref` of request `id`. Call only
   * while not `full`. The frame goes at its own address mod 8 in the buffer when it fits
   * there (netif.h's rx response `offset`: "Offset in page of start of received packet"), so
   * the copy runs word by word (tx-batch.ts: a sender's offset mod 8 is kept through dom0).
   *
   * The op keeps the frame it was given last (`clear` leaves it), and its alignment with it:
   * a stream stages the same views (a sending netback's batch pages, pool buffers) in the same
   * slots batch after batch, and byteOffset is a getter that checks for detachment each time
   * (~8 ns per frame, bench net's frames all aligned). A view's offset never changes while it
   * has bytes. The cost: up to RX_BATCH views stay referenced until later frames replace them
   * or `release` (the queue's dispose).
   */
  stage(frame: Uint8Array, gref: number, id: number, flags: number): void {
    const i = this.n;
    const op = this.next(id, flags);
    if (op.source.buf !== frame) {
      op.source.buf = frame;
      this.aligns[i] = frame.byteOffset & 7;
    }
    const at = this.aligns[i]!;
    op.dest.ref = gref as GrantRef;
    op.dest.offset = frame.length + at <= PAGE_SIZE ? at : 0;
    op.len = frame.length;
  }

  len(i: number): number {
    return this.ops[i]!.len;
  }

  /** Where staged frame `i` starts in its buffer (the rx response's `offset`). */
  offset(i: number): number {
    return this.ops[i]!.dest.offset;
  }

  /** Forget the staged frames and drop every frame reference (the queue is going away). */
  release(): void {
    this.clear();
    for (const op of this.ops) op.source.buf = this.idle;
    this.aligns.fill(this.idle.byteOffset & 7);
  }
}
