/**
 * Netback's transmit batch: one-slot packets taken off the tx ring, copied out of the guest's
 * pages with ONE GNTTABOP_copy call (Linux netback builds its tx grant-copy ops for a batch
 * and issues them with one gnttab_batch_copy, xenvif_tx_build_gops / xenvif_tx_submit).
 * The hypervisor model then takes the granter's domain reference and grant lock once per
 * batch instead of once per packet (hv/sim GrantOps.copy keeps them across a run of ops to
 * one granter), and netback makes one call instead of one per packet.
 *
 * Each staged packet gets its own private page (the batch's), so the frames stay intact
 * until the batch is handed on; the bridge copies what it keeps (`owned` false).
 */
import type { DomId, GrantRef } from '../../base/index.js';
import { PAGE_SIZE, type CopyPtr, type GrantCopyOp, type GrantOps } from '../../hv/platform.js';
import type { NetifTxRequest } from '../../abi/io/netif-codec.js';
import { ScratchFrame } from './bridge/slab.js';

export type MutableGrantPtr = { -readonly [K in keyof Extract<CopyPtr, { kind: 'grant' }>]: Extract<CopyPtr, { kind: 'grant' }>[K] };
export type MutableLocalPtr = { -readonly [K in keyof Extract<CopyPtr, { kind: 'local' }>]: Extract<CopyPtr, { kind: 'local' }>[K] };
type PtrOf<K extends CopyPtr['kind']> = K extends 'grant' ? MutableGrantPtr : MutableLocalPtr;
/** A grant-copy op rewritten for each use (no per-packet objects). */
export interface MutableCopyOp<S extends CopyPtr['kind'], D extends CopyPtr['kind']> {
  readonly source: PtrOf<S>;
  readonly dest: PtrOf<D>;
  len: number;
}

/** Packets per batch: a tx budget (64) is copied in two calls. */
export const TX_BATCH = 32;

export class TxBatch {
  private readonly pages: ScratchFrame[] = [];
  private readonly ops: MutableCopyOp<'grant', 'local'>[] = [];
  /** The ops of the staged packets, handed to GrantOps.copy (its length is `size`). */
  private readonly list: GrantCopyOp[] = [];
  private readonly ids = new Uint16Array(TX_BATCH);
  private readonly flagWords = new Uint16Array(TX_BATCH);
  private n = 0;

  constructor(frontDomid: DomId) {
    for (let i = 0; i < TX_BATCH; i++) {
      const page = new ScratchFrame(PAGE_SIZE);
      this.pages.push(page);
      this.ops.push({ source: { kind: 'grant', domid: frontDomid, ref: 0 as GrantRef, offset: 0 }, dest: { kind: 'local', buf: page.frame(0), offset: 0 }, len: 0 });
    }
  }

  get size(): number {
    return this.n;
  }

  get full(): boolean {
    return this.n === TX_BATCH;
  }

  /**
   * Stage a one-slot packet that tx-parse's `singleSlotFault` passed (size from an Ethernet
   * header up to what fits its page at its offset). Call only while not `full`.
   */
  stage(req: NetifTxRequest): void {
    const i = this.n++;
    const op = this.ops[i]!;
    op.source.ref = req.gref as GrantRef;
    op.source.offset = req.offset;
    op.len = req.size;
    op.dest.buf = this.pages[i]!.frame(req.size); // a stream's packets: one size, one view
    this.ids[i] = req.id;
    this.flagWords[i] = req.flags;
    this.list.push(op);
  }

  /** Copy every staged packet out of the guest's pages: a GNTST_* status per packet. */
  copy(grants: GrantOps): readonly number[] {
    return grants.copy(this.list);
  }

  /** The private copy of staged packet `i` (valid until `clear`). */
  frame(i: number): Uint8Array {
    return this.ops[i]!.dest.buf;
  }

  id(i: number): number {
    return this.ids[i]!;
  }

  flags(i: number): number {
    return this.flagWords[i]!;
  }

  clear(): void {
    this.n = 0;
    this.list.length = 0;
  }
}
