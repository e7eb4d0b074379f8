/**
 * Test support (not a test): a hand-driven blkback for hostile-backend tests. It publishes
 * whatever keys it is told to, maps the frontend's single ring, and writes raw responses.
 */
import type { BlkifRequest, BlkifResponse } from '../../abi/io/blkif-codec.js';
import type { DomId, EvtchnPort, GrantRef } from '../../base/index.js';
import type { EvtchnBinding, GrantMapping } from '../../hv/platform.js';
import { BackRing } from '../../ring/index.js';
import { blkifRingCodec } from './ring-codec.js';
import type { BlkFront } from './front.js';
import { until, type BlkEnv } from './test-support.js';

export class RawBack {
  ring!: BackRing<BlkifRequest, BlkifResponse>;
  private mapping: GrantMapping | undefined;
  private evtchn: EvtchnBinding | undefined;
  readonly requests: BlkifRequest[] = [];
  readonly held: GrantMapping[] = [];

  constructor(private readonly env: BlkEnv) {}

  private async write(keys: Record<string, string | number>): Promise<void> {
    for (const [k, v] of Object.entries(keys)) await this.env.xs0.write(`${this.env.backPath}/${k}`, String(v));
  }

  /** Publish limits and go InitWait; wait for the frontend's Initialised; map; publish; Connected. */
  async connect(props: Record<string, string | number> = {}): Promise<void> {
    await this.write({ 'max-ring-page-order': 0, 'feature-persistent': 0, state: 2 });
    await until(async () => (await this.env.xs0.readString(`${this.env.frontPath}/state`)) === '3', 3000, 'frontend Initialised');
    const fp = this.env.frontPath;
    const ref = Number(await this.env.xs0.readString(`${fp}/ring-ref`)) as GrantRef;
    const port = Number(await this.env.xs0.readString(`${fp}/event-channel`)) as EvtchnPort;
    const fe = this.env.guestId as DomId;
    this.mapping = this.env.dom0.grants.map(fe, [ref], true);
    this.ring = BackRing.attach(this.mapping.pages, blkifRingCodec('x86_64'));
    this.evtchn = this.env.dom0.events.bindInterdomain(fe, port, () => this.collect());
    await this.write({ sectors: 64, 'sector-size': 512, info: 0, 'feature-flush-cache': 1, ...props, state: 4 });
  }

  collect(): void {
    for (;;) {
      const r = this.ring.nextRequest();
      if (r === undefined) return;
      this.requests.push(r);
    }
  }

  async waitRequests(n: number): Promise<BlkifRequest[]> {
    await until(() => {
      this.collect();
      return this.requests.length >= n;
    }, 3000, `${n} requests`);
    return this.requests;
  }

  /** Raw responses, published and notified regardless of what ring.h's accounting allows. */
  respond(...rsps: BlkifResponse[]): void {
    for (const r of rsps) this.ring.putResponse(r);
    this.ring.pushResponses();
    this.evtchn!.notify();
  }

  /** The frontend's rsp_event: the response index it asked to be notified at. */
  get rspEvent(): number {
    return new DataView(this.mapping!.pages[0]!.buffer, this.mapping!.pages[0]!.byteOffset).getUint32(12, true);
  }

  /** Write rsp_prod directly (a backend claiming more responses than requests). */
  setRspProd(v: number): void {
    new DataView(this.mapping!.pages[0]!.buffer, this.mapping!.pages[0]!.byteOffset).setUint32(8, v, true);
    this.evtchn!.notify();
  }

  dispose(): void {
    for (const m of this.held) m.dispose();
    this.held.length = 0;
    this.evtchn?.dispose();
    this.mapping?.dispose();
    this.evtchn = undefined;
    this.mapping = undefined;
  }
}

/**
 * The vbd added, a hand-driven backend and a BlkFront (no persistent grants, one queue) started
 * against it, the backend Connected with `props`. `started` is the frontend's start, not awaited:
 * a test of garbage properties expects it to fail.
 */
export async function startRawBack(env: BlkEnv, props: Record<string, string | number> = {}): Promise<{ raw: RawBack; front: BlkFront; started: Promise<void> }> {
  await env.addVbd();
  const raw = new RawBack(env);
  const front = env.newFront({ persistent: false, maxQueues: 1 });
  const started = front.start();
  await raw.connect(props);
  return { raw, front, started };
}
