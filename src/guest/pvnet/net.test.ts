/**
 * Two sim guests with netfronts, two netbacks in dom0 on one bridge, an in-process
 * xenstored: the real handshake, grant copies and event channels end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ping } from '../net/ping.js';
import { pattern, until, withNet, type NetGuest } from './test-support.js';

async function ping(env: Parameters<Parameters<typeof withNet>[0]>[0], from: NetGuest, to: NetGuest, count = 3) {
  const p = new Ping(from.stack, { dst: to.ip, count, intervalMs: 5, timeoutMs: 2000 });
  await until(env, () => (p.poll(), p.done), 4000);
  return p.result();
}

test('handshake: both ends Connected with the negotiated features', () =>
  withNet(async (env) => {
    const [a] = env.guests;
    assert.equal(a!.front.linkUp, true);
    assert.equal(a!.back.connected, true);
    const be = `/local/domain/0/backend/vif/${a!.domid}/0`;
    assert.equal(await env.dom0.readString(`${be}/state`), '4');
    assert.equal(await env.dom0.readString(`${be}/feature-rx-copy`), '1');
    assert.equal(await env.dom0.readString(`${be}/feature-rx-flip`), '0');
    const fe = `/local/domain/${a!.domid}/device/vif/0`;
    assert.equal(await env.dom0.readString(`${fe}/state`), '4');
    assert.equal(await env.dom0.readString(`${fe}/request-rx-copy`), '1');
    assert.match(await env.dom0.readString(`${fe}/event-channel-tx`), /^[1-9][0-9]*$/, 'split event channels negotiated');
    assert.ok(env.bridge.port(`vif${a!.domid}.0`) !== undefined, 'the vif joined the bridge');
  }));

test('ARP and ping both ways', () =>
  withNet(async (env) => {
    const [a, b] = env.guests as [NetGuest, NetGuest];
    const r1 = await ping(env, a, b);
    assert.equal(r1.received, 3, JSON.stringify(r1));
    assert.equal(r1.corrupted, 0);
    const r2 = await ping(env, b, a);
    assert.equal(r2.received, 3);
    assert.ok(a.stack.counters.arpRepliesTx + a.stack.counters.arpRequestsTx > 0, 'ARP went over the PV path');
    const sa = a.back.stats();
    assert.ok(sa.port!.rxPackets >= 4 && sa.port!.txPackets >= 4, JSON.stringify(sa.port));
  }));

test('UDP datagrams of 64, 1472 and (MTU 9000) multi-slot sizes arrive with exact payloads', () =>
  withNet(async (env) => {
    const [a, b] = env.guests as [NetGuest, NetGuest];
    const rx = b.stack.udpBind(7000);
    const tx = a.stack.udpBind(0);
    const sizes = [64, 1472, 4096, 8000, 8972];
    assert.equal((await ping(env, a, b, 1)).received, 1, 'ARP resolved first: its pending queue is short');
    for (const n of sizes) tx.send(b.ip, 7000, pattern(n, n));
    const got: Uint8Array[] = [];
    await until(env, () => {
      for (let d = rx.recv(); d !== undefined; d = rx.recv()) got.push(d.payload);
      return got.length === sizes.length;
    });
    assert.deepEqual(got.map((g) => g.length), sizes);
    got.forEach((g, i) => assert.deepEqual(g, pattern(sizes[i]!, sizes[i]!)));
    assert.ok(b.received.some((r) => r.frame.length > 4096), 'a multi-slot frame crossed the rx ring');
  }, [{ mtu: 9000 }, { mtu: 9000 }]));
