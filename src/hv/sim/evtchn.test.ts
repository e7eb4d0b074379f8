/**
 * Event channels, 2-level ABI (evtchn/): alloc/bind/send/close, mask/unmask, VIRQ_DOM_EXC,
 * port exhaustion, and the shared_info bits at the offsets Xen's headers give.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVTCHNSTAT_interdomain, EVTCHNSTAT_unbound } from '../../abi/event_channel.js';
import { SHARED_INFO, SHUTDOWN_reboot, VCPU_INFO, VIRQ_DOM_EXC } from '../../abi/xen.js';
import { errorCode, type DomId, type EvtchnPort } from '../../base/index.js';
import { L_SEL_LO, L_WAKE } from '../../evtchn/layout.js';
import { DW } from '../../memory/index.js';
import { SimPlatform } from './platform.js';
import { eventually, withHypervisor } from './testing.js';
import type { Hypervisor } from './hypervisor.js';
import type { EventOps } from '../platform.js';

function guest(hv: Hypervisor, config = {}): { domid: DomId; p: SimPlatform } {
  const domid = hv.createDomain({ memoryPages: 16, startInfo: false, ...config });
  return { domid, p: SimPlatform.attach(hv.platformHandle(domid)) };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return errorCode(err);
  }
  return 'no error';
}

test('alloc_unbound + bind_interdomain: events both ways; bind raises one on the binder', () =>
  withHypervisor((hv) => {
    const g = guest(hv);
    let back = 0;
    let front = 0;
    const b = hv.dom0.events.allocUnbound(g.domid, () => back++);
    assert.deepEqual(hv.dom0.events.hc.status(0, b.port), { state: EVTCHNSTAT_unbound, remoteDom: g.domid, remotePort: 0 });
    const f = g.p.events.bindInterdomain(0 as DomId, b.port, () => front++);
    assert.deepEqual(hv.dom0.events.hc.status(0, b.port), { state: EVTCHNSTAT_interdomain, remoteDom: g.domid, remotePort: f.port });
    assert.equal(g.p.poll(0), 1, 'Xen sets the binder\'s port pending after bind_interdomain');
    f.notify();
    f.notify(); // coalesces: still one pending bit
    assert.equal(hv.dom0.poll(0), 1);
    assert.equal(back, 1);
    b.notify();
    assert.equal(g.p.poll(0), 1);
    assert.equal(front, 2);
    assert.equal(hv.dom0.poll(0), 0, 'nothing left');
    f.dispose();
    b.dispose();
    g.p.dispose();
  }));

test('bind_interdomain refuses ports not unbound for us, bad ports and missing domains', () =>
  withHypervisor((hv) => {
    const g = guest(hv);
    const h = guest(hv);
    const b = hv.dom0.events.allocUnbound(g.domid, () => {});
    const e = hv.dom0.events;
    assert.equal(code(() => h.p.events.bindInterdomain(0 as DomId, b.port, () => {})), 'EINVAL', 'names another domain');
    assert.equal(code(() => g.p.events.bindInterdomain(0 as DomId, 999 as EvtchnPort, () => {})), 'EINVAL', 'closed port');
    assert.equal(code(() => g.p.events.bindInterdomain(0 as DomId, 5000 as EvtchnPort, () => {})), 'EINVAL', 'out of range');
    assert.equal(code(() => g.p.events.bindInterdomain(33 as DomId, 1 as EvtchnPort, () => {})), 'ESRCH');
    const f = g.p.events.bindInterdomain(0 as DomId, b.port, () => {});
    assert.equal(code(() => g.p.events.bindInterdomain(0 as DomId, b.port, () => {})), 'EINVAL', 'already bound');
    assert.equal(code(() => e.hc.close(0, 777)), 'EINVAL', 'close of a closed port');
    f.dispose();
    b.dispose();
    g.p.dispose();
    h.p.dispose();
  }));

test('closing one end leaves the other unbound, naming the closer; sends into it are dropped; it can be rebound', () =>
  withHypervisor((hv) => {
    const g = guest(hv);
    let back = 0;
    const b = hv.dom0.events.allocUnbound(g.domid, () => back++);
    const f = g.p.events.bindInterdomain(0 as DomId, b.port, () => {});
    f.dispose();
    assert.deepEqual(hv.dom0.events.hc.status(0, b.port), { state: EVTCHNSTAT_unbound, remoteDom: g.domid, remotePort: 0 });
    b.notify(); // unbound: dropped, no error
    const f2 = g.p.events.bindInterdomain(0 as DomId, b.port, () => {});
    f2.notify();
    assert.equal(hv.dom0.poll(0), 1);
    assert.equal(back, 1);
    f2.dispose();
    b.dispose();
    g.p.dispose();
  }));

test('mask holds an event pending; unmask delivers it; bits sit where shared_info puts them', () =>
  withHypervisor((hv) => {
    const g = guest(hv);
    let n = 0;
    const b = hv.dom0.events.allocUnbound(g.domid, () => n++);
    const f = g.p.events.bindInterdomain(0 as DomId, b.port, () => {});
    hv.dom0.events.mask(b.port);
    f.notify();
    assert.equal(hv.dom0.poll(0), 0);
    const si = new DataView(hv.table.machine.sab, hv.table.get(0, DW.R_SHARED_INFO) * 4096, 4096);
    const p = b.port;
    const word = (off: number) => si.getBigUint64(off + 8 * (p >> 6), true);
    const bit = 1n << BigInt(p % 64);
    assert.equal(word(SHARED_INFO.layouts.x86_64.fields.evtchn_pending!) & bit, bit, 'pending');
    assert.equal(word(SHARED_INFO.layouts.x86_64.fields.evtchn_mask!) & bit, bit, 'masked');
    b.unmask();
    const sel = si.getBigUint64(VCPU_INFO.layouts.x86_64.fields.evtchn_pending_sel!, true);
    assert.equal(sel & (1n << BigInt(p >> 6)), 1n << BigInt(p >> 6), 'selector bit of the port\'s word');
    assert.equal(si.getUint8(VCPU_INFO.layouts.x86_64.fields.evtchn_upcall_pending!), 1);
    assert.equal(hv.dom0.poll(0), 1);
    assert.equal(n, 1);
    assert.equal(word(SHARED_INFO.layouts.x86_64.fields.evtchn_pending!) & bit, 0n, 'cleared by the upcall');
    // A guest scanning vcpu_info itself takes the selector and clears upcall_pending; the
    // next event sets both again, as Xen's 2-level set_pending does.
    const view = hv.dom0.events.hc.view(0);
    assert.equal(view.takeVcpuSelector(0) & (1n << BigInt(p >> 6)), 1n << BigInt(p >> 6));
    assert.equal(si.getUint8(VCPU_INFO.layouts.x86_64.fields.evtchn_upcall_pending!), 0);
    f.notify();
    assert.equal(si.getUint8(VCPU_INFO.layouts.x86_64.fields.evtchn_upcall_pending!), 1);
    assert.equal(hv.dom0.poll(0), 1);
    f.dispose();
    b.dispose();
    g.p.dispose();
  }));

test('VIRQ_DOM_EXC reaches dom0 on shutdown and on destroy; a VIRQ binds once', () =>
  withHypervisor(async (hv) => {
    let exc = 0;
    const v = hv.dom0.events.bindVirq(VIRQ_DOM_EXC, () => exc++);
    assert.equal(code(() => hv.dom0.events.bindVirq(VIRQ_DOM_EXC, () => {})), 'EEXIST');
    assert.equal(code(() => hv.dom0.events.bindVirq(24, () => {})), 'EINVAL');
    const g = guest(hv);
    g.p.shutdown(SHUTDOWN_reboot);
    assert.equal(hv.dom0.poll(0), 1);
    assert.equal(hv.info(g.domid)?.shutdownReason, 'reboot');
    g.p.dispose();
    await hv.destroy(g.domid);
    assert.equal(hv.dom0.poll(0), 1);
    assert.equal(exc, 2);
    v.dispose();
  }));

test('destroy closes the dead domain\'s ports: the survivor\'s end becomes unbound', () =>
  withHypervisor(async (hv) => {
    const g = guest(hv);
    const b = hv.dom0.events.allocUnbound(g.domid, () => {});
    g.p.events.bindInterdomain(0 as DomId, b.port, () => {});
    await hv.destroy(g.domid);
    g.p.dispose();
    assert.deepEqual(hv.dom0.events.hc.status(0, b.port), { state: EVTCHNSTAT_unbound, remoteDom: g.domid, remotePort: 0 });
    b.notify();
    b.dispose();
  }));

test('ports run out at max_event_channels with ENOSPC; port 0 is never handed out', () =>
  withHypervisor((hv) => {
    const g = guest(hv, { maxEventChannels: 8 });
    const ports = [];
    for (let i = 0; i < 7; i++) ports.push(g.p.events.allocUnbound(0 as DomId, () => {}));
    assert.deepEqual(ports.map((b) => b.port), [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(code(() => g.p.events.allocUnbound(0 as DomId, () => {})), 'ENOSPC');
    ports[3]!.dispose();
    const again = g.p.events.allocUnbound(0 as DomId, () => {});
    assert.equal(again.port, 4);
    g.p.dispose();
  }));

test('a paused domain gets no events until unpaused; async delivery on the event loop', () =>
  withHypervisor(async (hv) => {
    const g = guest(hv);
    const b = hv.dom0.events.allocUnbound(g.domid, () => {});
    let got = 0;
    const f = g.p.events.bindInterdomain(0 as DomId, b.port, () => got++);
    g.p.poll(0);
    got = 0;
    hv.pause(g.domid);
    assert.equal(hv.info(g.domid)?.state, 'paused');
    g.p.events.startAsync();
    b.notify();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(got, 0, 'paused: still pending');
    hv.unpause(g.domid);
    assert.ok(await eventually(() => got > 0));
    assert.equal(got, 1);
    f.dispose();
    b.dispose();
    g.p.dispose();
  }));

for (const idle of [undefined, { limitNs: 0, reflect: () => undefined }]) {
  test(`the lost-wake-up watchdog still guards the async loop${idle === undefined ? '' : ' with an idle policy'} restarted while the stopped one waited`, () =>
    withHypervisor(async (hv) => {
      const domid = hv.createDomain({ memoryPages: 16, startInfo: false });
      const p = SimPlatform.attach(hv.platformHandle(domid), idle === undefined ? {} : { idlePoll: idle });
      const b = hv.dom0.events.allocUnbound(domid, () => {});
      let got = 0;
      const f = p.events.bindInterdomain(0 as DomId, b.port, () => got++);
      // Binding raised one event: once it is delivered the loop waits.
      assert.ok(await eventually(() => got === 1));
      await new Promise((r) => setTimeout(r, 10));
      const ops = p.events;
      ops.stopAsync();
      ops.startAsync();
      // The stopped loop's wait ends after the new loop has begun its own.
      await new Promise((r) => setTimeout(r, 10));
      // A lost wake-up: the event made deliverable and the wake word moved, no one notified.
      const v = ops.hc.view(domid);
      v.setMask(f.port);
      b.notify(); // pending but masked: not raised
      v.testAndClearMask(f.port); // unmasked without raising
      const { words, index } = ops.wakeWord;
      Atomics.or(words, index - L_WAKE + L_SEL_LO, 1 << ((f.port >>> 6) & 31));
      Atomics.add(words, index, 1);
      assert.ok(await eventually(() => got === 2, 2000), 'the watchdog woke the restarted loop');
      f.dispose();
      b.dispose();
      p.dispose();
    }));
}

test('EventOps.adopt (the contract): a port the builder opened is taken, events pending before it arrive, misuse is refused', () =>
  withHypervisor((hv) => {
    const domid = hv.createDomain({ memoryPages: 16 });
    const p = SimPlatform.attach(hv.platformHandle(domid));
    const ops: EventOps = p.events;
    const port = p.startInfo!.storePort as EvtchnPort;
    let dom0Got = 0;
    const back = hv.dom0.events.bindInterdomain(domid, port, () => dom0Got++);
    back.notify(); // before the guest has adopted its port: it waits, pending
    let got = 0;
    const b = ops.adopt(port, () => got++);
    assert.equal(b.port, port);
    p.poll(0);
    assert.equal(got, 1, 'the event raised before adopt is delivered');
    assert.equal(code(() => ops.adopt(port, () => undefined)), 'EEXIST');
    assert.equal(code(() => ops.adopt(900 as EvtchnPort, () => undefined)), 'EINVAL', 'a port that is not open');
    assert.equal(code(() => ops.adopt(0 as EvtchnPort, () => undefined)), 'EINVAL');
    b.notify();
    hv.dom0.poll(0);
    assert.ok(dom0Got >= 1, 'the adopted port reaches the peer');
    b.dispose();
    back.dispose();
    p.dispose();
  }));
