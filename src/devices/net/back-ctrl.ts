/**
 * Netback's end of the control ring (netif.h "Control ring"): mapped from the frontend's
 * `ctrl-ring-ref`, served on `event-channel-ctrl`, a budget of requests per event (R6).
 */
import type { XenNetifCtrlRequest, XenNetifCtrlResponse } from '../../abi/io/netif-codec.js';
import type { Disposable, DomId, EvtchnPort, GrantRef } from '../../base/index.js';
import type { EvtchnBinding, GrantMapping, Platform } from '../../hv/platform.js';
import { BackRing } from '../../ring/index.js';
import { handleCtrlRequest, type CtrlContext } from './ctrl-back.js';
import { CTRL_RING_CODEC } from './protocol.js';

export class BackCtrl implements Disposable {
  private readonly mapping: GrantMapping;
  private readonly ring: BackRing<XenNetifCtrlRequest, XenNetifCtrlResponse>;
  private readonly evt: EvtchnBinding;
  private scheduled = false;
  private disposed = false;
  handled = 0;

  constructor(
    platform: Platform,
    frontDomid: DomId,
    ref: GrantRef,
    port: EvtchnPort,
    private readonly ctx: CtrlContext,
    private readonly budget: number,
    private readonly onBroken: (reason: string) => void,
  ) {
    this.mapping = platform.grants.map(frontDomid, [ref], true);
    try {
      this.ring = BackRing.attach(this.mapping.pages[0]!, CTRL_RING_CODEC, 0, { onBroken: () => this.onBroken('control ring: impossible number of requests') });
      this.evt = platform.events.bindInterdomain(frontDomid, port, () => this.kick());
    } catch (err) {
      this.mapping.dispose();
      throw err;
    }
    this.kick();
  }

  private kick(): void {
    if (this.scheduled || this.disposed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      try {
        this.serve();
      } catch (err) {
        this.onBroken(`control ring: internal error: ${(err as Error).message}`);
      }
    });
  }

  private serve(): void {
    if (this.disposed) return;
    let n = 0;
    for (let req = this.ring.nextRequest(); req !== undefined; req = n < this.budget ? this.ring.nextRequest() : undefined) {
      this.ring.putResponse(handleCtrlRequest(this.ctx, req));
      this.handled++;
      n++;
    }
    if (this.disposed) return;
    if (this.ring.pushResponses()) this.evt.notify();
    if (n >= this.budget || this.ring.finalCheckForRequests()) this.kick();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.evt?.dispose();
    this.mapping.dispose();
  }
}
