/**
 * The bridge's TAP uplink end to end: Linux's own `ping`, in a network namespace holding the
 * TAP, reaches a guest through TAP → bridge → netback → netfront → the guest's stack, and the
 * guest's `ping` reaches the namespace the other way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ping } from '../net/ping.js';
import { TapUplink } from '../../devices/net/bridge/tap-port.js';
import { configureInNs, inNs, skipTapPing, uniqueNames, withNetns } from '../../devices/net/bridge/tap-test-support.js';
import { until, withNet, type NetGuest } from './test-support.js';

test('uplink: Linux pings a guest from a network namespace through the TAP, and the guest pings back', { skip: skipTapPing }, () =>
  withNet(async (env) => {
    const [a, b] = env.guests as [NetGuest, NetGuest];
    const { ns, tap } = uniqueNames();
    await withNetns(ns, async () => {
      const uplink = await TapUplink.open(env.bridge, tap);
      try {
        await configureInNs(ns, tap, '02:00:00:00:01:00', '10.0.0.100/24');
        // Linux's ping runs in a child process while this event loop serves the bridge and the guests.
        const fromLinux = await inNs(ns, 'ping', '-c', '3', '-i', '0.2', '-W', '2', a.ip);
        assert.equal(fromLinux.code, 0, fromLinux.stdout);
        assert.match(fromLinux.stdout, /3 packets transmitted, 3 received/);
        const p = new Ping(b.stack, { dst: '10.0.0.100', count: 3, intervalMs: 10, timeoutMs: 2000 });
        assert.ok(await until(env, () => (p.poll(), p.done), 6000), 'the guest ping finished');
        assert.equal(p.result().received, 3, p.lines.join('\n'));
        const st = uplink.stats();
        assert.equal(st.state, 'up');
        assert.ok(st.port.rxPackets >= 6 && st.port.txPackets >= 6, JSON.stringify(st.port));
        assert.equal(st.rxQueueFull, 0);
      } finally {
        await uplink.close();
      }
      assert.equal(env.bridge.port(tap), undefined, 'the uplink left the bridge');
    });
  }));
