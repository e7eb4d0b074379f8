/**
 * The daemon as a control domain's xenstored, on the sim hypervisor: dom0's own ring served as
 * domain 0 (the kernel's XS_LOCAL page and port), and VIRQ_DOM_EXC followed by a domain list:
 * shutdown fires @releaseDomain once, death releases the domain and its nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EvtchnPort, Frame } from '../../base/index.js';
import { XenstoreGuestPage } from '../../ring/index.js';
import { SHUTDOWN_poweroff } from '../../abi/xen.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import type { Hypervisor } from '../../hv/sim/hypervisor.js';
import { encodeMessage, encodeRequest, FrameParser, latin1, type XsMessage } from '../protocol/index.js';
import { dom0RingMapper, reconcileDomains, serveDom0, type DomainState } from './dom0.js';
import { Xenstored } from './xenstored.js';
import { str, TestClient } from './test-support.js';
import { waitUntil } from '../../base/testing.js';

function states(hv: Hypervisor): DomainState[] {
  return hv.list().map((x) => ({ domid: x.domid, dying: x.state === 'dying', shutdown: x.state === 'shutdown' }));
}

/** Wait (bounded) until `cond` holds; the sim delivers events asynchronously. */
const until = (cond: () => boolean, what: string): Promise<void> => waitUntil(cond, what, 2000, 10);

test('dom0 ring: the kernel-side page and port carry requests as domain 0, privileged', async () => {
  await withHypervisor(async (hv) => {
    hv.dom0.events.startAsync();
    // What dom0's kernel does in XS_LOCAL mode: a zeroed page of its own and a port to itself.
    const [frame] = hv.dom0.memory.allocPages(1) as [Frame];
    const kernelPort = hv.allocUnboundFor(0, 0) as EvtchnPort;
    const kernelPage = new XenstoreGuestPage(hv.dom0.memory.page(frame));
    const replies: XsMessage[] = [];
    const parser = new FrameParser();
    let kernelEvents = 0;
    const kernel = hv.dom0.events.adopt(kernelPort, () => {
      kernelEvents++;
      replies.push(...parser.push(kernelPage.replies.read()).messages);
    });
    let disposed = false;
    const local = { page: hv.dom0.memory.page(frame), port: kernelPort, dispose: () => (disposed = true) };
    const d = new Xenstored({ ringMapper: dom0RingMapper(hv.dom0, local) });
    const serving = serveDom0(d, { platform: hv.dom0, localRing: local, listDomains: () => states(hv) });
    try {
      // The kernel waits for a first event before it probes: one comes with an empty ring.
      await until(() => kernelEvents > 0, 'the start-up event on the kernel port');
      const { type, payload } = encodeRequest({ op: 'write', path: '/tool/x', value: new TextEncoder().encode('from-kernel') });
      kernelPage.requests.write(encodeMessage({ type, reqId: 9, txId: 0, payload }));
      kernel.notify();
      await until(() => replies.length > 0, 'the reply on the kernel ring');
      assert.equal(latin1(replies[0]!.payload), 'OK\0');
      assert.equal(new TestClient(d).read('/tool/x'), 'from-kernel');
      assert.equal(str(new TestClient(d).request({ op: 'isDomainIntroduced', domid: 0 })), 'T');
    } finally {
      serving.dispose();
      d.close();
      kernel.dispose();
      hv.dom0.events.stopAsync();
      hv.dom0.memory.freePages([frame]);
    }
    assert.ok(disposed, 'the local ring is released with the daemon');
  });
});

test('VIRQ_DOM_EXC: shutdown fires @releaseDomain once, death releases the domain and its nodes', async () => {
  await withHypervisor(async (hv) => {
    hv.dom0.events.startAsync();
    const domid = hv.createDomain({ name: 'dying-guest' });
    const si = hv.startInfo(domid)!;
    const changes: string[] = [];
    const d = new Xenstored({ ringMapper: dom0RingMapper(hv.dom0, undefined) });
    const serving = serveDom0(d, { platform: hv.dom0, listDomains: () => states(hv), onChanges: (c) => changes.push(JSON.stringify(c)) });
    const tools = new TestClient(d);
    try {
      tools.mkdir(`/local/domain/${domid}`);
      tools.setPerms(`/local/domain/${domid}`, `n${domid}`);
      assert.equal(tools.watch('@releaseDomain', 'rel'), 'OK');
      tools.drainEvents();
      assert.equal(str(tools.request({ op: 'introduce', domid, gfn: si.storeFrame, port: si.storePort })), 'OK');
      assert.equal(hv.shutdown(domid, SHUTDOWN_poweroff), true);
      await until(() => changes.length > 0, 'the shutdown seen through VIRQ_DOM_EXC');
      assert.deepEqual(tools.drainEvents(), [['@releaseDomain', 'rel']]);
      assert.equal(d.domains.get(domid)?.shutdown, true);
      assert.equal(tools.read(`/local/domain/${domid}`), '', 'a shut-down domain keeps its nodes');
      // Another VIRQ for the same state changes nothing (once until RESUME).
      assert.deepEqual(reconcileDomains(d, states(hv)), { shutdown: [], released: [], forgotten: [] });
      await hv.destroy(domid);
      await until(() => changes.length > 1, 'the death seen through VIRQ_DOM_EXC');
      assert.deepEqual(JSON.parse(changes[1]!), { shutdown: [], released: [domid], forgotten: [] });
      assert.deepEqual(tools.drainEvents(), [['@releaseDomain', 'rel']]);
      assert.equal(tools.read(`/local/domain/${domid}`), 'ENOENT', 'the dead domain\'s nodes are gone');
      assert.equal(str(tools.request({ op: 'isDomainIntroduced', domid })), 'F');
    } finally {
      serving.dispose();
      d.close();
      hv.dom0.events.stopAsync();
    }
  });
});

test('reconcile: a failed list releases nothing; records of vanished, never-introduced domains are forgotten', () => {
  const d = new Xenstored();
  const tools = new TestClient(d);
  tools.mkdir('/local/domain/5');
  assert.equal(tools.setPerms('/local/domain/5', 'n0,r7'), 'OK');
  assert.equal(str(tools.request({ op: 'introduce', domid: 5, gfn: 1, port: 2 })), 'OK');
  assert.notEqual(d.domains.get(7), undefined);
  const calls: string[] = [];
  const fakeEvents = { bindVirq: (virq: number) => (calls.push(`virq ${virq}`), { port: 1, notify() {}, unmask() {}, dispose: () => calls.push('unbind') }) };
  const platform = { events: fakeEvents } as unknown as Parameters<typeof serveDom0>[1]['platform'];
  const serving = serveDom0(d, { platform, listDomains: () => { throw new Error('EFAULT'); } });
  assert.equal(d.domains.get(5)?.introduced, true, 'kept while the hypervisor cannot be asked');
  serving.dispose();
  assert.deepEqual(calls, ['virq 3', 'unbind']);
  assert.deepEqual(reconcileDomains(d, [{ domid: 0, dying: false, shutdown: false }, { domid: 5, dying: false, shutdown: false }]), {
    shutdown: [],
    released: [],
    forgotten: [7],
  });
  assert.deepEqual(reconcileDomains(d, [{ domid: 0, dying: false, shutdown: false }, { domid: 5, dying: true, shutdown: true }]), {
    shutdown: [],
    released: [5],
    forgotten: [],
  });
  d.close();
});
