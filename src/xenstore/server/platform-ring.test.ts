/**
 * The daemon serving a guest of the sim hypervisor: INTRODUCE maps the builder's xenstore page
 * (grant 1) and binds the store port; the guest talks through its own page and event channel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EvtchnPort, Frame } from '../../base/index.js';
import { XenstoreGuestPage } from '../../ring/index.js';
import { SimPlatform } from '../../hv/sim/platform.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import { encodeMessage, encodeRequest, FrameParser, latin1, type XsMessage, type XsRequest } from '../protocol/index.js';
import { platformRingMapper } from './platform-ring.js';
import { SERVER_FEATURES } from './features.js';
import { Xenstored } from './xenstored.js';
import { str, TestClient } from './test-support.js';

class SimGuestStore {
  private readonly parser = new FrameParser();
  private readonly waiting = new Map<number, (m: XsMessage) => void>();
  readonly events: string[] = [];
  private nextId = 1;

  constructor(
    readonly page: XenstoreGuestPage,
    readonly notify: () => void,
  ) {}

  onEvent(): void {
    const bytes = this.page.replies.read();
    if (bytes.length > 0) this.notify();
    for (const m of this.parser.push(bytes).messages) {
      if (m.type === 15) this.events.push(latin1(m.payload));
      else this.waiting.get(m.reqId)?.(m);
    }
  }

  call(req: XsRequest): Promise<string> {
    const reqId = this.nextId++;
    const { type, payload } = encodeRequest(req);
    const msg = encodeMessage({ type, reqId, txId: 0, payload });
    return new Promise((resolve) => {
      this.waiting.set(reqId, (m) => resolve(latin1(m.payload).replace(/\0$/, '')));
      assert.equal(this.page.requests.write(msg), msg.length);
      this.notify();
    });
  }
}

test('INTRODUCE a sim guest: its page and port carry requests, replies and watch events', async () => {
  await withHypervisor(async (hv) => {
    const domid = hv.createDomain({ name: 'store-guest' });
    const si = hv.startInfo(domid)!;
    hv.dom0.events.startAsync();
    const d = new Xenstored({ ringMapper: platformRingMapper(hv.dom0) });
    const dom0 = new TestClient(d);
    dom0.mkdir(`/local/domain/${domid}`);
    dom0.setPerms(`/local/domain/${domid}`, `n${domid}`);

    const guest = SimPlatform.attach(hv.platformHandle(domid));
    const page = new XenstoreGuestPage(guest.memory.page(si.storeFrame as Frame));
    let store: SimGuestStore | undefined;
    const binding = guest.events.adopt(si.storePort as EvtchnPort, () => store?.onEvent());
    store = new SimGuestStore(page, () => binding.notify());
    guest.events.startAsync();
    try {
      assert.equal(str(dom0.request({ op: 'introduce', domid, gfn: si.storeFrame, port: si.storePort })), 'OK');
      assert.equal(page.serverFeatures(), SERVER_FEATURES);
      assert.equal(await store.call({ op: 'write', path: 'data/x', value: new Uint8Array([55]) }), 'OK');
      assert.equal(dom0.read(`/local/domain/${domid}/data/x`), '7');
      assert.equal(await store.call({ op: 'watch', path: 'control', token: 'c' }), 'OK');
      dom0.write(`/local/domain/${domid}/control/shutdown`, 'poweroff');
      assert.equal(await store.call({ op: 'read', path: 'control/shutdown' }), 'poweroff');
      assert.deepEqual(store.events, ['control\0c\0', 'control/shutdown\0c\0']);
      assert.equal(await store.call({ op: 'read', path: '/tool' }), 'EACCES');
      assert.equal(str(dom0.request({ op: 'release', domid })), 'OK');
    } finally {
      d.close();
      guest.events.stopAsync();
      binding.dispose();
      guest.dispose();
      hv.dom0.events.stopAsync();
      await hv.destroy(domid);
    }
  });
});
