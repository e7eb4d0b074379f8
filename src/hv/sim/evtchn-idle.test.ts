/**
 * The async loop's idle policy (evtchn/listener.ts `IdlePoll`, a guest's halt polling): an
 * event that comes while the loop polls is delivered without blocking, and the event loop
 * keeps running meanwhile; one that comes later is delivered after the loop blocked; each
 * idle period is reported with how long it lasted and how it ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DomId } from '../../base/index.js';
import type { IdlePoll } from '../../evtchn/index.js';
import { SimPlatform } from './platform.js';
import { eventually, withHypervisor } from './testing.js';
import type { Hypervisor } from './hypervisor.js';

/** A policy with a fixed limit that records every idle period. */
class Recorder implements IdlePoll {
  readonly periods: { ms: number; polled: boolean }[] = [];
  constructor(readonly limitNs: number) {}
  reflect(blockNs: number, polled: boolean): void {
    this.periods.push({ ms: blockNs / 1e6, polled });
  }
}

/**
 * A guest whose listener runs under `policy`, an event sent to it from dom0 `afterMs` after
 * its loop went idle, and the idle period that event ended.
 */
async function idleUntilEvent(hv: Hypervisor, policy: Recorder, afterMs: number): Promise<{ ms: number; polled: boolean }> {
  const domid = hv.createDomain({ memoryPages: 16, startInfo: false });
  const p = SimPlatform.attach(hv.platformHandle(domid), { idlePoll: policy });
  const back = hv.dom0.events.allocUnbound(domid, () => {});
  let got = 0;
  const front = p.events.bindInterdomain(0 as DomId, back.port, () => got++);
  try {
    // bind raised one event on the binder: let the loop deliver it and go idle.
    assert.ok(await eventually(() => got === 1 && policy.periods.length === 0));
    await new Promise((r) => setTimeout(r, 1));
    policy.periods.length = 0;
    await new Promise((r) => setTimeout(r, afterMs));
    back.notify();
    assert.ok(await eventually(() => got === 2 && policy.periods.length > 0), 'the event is delivered');
    const last = policy.periods.at(-1)!;
    assert.ok(last.ms >= afterMs * 0.8, `idle ${last.ms} ms for an event sent after ${afterMs} ms`);
    return last;
  } finally {
    front.dispose();
    back.dispose();
    p.dispose();
    await hv.destroy(domid);
  }
}

test('idle polling: an event within the poll limit ends the poll without blocking, and timers ran while it polled', () =>
  withHypervisor(async (hv) => {
    // The notify comes from a timer of this very thread: it can only fire if the poll lets the event loop run.
    const period = await idleUntilEvent(hv, new Recorder(500e6), 20);
    assert.equal(period.polled, true);
    assert.ok(period.ms < 400, `the event was seen ${period.ms} ms into a 500 ms poll`);
  }));

test('idle polling: past the limit the loop blocks, and the later event wakes it', () =>
  withHypervisor(async (hv) => {
    const period = await idleUntilEvent(hv, new Recorder(2e6), 30);
    assert.equal(period.polled, false);
  }));

test('idle polling: a limit of 0 blocks at once, as without a policy', () =>
  withHypervisor(async (hv) => {
    const period = await idleUntilEvent(hv, new Recorder(0), 10);
    assert.equal(period.polled, false);
  }));
