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
import { errorCode, type Disposable, type DomId, type Frame, type GrantRef, type Writable } from '../../base/index.js';
import { PAGE_SIZE, type CopyPtr, type GrantOps, type Platform } from '../../hv/platform.js';
import type { NetifTxRequest } from '../../abi/io/netif-codec.js';
import { ScratchFrame } from './bridge/slab.js';

type MutableGrantPtr = Writable<Extract<CopyPtr, { kind: 'grant' }>>;
type MutableLocalPtr = Writable<Extract<CopyPtr, { kind: 'local' }>>;
type PtrOf<K extends CopyPtr['kind']> = K extends 'grant' ? MutableGrantPtr : MutableLocalPtr;
/** A grant-copy op rewritten for each use (no per-packet objects). */
export interface MutableCopyOp<S extends CopyPtr['kind'], D extends CopyPtr['kind']> {
  readonly source: PtrOf<S>;
  readonly dest: PtrOf<D>;
  len: number;
}

/**
 * Up to `ops.length` one-slot grant copies issued with ONE GrantOps.copy call, each with its
 * ring request's id and flags (netback's tx batch below and its rx batch, rx-batch.ts). The
 * ops are made once and rewritten per use (no per-packet objects).
 */
export class CopyBatch<S extends CopyPtr['kind'], D extends CopyPtr['kind']> {
  private readonly ids: Uint16Array;
  private readonly flagWords: Uint16Array;
  private readonly status: number[];
  protected n = 0;

  constructor(protected readonly ops: readonly MutableCopyOp<S, D>[]) {
    this.ids = new Uint16Array(ops.length);
    this.flagWords = new Uint16Array(ops.length);
    this.status = new Array<number>(ops.length).fill(0);
  }

  get size(): number {
    return this.n;
  }

  get full(): boolean {
    return this.n === this.ops.length;
  }

  /** The next op, staged for request `id` with `flags`, for the caller to fill. Call only while not `full`. */
  protected next(id: number, flags: number): MutableCopyOp<S, D> {
    const i = this.n++;
    const op = this.ops[i]!;
    this.ids[i] = id;
    this.flagWords[i] = flags;
    return op;
  }

  /**
   * Copy every staged slot: a GNTST_* status per slot (in an array kept for the batch: entries
   * past `size` are stale). The ops and statuses are the batch's own, not made per call.
   */
  copy(grants: GrantOps): readonly number[] {
    return grants.copy(this.ops, this.n, this.status);
  }

  id(i: number): number {
    return this.ids[i]!;
  }

  flags(i: number): number {
    return this.flagWords[i]!;
  }

  clear(): void {
    this.n = 0;
  }
}

/**
 * Packets per batch: a tx budget (64) is copied in one call, and is one bridge burst (per-batch
 * work, the grant lock and domain reference, the burst's rx completion and ring pushes, is paid
 * once per budget: bench net, 4 alternating pairs with the grant copy's one-pass runs, dom0
 * 0.798 -> 0.760 us per packet).
 */
export const TX_BATCH = 64;

/** A batch's pages, and the release of the ones taken from the domain (takeBatchPages). */
export interface BatchPages extends Disposable {
  readonly pages: readonly Uint8Array[];
}

/**
 * TX_BATCH pages for a batch. On the sim, dom0's own pages: they lie in machine memory, where
 * both of netback's grant copies of a frame (out of the sender's page into these, and from
 * these into the receiver's) are memmoves instead of V8's word loop over shared memory
 * (memory/wasm-copy.ts). Private pages elsewhere (on Xen a frame of our own is an mmap each,
 * and a grant copy there is the hypervisor's), or when dom0 has no pages to spare.
 */
export function takeBatchPages(platform: Platform): BatchPages {
  let frames: Frame[] = [];
  if (platform.kind === 'sim') {
    try {
      frames = platform.memory.allocPages(TX_BATCH);
    } catch (err) {
      // Out of pages: private ones below; the copies are then V8's.
      if (errorCode(err) !== 'ENOMEM') throw err;
    }
  }
  if (frames.length === 0) return { pages: Array.from({ length: TX_BATCH }, () => new Uint8Array(PAGE_SIZE)), dispose: () => undefined };
  let held = true;
  return {
    pages: frames.map((f) => platform.memory.page(f)),
    dispose: () => {
      if (held) platform.memory.freePages(frames);
      held = false;
    },
  };
}

export class TxBatch extends CopyBatch<'grant', 'local'> {
  private readonly pages: ScratchFrame[];

  /** `pages`: TX_BATCH views of a page each (takeBatchPages). */
  constructor(frontDomid: DomId, pages: readonly Uint8Array[]) {
    const frames = pages.map((p) => new ScratchFrame(p));
    super(frames.map((page) => ({ source: { kind: 'grant', domid: frontDomid, ref: 0 as GrantRef, offset: 0 }, dest: { kind: 'local', buf: page.frame(0), offset: 0 }, len: 0 })));
    this.pages = frames;
  }

  /**
   * Stage a one-slot packet that tx-parse's `singleSlotFault` passed (size from an Ethernet
   * header up to what fits its page at its offset). Call only while not `full`.
   */
  stage(req: NetifTxRequest): void {
    const page = this.pages[this.n]!;
    const op = this.next(req.id, req.flags);
    op.source.ref = req.gref as GrantRef;
    op.source.offset = req.offset;
    op.len = req.size;
    // At the packet's offset mod 8 (offset + size fit the page, so does this): V8 copies shared
    // memory word by word only between addresses equal mod 8, byte by byte otherwise (a
    // 1514-byte frame at offset 2, as Linux netfront's skb data often lies: ~460 ns instead of
    // ~75). A stream's packets have one size and offset: one view.
    op.dest.buf = page.frameAt(req.offset & 7, req.size);
  }

  /** The private copy of staged packet `i` (valid until `clear`). */
  frame(i: number): Uint8Array {
    return this.ops[i]!.dest.buf;
  }
}
