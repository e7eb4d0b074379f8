/**
 * Back-pressure through xenbr0: a receiver that stops taking frames for a while holds its
 * sender off (netback stops taking the sender's tx ring, netfront's backlog fills) instead of
 * the bridge dropping; once the receiver drains, everything sent arrives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tcpFrame, until, withNet, type NetGuest } from './test-support.js';

test('back-pressure: a receiver that stalls holds its sender off; nothing is dropped, everything arrives', () =>
  withNet(async (env) => {
    const [a, b] = env.guests as [NetGuest, NetGuest];
    // Teach the bridge where b is (known unicast is what back-pressure applies to).
    b.front.transmit(tcpFrame(b, a, 9, 9, 10));
    assert.ok(await until(env, () => a.front.counters.rxPackets >= 1));
    const rxq = b.front.queue(0)!;
    b.platform.events.mask(rxq.rxEvt.port); // b takes no rx events: it neither reads nor reposts
    const received0 = b.front.counters.rxPackets;
    let sent = 0;
    let heldOff = 0;
    // Send until held off (bounded), then 10 ms more: well inside netback's 100 ms patience
    // with a receiver that delivers nothing.
    let end = performance.now() + 3000;
    while (performance.now() < end && sent < 5000) {
      if (a.front.txBacklogged) {
        if (heldOff++ === 0) end = performance.now() + 10;
        await a.front.waitTxRoom(5);
        continue;
      }
      for (let i = 0; i < 16; i++) if (a.front.transmit(tcpFrame(a, b, 1000, 80, 1000))) sent++;
      await new Promise((r) => setImmediate(r));
    }
    const port = env.bridge.port(b.back.name)!;
    assert.ok(heldOff > 0, 'the sender saw back-pressure');
    assert.ok(sent < 1000, `held off: ${sent} frames sent`);
    assert.equal(port.stats().txQueueFull, 0, 'the bridge dropped nothing');
    rxq.rxEvt.unmask();
    assert.ok(await until(env, () => b.front.counters.rxPackets - received0 === sent, 3000), `${b.front.counters.rxPackets - received0} of ${sent}`);
    assert.equal(port.stats().txQueueFull, 0);
    assert.equal(a.front.counters.txDropped, 0);
  }, [{}, { front: { buffers: { rx: 16 } } }]));

test('txSpace: the frames the ring takes now; sending no more than it never backlogs, and it is 0 while a backlog waits', () =>
  withNet(async (env) => {
    const [a, b] = env.guests as [NetGuest, NetGuest];
    assert.equal(a.front.txSpace(), 8, 'the 8 transmit pages, all free');
    // Synchronously: netback (on this event loop) takes nothing until we yield.
    const frame = tcpFrame(a, b, 1000, 80, 100);
    for (let i = 0; i < 8; i++) assert.ok(a.front.transmit(frame));
    assert.equal(a.front.txBacklogged, false, 'txSpace frames went straight onto the ring');
    assert.equal(a.front.txSpace(), 0, 'every page is out');
    assert.ok(a.front.transmit(frame));
    assert.equal(a.front.txBacklogged, true, 'one frame more waits in the backlog');
    assert.equal(a.front.txSpace(), 0);
    assert.ok(await until(env, () => a.front.txSpace() === 8, 3000), 'the pages come back and the backlog went out');
    assert.equal(a.front.txBacklogged, false);
    assert.ok(await until(env, () => b.front.counters.rxPackets >= 9, 3000), 'all nine arrived');
  }, [{ front: { buffers: { tx: 8 } } }, {}]));
