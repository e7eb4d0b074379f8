/**
 * The guest kernel in its vCPU worker: programs run, shut down with a reason, crash with a
 * message, echo events, and stop when destroyed, leaving nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, VIRQ_DOM_EXC } from '../abi/xen.js';
import type { EvtchnPort } from '../base/index.js';
import { eventually, withHypervisor } from '../hv/sim/testing.js';
import { GUEST_KERNEL_URL } from './entry.js';

const opts = { vcpuEntry: GUEST_KERNEL_URL };

test('builtin:shutdown reboot: the reason reaches the hypervisor and dom0 gets VIRQ_DOM_EXC', () =>
  withHypervisor(async (hv) => {
    let exc = 0;
    const v = hv.dom0.events.bindVirq(VIRQ_DOM_EXC, () => exc++);
    hv.dom0.events.startAsync();
    const d = hv.createDomain({ kernel: 'builtin:shutdown', extra: 'reboot' });
    const info = await hv.waitForShutdown(d);
    assert.equal(info.shutdownCode, SHUTDOWN_reboot);
    assert.equal(info.shutdownReason, 'reboot');
    assert.ok(await eventually(() => exc > 0));
    assert.equal(exc, 1);
    await hv.destroy(d);
    v.dispose();
  }, opts));

test('a program that throws crashes the domain with its message', () =>
  withHypervisor(async (hv) => {
    const d = hv.createDomain({ kernel: 'builtin:crash', extra: 'disk on fire' });
    const info = await hv.waitForShutdown(d);
    assert.equal(info.shutdownCode, SHUTDOWN_crash);
    assert.equal(info.message, 'disk on fire');
    await hv.destroy(d);
  }, opts));

test('a program module by path; returning is poweroff; its console lines reach the host', () =>
  withHypervisor(async (hv) => {
    const path = fileURLToPath(new URL('./test-programs/hello.js', import.meta.url));
    const d = hv.createDomain({ kernel: path, extra: 'a b' });
    const info = await hv.waitForShutdown(d);
    assert.equal(info.shutdownCode, SHUTDOWN_poweroff);
    assert.deepEqual(hv.console(d), [`hello from dom${d}: a,b`]);
    await hv.destroy(d);
  }, opts));

test('a vCPU that exits without shutting down leaves a crashed domain, not a silent one', () =>
  withHypervisor(async (hv) => {
    const path = fileURLToPath(new URL('./test-programs/exits.js', import.meta.url));
    const d = hv.createDomain({ kernel: path });
    const info = await hv.waitForShutdown(d);
    assert.equal(info.shutdownCode, SHUTDOWN_crash);
    assert.match(info.message ?? '', /exited \(code 3\) without shutting down/);
    await hv.destroy(d);
  }, opts));

test('an unknown builtin crashes at boot with a message naming it', () =>
  withHypervisor(async (hv) => {
    const d = hv.createDomain({ kernel: 'builtin:nope' });
    const info = await hv.waitForShutdown(d);
    assert.equal(info.shutdownReason, 'crash');
    assert.match(info.message ?? '', /no built-in program 'nope'/);
    await hv.destroy(d);
  }, opts));

test('destroy stops a paused or a running vCPU by itself (no forced termination)', () =>
  withHypervisor(
    async (hv) => {
      let forced = 0;
      hv.on('vcpu-terminated', () => forced++);
      const paused = hv.createDomain({ kernel: 'builtin:idle', paused: true });
      const running = hv.createDomain({ kernel: 'builtin:idle' });
      assert.ok(await eventually(() => hv.console(running).length > 0));
      assert.deepEqual(hv.console(running), ['idle']);
      await hv.destroy(paused);
      await hv.destroy(running);
      assert.equal(forced, 0);
      assert.deepEqual(hv.list().map((d) => d.domid), [0]);
    },
    { ...opts, killGraceMs: 3000 },
  ));

test('evtchn-echo over a toolstack-allocated port: round trips, then pause holds them', () =>
  withHypervisor(async (hv) => {
    // Allocate the guest's port before boot, as the toolstack does for store/console ports.
    const e = hv.createDomain({ kernel: 'builtin:evtchn-echo', paused: true, startInfo: false, extra: 'adopt=1' });
    const gp = hv.allocUnboundFor(e, 0);
    assert.equal(gp, 1);
    let got = 0;
    const b = hv.dom0.events.bindInterdomain(e, gp as EvtchnPort, () => got++);
    hv.dom0.events.startAsync();
    hv.unpause(e);
    const until = (n: number) => eventually(() => got >= n);
    await until(1);
    assert.equal(got, 1, 'the event bind_interdomain leaves on the binder (dom0)');
    const base = 1;
    // Sent before the guest has adopted its port: the event waits, pending, for it.
    for (let i = 1; i <= 5; i++) {
      b.notify();
      await until(base + i);
    }
    assert.equal(got, base + 5);
    hv.pause(e);
    b.notify();
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(got, base + 5, 'paused: no answer');
    hv.unpause(e);
    await until(base + 6);
    assert.equal(got, base + 6);
    await hv.destroy(e);
    b.dispose();
  }, opts));
