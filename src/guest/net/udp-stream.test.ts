import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STREAM_MAGIC, UdpStreamReceiver, UdpStreamSender } from './udp-stream.js';
import { twoStacks } from './test-support.js';
import { errorCode } from '../../base/index.js';

test('a paced stream of 64-byte datagrams arrives complete', () => {
  const { a, b, clock } = twoStacks();
  const rx = new UdpStreamReceiver(b.stack, 5001);
  const tx = new UdpStreamSender(a.stack, { dst: '10.0.0.2', port: 5001, size: 64, durationMs: 100, pps: 1000 });
  for (let t = tx.pump(); t !== undefined; t = tx.pump()) clock.nowMs = Math.max(clock.nowMs, t);
  const s = tx.report();
  const r = rx.report();
  assert.deepEqual([s.packets, s.bytes, s.sendFailures], [100, 6400, 0]);
  assert.deepEqual([r.packets, r.bytes, r.lost, r.reordered, r.duplicates, r.complete, r.size], [100, 6400, 0, 0, 0, true, 64]);
  assert.equal(r.durationMs, 99, 'first to last arrival');
  assert.ok(Math.abs(r.pps - 100_000 / 99) < 1e-9);
  assert.ok(Math.abs(r.mbps - (6400 * 8) / 99_000) < 1e-9);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
  assert.equal(a.stack.sockets.size, 0, 'the sender closed its socket');
});

test('an unpaced stream of full-size datagrams', () => {
  const { a, b, clock } = twoStacks();
  const rx = new UdpStreamReceiver(b.stack, 5001);
  const tx = new UdpStreamSender(a.stack, { dst: '10.0.0.2', port: 5001, size: a.stack.maxUdpPayload, durationMs: 10 });
  while (tx.pump(64) !== undefined) clock.advance(1);
  assert.equal(tx.report().packets, 640);
  const r = rx.report();
  assert.deepEqual([r.packets, r.lost, r.size], [640, 0, 1472]);
  assert.equal(b.stack.counters.udpQueueFull, 0);
});

test('omit: the rates start omitMs after the first datagram; totals and loss cover the whole stream', () => {
  const { a, b, clock } = twoStacks();
  const rx = new UdpStreamReceiver(b.stack, 5001, b.stack.clock, 30);
  const tx = new UdpStreamSender(a.stack, { dst: '10.0.0.2', port: 5001, size: 64, durationMs: 100, pps: 1000 });
  for (let t = tx.pump(); t !== undefined; t = tx.pump()) clock.nowMs = Math.max(clock.nowMs, t);
  const r = rx.report();
  assert.deepEqual([r.packets, r.bytes, r.lost, r.complete, r.omitMs], [100, 6400, 0, true, 30]);
  // Datagrams at 0..99 ms: those at 30..99 count, over 69 ms (first counted to last).
  assert.equal(r.durationMs, 69);
  assert.ok(Math.abs(r.pps - 70_000 / 69) < 1e-9, String(r.pps));
  assert.ok(Math.abs(r.mbps - (70 * 64 * 8) / 69_000) < 1e-9, String(r.mbps));
});

test('loss, reordering and duplicates are counted from sequence numbers', () => {
  const { a, b } = twoStacks();
  const rx = new UdpStreamReceiver(b.stack, 5001);
  const s = a.stack.udpBind(6000);
  const dgram = (kind: number, n: number) => {
    const p = new Uint8Array(32);
    const v = new DataView(p.buffer);
    v.setUint32(0, STREAM_MAGIC);
    v.setUint8(4, kind);
    v.setUint32(8, n);
    return p;
  };
  for (const seq of [0, 1, 3, 2, 2, 5]) s.send('10.0.0.2', 5001, dgram(1, seq));
  s.send('10.0.0.2', 5001, Uint8Array.of(1, 2, 3));
  assert.equal(rx.done, false);
  s.send('10.0.0.2', 5001, dgram(2, 7));
  const r = rx.report();
  assert.deepEqual(
    [r.packets, r.duplicates, r.reordered, r.lost, r.malformed, r.complete],
    [5, 1, 1, 2, 1, true],
  );
  assert.ok(Math.abs(r.lossPercent! - (200 / 7)) < 1e-9);
  rx.close();
});

test('the sender refuses sizes that do not fit', () => {
  const { a } = twoStacks();
  assert.throws(() => new UdpStreamSender(a.stack, { dst: '10.0.0.2', port: 1, size: 8, durationMs: 1 }), (e) => errorCode(e) === 'EINVAL');
  assert.throws(() => new UdpStreamSender(a.stack, { dst: '10.0.0.2', port: 1, size: 1473, durationMs: 1 }), (e) => errorCode(e) === 'EINVAL');
});
