/**
 * Domain lifecycle in the sim hypervisor: create/destroy without leaks, domain ids reused
 * without inheriting anything, pause/unpause, limits, the builder's start info, and event
 * delivery between threads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GNTTAB_RESERVED_XENSTORE } from '../../abi/grant_table.js';
import { errorCode, type DomId, type EvtchnPort, type Frame, type GrantRef } from '../../base/index.js';
import { DW } from '../../memory/index.js';
import { SimPlatform } from './platform.js';
import { measureEvtchnRoundTrip } from './roundtrip.js';
import { Worker } from 'node:worker_threads';
import { EVTCHNSTAT_unbound } from '../../abi/event_channel.js';
import { withHypervisor } from './testing.js';

async function code(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (err) {
    return errorCode(err);
  }
  return 'no error';
}

test('create and destroy many domains: ids come back, frames are reclaimed, nothing leaks', () =>
  withHypervisor(async (hv) => {
    const frames = hv.framesInUse;
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(hv.createDomain({ memoryPages: 64 }));
    assert.deepEqual(ids, [1, 2, 3, 4, 5]);
    assert.ok(hv.framesInUse > frames + 5 * 64);
    assert.deepEqual(hv.list().map((d) => [d.domid, d.state]), [[0, 'running'], [1, 'running'], [2, 'running'], [3, 'running'], [4, 'running'], [5, 'running']]);
    for (const d of ids) await hv.destroy(d);
    assert.equal(hv.framesInUse, frames);
    assert.equal(await code(() => hv.destroy(3)), 'ESRCH');
    assert.equal(await code(() => hv.destroy(0)), 'EPERM');
  }));

test('a reused domain id inherits nothing: memory, grants, ports and listeners are fresh', () =>
  withHypervisor(async (hv) => {
    const max = hv.table.maxDomains;
    let d = hv.createDomain({ memoryPages: 16, startInfo: false });
    // Walk the id space round so the next domain lands on the same id.
    const first = d;
    const p = SimPlatform.attach(hv.platformHandle(d));
    const [f] = p.memory.allocPages(1) as [Frame];
    p.memory.page(f).fill(0xab);
    const ref = p.grants.grantAccess(0 as DomId, f, false);
    p.events.allocUnbound(0 as DomId, () => {});
    await hv.destroy(d);
    p.dispose();
    for (let i = 0; i < max - 2; i++) await hv.destroy(hv.createDomain({ memoryPages: 4, startInfo: false }));
    d = hv.createDomain({ memoryPages: 16, startInfo: false });
    assert.equal(d, first, 'same id again');
    const q = SimPlatform.attach(hv.platformHandle(d));
    assert.equal(q.memory.freeCount, 16);
    assert.ok(q.memory.page(0 as Frame).every((b) => b === 0), 'memory zeroed');
    assert.equal(await code(() => hv.dom0.grants.map(d, [ref], false)), 'GNTST_permission_denied', 'old grant gone');
    assert.equal(await code(() => hv.dom0.events.bindInterdomain(d, 1 as EvtchnPort, () => {})), 'EINVAL', 'old port gone');
    assert.equal(q.events.listener, 0, 'listener slots fresh');
    q.dispose();
    await hv.destroy(d);
  }));

test('pause and unpause nest like Xen\'s pause count; unpause of a running domain is EINVAL', () =>
  withHypervisor(async (hv) => {
    const d = hv.createDomain({ memoryPages: 8 });
    hv.pause(d);
    hv.pause(d);
    hv.unpause(d);
    assert.equal(hv.info(d)?.state, 'paused');
    hv.unpause(d);
    assert.equal(hv.info(d)?.state, 'running');
    assert.equal(await code(() => hv.unpause(d)), 'EINVAL');
    assert.equal(await code(() => hv.pause(40)), 'ESRCH');
    await hv.destroy(d);
  }));

test('limits: bad sizes are EINVAL, machine memory exhaustion is ENOMEM, domain ids run out with ENOSPC', () =>
  withHypervisor(
    async (hv) => {
      assert.equal(await code(() => hv.createDomain({ memoryPages: 1 })), 'EINVAL');
      assert.equal(await code(() => hv.createDomain({ memoryPages: 16, maxEventChannels: 5000 })), 'EINVAL');
      assert.equal(await code(() => hv.createDomain({ memoryPages: 100000 })), 'ENOMEM');
      const made = [];
      for (let i = 0; i < 3; i++) made.push(hv.createDomain({ memoryPages: 4, startInfo: false }));
      assert.equal(await code(() => hv.createDomain({ memoryPages: 4 })), 'ENOSPC');
      for (const d of made) await hv.destroy(d);
    },
    { maxDomains: 4, maxMachineBytes: 16 * 2 ** 20 },
  ));

test('start info: dom0 maps the guest\'s xenstore page at GNTTAB_RESERVED_XENSTORE and binds its store port', () =>
  withHypervisor(async (hv) => {
    const d = hv.createDomain({ memoryPages: 16 });
    const g = SimPlatform.attach(hv.platformHandle(d));
    const si = g.startInfo!;
    assert.deepEqual(hv.startInfo(d), si);
    g.memory.page(si.storeFrame as Frame)[0] = 0x5a;
    const m = hv.dom0.grants.map(d, [GNTTAB_RESERVED_XENSTORE as GrantRef], true);
    assert.equal(m.pages[0]![0], 0x5a);
    let guestGot = 0;
    let dom0Got = 0;
    const gb = g.events.adopt(si.storePort as EvtchnPort, () => guestGot++);
    const b = hv.dom0.events.bindInterdomain(d, si.storePort as EvtchnPort, () => dom0Got++);
    assert.equal(hv.dom0.poll(0), 1, 'bind_interdomain leaves one event on the binder');
    b.notify();
    assert.equal(g.poll(0), 1);
    gb.notify();
    gb.notify(); // coalesces with the first: one pending bit
    assert.equal(hv.dom0.poll(0), 1);
    assert.deepEqual([guestGot, dom0Got], [1, 2]);
    m.dispose();
    b.dispose();
    g.dispose();
    await hv.destroy(d);
    assert.equal(hv.table.get(0, DW.MAPTRACK_USED), 0);
  }));

test('events cross threads: two domains in worker threads ping-pong over a bound channel', () =>
  withHypervisor(async (hv) => {
    const r = await measureEvtchnRoundTrip(hv, { iterations: 200, warmup: 20 });
    assert.equal(r.iterations, 200);
    assert.ok(r.usPerRoundTrip > 0);
  }));

test('a backend thread that dies holding a mapping and a port is cleaned up by reclaimThread', () =>
  withHypervisor(async (hv) => {
    const d = hv.createDomain({ memoryPages: 16, startInfo: false });
    const g = SimPlatform.attach(hv.platformHandle(d));
    const [f] = g.memory.allocPages(1) as [Frame];
    const ref = g.grants.grantAccess(0 as DomId, f, false);
    const gp = g.events.allocUnbound(0 as DomId, () => {});
    const handle = hv.threadHandle(0);
    const w = new Worker(new URL('./crashing-backend-worker.js', import.meta.url), {
      workerData: { handle, guest: d, ref, port: gp.port },
    });
    await new Promise((r) => w.once('exit', r));
    assert.equal(g.grants.endAccess(ref), false, 'the dead thread\'s mapping still pins the page');
    assert.deepEqual(hv.reclaimThread(handle), { mappings: 1, ports: 1, refs: 0 });
    assert.equal(g.grants.endAccess(ref), true);
    assert.equal(g.events.hc.status(d, gp.port).state, EVTCHNSTAT_unbound, 'the guest end is unbound again');
    gp.dispose();
    g.dispose();
    await hv.destroy(d);
  }));

test('a backend thread that dies inside a domain reference: the destroyed domain is reclaimed once reclaimThread drops it', () =>
  withHypervisor(async (hv) => {
    const frames = hv.framesInUse;
    const d = hv.createDomain({ memoryPages: 16, startInfo: false });
    const handle = hv.threadHandle(0);
    const w = new Worker(new URL('./crashing-backend-worker.js', import.meta.url), {
      workerData: { handle, guest: d, ref: -1, port: -1, holdRef: true },
    });
    await new Promise((r) => w.once('exit', r));
    await hv.destroy(d);
    assert.deepEqual(hv.zombies, [d], 'the dead thread\'s reference keeps the domain');
    assert.deepEqual(hv.reclaimThread(handle), { mappings: 0, ports: 0, refs: 1 });
    assert.deepEqual(hv.zombies, [], 'reaped');
    assert.equal(hv.framesInUse, frames, 'every frame back');
  }));

test('DomainMemory.copy: between our pages a memmove, bytes exact and bounded; anything else as Uint8Array.set', () =>
  withHypervisor(async (hv) => {
    const d = hv.createDomain({ memoryPages: 16 });
    const p = SimPlatform.attach(hv.platformHandle(d));
    const [a, b] = p.memory.allocPages(2) as [Frame, Frame];
    const src = p.memory.page(a).subarray(2, 1516);
    src.set(Uint8Array.from({ length: 1514 }, (_, i) => (i * 31 + 7) & 0xff));
    const dst = p.memory.page(b);
    p.memory.copy(dst, 2, src);
    assert.deepEqual(dst.subarray(2, 1516), src);
    assert.equal(dst[1], 0);
    assert.equal(dst[1516], 0);
    // Out of the destination: refused as Uint8Array.set refuses it, nothing written past it.
    const small = dst.subarray(0, 100);
    assert.throws(() => p.memory.copy(small, 0, src), RangeError);
    assert.throws(() => p.memory.copy(dst, -1, src), RangeError);
    assert.equal(dst[1516], 0);
    // A private buffer on either side.
    const mine = new Uint8Array(1514);
    p.memory.copy(mine, 0, src);
    assert.deepEqual(mine, src);
    p.memory.copy(dst, 2000, mine);
    assert.deepEqual(dst.subarray(2000, 3514), src);
    p.memory.freePages([a, b]);
    await hv.destroy(d);
  }));
