/**
 * Test support (not a test): a hand-driven blkfront for hostile-frontend tests. It writes the
 * handshake keys it is told to (garbage included), puts raw requests on the ring, and can
 * scribble on the shared page between the backend's reads.
 */
import type { BlkifRequest, BlkifRequestOut, BlkifResponse } from '../../abi/io/blkif-codec.js';
import { XenbusStateInitialised } from '../../abi/io/xenbus.js';
import type { AbiName } from '../../abi/layout.js';
import type { EvtchnBinding } from '../../hv/platform.js';
import { FrontRing } from '../../ring/index.js';
import { switchState } from '../../xenbus/state.js';
import { GrantReclaimer, grantNewPage, type GrantedPage } from './front-grants.js';
import { blkifRingCodec } from './ring-codec.js';
import type { BlkEnv } from './test-support.js';

export class RawFront {
  readonly pages: GrantedPage[] = [];
  ring!: FrontRing<BlkifRequest, BlkifResponse>;
  evtchn!: EvtchnBinding;
  readonly responses: BlkifResponse[] = [];
  private readonly reclaimer: GrantReclaimer;
  private readonly data: GrantedPage[] = [];

  constructor(
    private readonly env: BlkEnv,
    private readonly abi: AbiName = 'x86_64',
  ) {
    this.reclaimer = new GrantReclaimer(env.guest);
  }

  /** Grant a ring page and a port, write the keys (overridable), go Initialised. */
  async connect(overrides: Record<string, string> = {}): Promise<void> {
    const page = grantNewPage(this.env.guest, this.env.dev.backDomid, false);
    this.pages.push(page);
    this.ring = FrontRing.init([page.bytes], blkifRingCodec(this.abi));
    this.evtchn = this.env.guest.events.allocUnbound(this.env.dev.backDomid, () => this.collect());
    const keys: Record<string, string> = {
      'ring-ref': String(page.ref),
      'event-channel': String(this.evtchn.port),
      protocol: this.abi === 'x86_32' ? 'x86_32-abi' : 'x86_64-abi',
      ...overrides,
    };
    for (const [k, v] of Object.entries(keys)) await this.env.xsGuest.write(`${this.env.frontPath}/${k}`, v);
    await switchState(this.env.xsGuest, this.env.frontPath, XenbusStateInitialised);
  }

  /** A data page granted to the backend (read-only unless `writable`), filled with `fill`. */
  dataPage(writable: boolean, fill = 0): GrantedPage {
    const p = grantNewPage(this.env.guest, this.env.dev.backDomid, !writable);
    p.bytes.fill(fill);
    this.data.push(p);
    return p;
  }

  send(...reqs: BlkifRequestOut[]): void {
    for (const r of reqs) this.ring.putRequest(r);
    if (this.ring.pushRequests()) this.evtchn.notify();
  }

  collect(): void {
    for (;;) {
      const r = this.ring.nextResponse();
      if (r === undefined) {
        if (!this.ring.finalCheckForResponses()) return;
        continue;
      }
      this.responses.push(r);
    }
  }

  /** Publish a raw req_prod and kick the backend. */
  setReqProd(value: number): void {
    new DataView(this.pages[0]!.bytes.buffer, this.pages[0]!.bytes.byteOffset).setUint32(0, value, true);
    this.evtchn.notify();
  }

  async waitResponses(n: number, timeoutMs = 3000): Promise<BlkifResponse[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.responses.length < n && Date.now() < deadline) {
      this.collect();
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.responses;
  }

  async dispose(): Promise<void> {
    this.evtchn?.dispose();
    for (const p of [...this.pages, ...this.data]) this.reclaimer.release(p);
    await this.reclaimer.settle(3000);
    this.reclaimer.dispose();
  }
}
