/**
 * Test support (not a test): a blkfront that works at the level of ring slots, for the
 * hostile-frontend fuzz (hostile-fuzz.test.ts). RawFront encodes well-formed requests through
 * FrontRing; this one writes whatever bytes it is given into a slot (unknown operations, junk
 * after nr_segments), publishes req_prod only when told (or a bogus one), may rewrite part of a
 * slot the backend already owns, and reads responses itself so that it can check the
 * backend's rsp_prod against what it published instead of trusting it.
 */
import type { BlkifResponse } from '../../abi/io/blkif-codec.js';
import { decodeBlkifResponse } from '../../abi/io/blkif-codec.js';
import { BLKIF_REQUEST, BLKIF_RESPONSE } from '../../abi/io/blkif.js';
import { XenbusStateInitialised } from '../../abi/io/xenbus.js';
import type { AbiName } from '../../abi/layout.js';
import type { DomId, Frame } from '../../base/index.js';
import type { EvtchnBinding } from '../../hv/platform.js';
import { initSharedRing, PagedMemory, ringEntries, SRING_ENTRIES, SRING_REQ_PROD, SRING_RSP_EVENT, SRING_RSP_PROD } from '../../ring/index.js';
import { switchState } from '../../xenbus/state.js';
import { GrantReclaimer, grantNewPage, type GrantedPage } from './front-grants.js';
import { ringRefKeys } from './protocol.js';
import type { BlkEnv } from './test-support.js';

export class SlotFront {
  /** RING_SIZE, once connected. */
  size = 0;
  readonly slotBytes: number;
  /** Responses in the order they were read. */
  readonly responses: BlkifResponse[] = [];
  /** What the backend did to the ring that no backend may do (checked by the test at the end). */
  readonly problems: string[] = [];
  /** Slots written so far (the next request's index). */
  written = 0;
  /** The last req_prod published honestly: the backend may answer no more than this. */
  published = 0;
  rspCons = 0;
  private mem!: PagedMemory;
  private evtchn!: EvtchnBinding;
  private readonly granted: GrantedPage[] = [];
  private readonly frames: Frame[] = [];
  private readonly reclaimer: GrantReclaimer;
  private readonly rspCopy: Uint8Array;
  private disposed = false;
  private reading = true;

  constructor(
    private readonly env: BlkEnv,
    readonly abi: AbiName,
  ) {
    this.reclaimer = new GrantReclaimer(env.guest);
    this.slotBytes = BLKIF_REQUEST.layouts[abi].size;
    this.rspCopy = new Uint8Array(BLKIF_RESPONSE.layouts[abi].size);
  }

  /** Grant 2^order ring pages and a port, write the keys (plus `extra`), go Initialised. */
  async connect(order: number, extra: Record<string, string>): Promise<void> {
    const pages = Array.from({ length: 1 << order }, () => this.grant(true));
    this.mem = new PagedMemory(pages.map((p) => p.bytes));
    initSharedRing(this.mem);
    this.size = ringEntries(this.mem.byteLength, this.slotBytes);
    this.evtchn = this.env.guest.events.allocUnbound(this.env.dev.backDomid, () => this.collect());
    const keys: Record<string, string> = {
      'event-channel': String(this.evtchn.port),
      protocol: this.abi === 'x86_32' ? 'x86_32-abi' : 'x86_64-abi',
      ...extra,
    };
    if (order > 0) keys['ring-page-order'] = String(order);
    ringRefKeys(order).forEach((k, i) => (keys[k] = String(pages[i]!.ref)));
    for (const [k, v] of Object.entries(keys)) await this.env.xsGuest.write(`${this.env.frontPath}/${k}`, v);
    await switchState(this.env.xsGuest, this.env.frontPath, XenbusStateInitialised);
  }

  /** A zeroed page granted to `to` (dom0 by default), writable or not; released by dispose. */
  grant(writable: boolean, to: DomId = this.env.dev.backDomid): GrantedPage {
    const p = grantNewPage(this.env.guest, to, !writable);
    this.granted.push(p);
    return p;
  }

  /** A page of ours that is never granted to anyone (freed by dispose). */
  ungranted(): Uint8Array {
    const [frame] = this.env.guest.memory.allocPages(1) as [Frame];
    this.frames.push(frame);
    return this.env.guest.memory.page(frame);
  }

  /** A ref that was granted to the backend and ended at once (stale), and its page, now granted to nobody. */
  revoked(): { ref: number; bytes: Uint8Array } {
    const bytes = this.ungranted();
    const frame = this.frames[this.frames.length - 1]!;
    const ref = this.env.guest.grants.grantAccess(this.env.dev.backDomid, frame, false);
    if (!this.env.guest.grants.endAccess(ref)) throw new Error('SlotFront: a fresh grant could not be ended');
    return { ref, bytes };
  }

  /** Slots we may fill before the backend answers more. */
  get free(): number {
    return this.size - ((this.written - this.rspCons) >>> 0);
  }

  /** Write `bytes` (a whole slot) as request `written`, unpublished; returns its index. */
  put(bytes: Uint8Array): number {
    if (this.free <= 0) throw new Error('SlotFront: ring full');
    const index = this.written;
    this.rewrite(index, bytes, 0);
    this.written = (this.written + 1) >>> 0;
    return index;
  }

  /** Overwrite bytes `from..` of request `index`'s slot with those of `bytes`, whoever owns it now. */
  rewrite(index: number, bytes: Uint8Array, from: number): void {
    const at = SRING_ENTRIES + (index & (this.size - 1)) * this.slotBytes;
    this.mem.copyIn(at + from, bytes, from, this.slotBytes - from);
  }

  /** Publish every slot written and kick the backend (whether or not it asked to be). */
  push(): void {
    this.published = this.written;
    this.mem.store32(SRING_REQ_PROD, this.written);
    this.evtchn.notify();
  }

  /** Publish a req_prod that is not ours to publish, and kick. */
  setReqProd(value: number): void {
    this.mem.store32(SRING_REQ_PROD, value >>> 0);
    this.evtchn.notify();
  }

  /** Read no more responses (their checks no longer hold, e.g. once the backend may reconnect). */
  stopReading(): void {
    this.reading = false;
  }

  /** Take every published response, asking to be woken for the next one. */
  collect(): void {
    while (this.reading) {
      const prod = this.mem.load32(SRING_RSP_PROD);
      const ahead = (prod - this.rspCons) >>> 0;
      if (ahead > ((this.published - this.rspCons) >>> 0)) {
        // More answers than requests published (or rsp_prod moved back): stop reading.
        if (this.problems.length === 0) this.problems.push(`rsp_prod ${prod} with rsp_cons ${this.rspCons}, req_prod ${this.published}`);
        return;
      }
      if (ahead === 0) {
        this.mem.store32(SRING_RSP_EVENT, (this.rspCons + 1) >>> 0);
        if (this.mem.load32(SRING_RSP_PROD) === prod) return;
        continue;
      }
      for (; this.rspCons !== prod; this.rspCons = (this.rspCons + 1) >>> 0) {
        const at = SRING_ENTRIES + (this.rspCons & (this.size - 1)) * this.slotBytes;
        this.mem.copyOut(at, this.rspCopy, 0, this.rspCopy.length);
        this.responses.push(decodeBlkifResponse(new DataView(this.rspCopy.buffer), 0, this.abi));
      }
    }
  }

  /** Close the port, end every grant (waiting for the backend to unmap), free every page. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.evtchn?.dispose();
    for (const p of this.granted) this.reclaimer.release(p);
    const settled = await this.reclaimer.settle(3000);
    this.reclaimer.dispose();
    this.env.guest.memory.freePages(this.frames);
    if (!settled) throw new Error('SlotFront: the backend still maps some of our pages');
  }
}
