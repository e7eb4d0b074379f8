import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetStack, type EchoReply } from './stack.js';
import { FakeClock, attachStack, fromHex, twoStacks } from './test-support.js';
import { formatIpv4, parseIpv4 } from './addr.js';
import { errorCode } from '../../base/index.js';
import { fillL4Checksum } from '../../devices/net/bridge/checksum.js';

test('ARP resolves through the bridge and ping works both ways', () => {
  const { a, b } = twoStacks();
  const repliesA: EchoReply[] = [];
  const repliesB: EchoReply[] = [];
  a.stack.onEchoReply(7, (r) => repliesA.push(r));
  b.stack.onEchoReply(9, (r) => repliesB.push(r));
  assert.equal(a.stack.sendEchoRequest('10.0.0.2', 7, 1, Uint8Array.of(1, 2, 3)), 'queued');
  assert.equal(repliesA.length, 1, 'ARP answered synchronously, the queued echo went out and came back');
  assert.deepEqual([repliesA[0]!.seq, formatIpv4(repliesA[0]!.src), [...repliesA[0]!.data], repliesA[0]!.ttl], [1, '10.0.0.2', [1, 2, 3], 64]);
  assert.equal(a.stack.counters.arpRequestsTx, 1);
  assert.equal(b.stack.counters.arpRepliesTx, 1);
  assert.equal(b.stack.sendEchoRequest('10.0.0.1', 9, 1, new Uint8Array(56)), 'sent', 'B learned A from its request');
  assert.equal(repliesB.length, 1);
  assert.equal(repliesB[0]!.bytes, 64);
  assert.equal(a.stack.sendEchoRequest('10.0.0.2', 7, 2, new Uint8Array(0)), 'sent');
  assert.equal(repliesA.length, 2);
  assert.equal(a.stack.counters.rxDropped + b.stack.counters.rxDropped, 0);
});

test('UDP datagrams arrive with their payload, source and ports', () => {
  const { a, b } = twoStacks();
  const rx = b.stack.udpBind(5000);
  const tx = a.stack.udpBind();
  assert.ok(tx.port >= 32768 && tx.port <= 60999);
  const payloads = [new Uint8Array(0), Uint8Array.of(0xff), new Uint8Array(a.stack.maxUdpPayload).map((_, i) => i * 7)];
  for (const p of payloads) tx.send('10.0.0.2', 5000, p);
  for (const p of payloads) {
    const d = rx.recv();
    assert.ok(d !== undefined);
    assert.deepEqual([...d.payload], [...p]);
    assert.equal(d.srcPort, tx.port);
    assert.equal(formatIpv4(d.srcIp), '10.0.0.1');
  }
  assert.equal(rx.recv(), undefined);
  assert.equal(b.stack.counters.udpRx, 3);
});

test('sendCopies: datagrams built in one reused buffer arrive intact, also those that waited for ARP', () => {
  const { clock, bridge, a, b } = twoStacks({ sendCopies: true });
  const data = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff);
  const rx = b.stack.udpBind(5000);
  const tx = a.stack.udpBind();
  const sizes = [1472, 10, 700, 0];
  for (const n of sizes) tx.send('10.0.0.2', 5000, data(n));
  // 10.0.0.3 does not exist yet: these wait in ARP's pending queue (three at most).
  const late = [20, 1400, 900];
  for (const n of late) tx.send('10.0.0.3', 5000, data(n));
  tx.send('10.0.0.2', 5000, data(333)); // reuses the buffer while the others wait
  const c = attachStack(bridge, 'vif3.0', { mac: '00:16:3e:00:00:03', address: '10.0.0.3', prefix: 24, clock: clock.now });
  const rc = c.stack.udpBind(5000);
  clock.advance(1000);
  a.stack.tick(); // ARP retransmits, 10.0.0.3 answers, the queue goes out
  const drain = (s: typeof rx) => {
    const out: number[][] = [];
    for (let d = s.recv(); d !== undefined; d = s.recv()) out.push([...d.payload]);
    return out;
  };
  assert.deepEqual(drain(rx), [...sizes, 333].map((n) => [...data(n)]));
  assert.deepEqual(drain(rc), late.map((n) => [...data(n)]));
  assert.equal(b.stack.counters.udpBadChecksum + c.stack.counters.udpBadChecksum, 0);
});

test('UDP with checksum offload end to end: blank checksums are trusted, or filled by the bridge', () => {
  const { a, b } = twoStacks({ txChecksumOffload: true });
  const rx = b.stack.udpBind(5000);
  a.stack.udpBind(6000).send('10.0.0.2', 5000, Uint8Array.of(1, 2, 3));
  assert.deepEqual([...rx.recv()!.payload], [1, 2, 3]);
  assert.equal(b.stack.counters.rxCsumSkipped, 1);
  // The same partial frame without the flag fails verification; filled in, it passes.
  const frames: Uint8Array[] = [];
  const c = new NetStack({ mac: '00:16:3e:00:00:03', address: '10.0.0.3', prefix: 24, clock: () => 0, txChecksumOffload: true, send: (f) => frames.push(f) });
  c.receive(fromHex('ffffffffffff00163e0000020806000108000604000100163e0000020a000002' + '0000000000000a000003'));
  c.udpBind(6000).send('10.0.0.2', 5000, Uint8Array.of(1, 2, 3));
  const partial = frames[1]!;
  b.stack.receive(partial.slice());
  assert.equal(b.stack.counters.udpBadChecksum, 1);
  const filledByHelper = partial.slice();
  assert.ok(fillL4Checksum(filledByHelper));
  b.stack.receive(filledByHelper);
  assert.deepEqual([...rx.recv()!.payload], [1, 2, 3]);
  // fillBlank: the stack completes the checksum in the caller's frame itself.
  const mine = partial.slice();
  b.stack.receive(mine, { csumBlank: true, fillBlank: true });
  assert.deepEqual([...rx.recv()!.payload], [1, 2, 3]);
  assert.deepEqual(mine, filledByHelper);
  assert.equal(b.stack.counters.rxCsumFilled, 1);
});

test('a datagram to a closed port gets ICMP port unreachable, within a budget', () => {
  const { a, b } = twoStacks();
  const tx = a.stack.udpBind(6000);
  for (let i = 0; i < 10; i++) tx.send('10.0.0.2', 9, Uint8Array.of(i));
  assert.equal(b.stack.counters.udpNoPort, 10);
  assert.equal(b.stack.counters.icmpUnreachTx, 6, 'a burst of 6, then one per second');
  assert.equal(a.stack.counters.icmpUnreachRx, 6);
});

test('the receive queue is bounded; overflow is counted', () => {
  const { a, b } = twoStacks();
  const rx = b.stack.udpBind(5000, { queueDatagrams: 4 });
  const tx = a.stack.udpBind(6000);
  for (let i = 0; i < 10; i++) tx.send('10.0.0.2', 5000, Uint8Array.of(i));
  assert.equal(rx.queued, 4);
  assert.equal(rx.drops, 6);
  assert.equal(b.stack.counters.udpQueueFull, 6);
  assert.deepEqual([rx.recv()!.payload[0], rx.recv()!.payload[0]], [0, 1]);
  rx.close();
  assert.equal(rx.isOpen, false);
  assert.throws(() => rx.send('10.0.0.1', 1, new Uint8Array(1)), (e) => errorCode(e) === 'EBADF');
  assert.equal(b.stack.udpBind(5000).port, 5000, 'the port is free again');
});

test('socket and send errors are operational errors', () => {
  const { a } = twoStacks();
  a.stack.udpBind(5000);
  assert.throws(() => a.stack.udpBind(5000), (e) => errorCode(e) === 'EADDRINUSE');
  assert.throws(() => a.stack.udpBind(70000), (e) => errorCode(e) === 'EINVAL');
  const s = a.stack.udpBind();
  assert.throws(() => s.send('10.0.0.2', 1, new Uint8Array(1473)), (e) => errorCode(e) === 'EMSGSIZE');
  assert.throws(() => s.send('10.0.0.2', 0, new Uint8Array(1)), (e) => errorCode(e) === 'EINVAL');
  assert.throws(() => s.send('10.0.0.300', 1, new Uint8Array(1)), (e) => errorCode(e) === 'EINVAL');
  assert.equal(s.send('192.168.1.1', 1, new Uint8Array(1)), 'no-route', 'off-link without a gateway');
  assert.equal(a.stack.counters.ipNoRoute, 1);
  a.stack.onEchoReply(1, () => {});
  assert.throws(() => a.stack.onEchoReply(1, () => {}), (e) => errorCode(e) === 'EADDRINUSE');
});

test('off-link traffic goes to the gateway MAC', () => {
  const clock = new FakeClock();
  const sent: Uint8Array[] = [];
  const s = new NetStack({ mac: '00:16:3e:00:00:01', address: '10.0.0.1', prefix: 24, gateway: '10.0.0.254', clock: clock.now, send: (f) => sent.push(f) });
  assert.equal(s.sendEchoRequest('8.8.8.8', 1, 1, new Uint8Array(0)), 'queued');
  assert.equal(sent[0]![12], 0x08);
  assert.equal(sent[0]![13], 0x06);
  assert.equal(formatIpv4(parseIpv4('10.0.0.254')), '10.0.0.254');
  assert.deepEqual([...sent[0]!.subarray(38, 42)], [10, 0, 0, 254], 'ARP asks for the gateway');
});

test('ARP retries, then gives up and drops the queued packets; the pending queue is bounded', () => {
  const clock = new FakeClock();
  const sent: Uint8Array[] = [];
  const s = new NetStack({ mac: '00:16:3e:00:00:01', address: '10.0.0.1', prefix: 24, clock: clock.now, send: (f) => sent.push(f) });
  const unreachable: [number, number][] = [];
  s.onHostUnreachable = (ip, n) => unreachable.push([ip, n]);
  for (let i = 0; i < 5; i++) assert.equal(s.sendEchoRequest('10.0.0.9', 1, i, new Uint8Array(0)), 'queued');
  assert.equal(s.counters.arpDrops, 2, 'three packets wait; the two oldest were dropped');
  assert.equal(s.nextTimer(), 1000);
  for (let t = 0; t < 3; t++) {
    clock.advance(1000);
    s.tick();
  }
  assert.equal(s.counters.arpRequestsTx, 3, 'mcast_solicit = 3 requests, 1 s apart');
  assert.deepEqual(unreachable, [[0x0a000009, 3]]);
  assert.equal(s.counters.arpDrops, 5);
  assert.equal(s.arp.size, 0);
  assert.equal(s.nextTimer(), undefined);
});

test('a stale ARP entry is still used while it is re-probed, and confirmed again by the reply', () => {
  const { a, clock } = twoStacks();
  const got: number[] = [];
  a.stack.onEchoReply(1, (r) => got.push(r.seq));
  a.stack.sendEchoRequest('10.0.0.2', 1, 1, new Uint8Array(0));
  clock.advance(31_000);
  assert.equal(a.stack.sendEchoRequest('10.0.0.2', 1, 2, new Uint8Array(0)), 'sent');
  assert.equal(a.stack.counters.arpRequestsTx, 2, 'stale: re-probed');
  assert.deepEqual(got, [1, 2]);
  assert.equal(a.stack.nextTimer(), undefined, 'the probe was answered');
});

test('the ARP table is bounded and evicts the least recently confirmed entry', () => {
  const sent: Uint8Array[] = [];
  const clock = new FakeClock();
  const s = new NetStack({ mac: '00:16:3e:00:00:01', address: '10.0.0.1', prefix: 16, clock: clock.now, send: (f) => sent.push(f), arp: { maxEntries: 4 } });
  for (let i = 0; i < 6; i++) {
    clock.advance(1);
    const f = fromHex(`ffffffffffff00163e0001${(i + 16).toString(16)}0806000108000604000100163e0001${(i + 16).toString(16)}0a0001${(i + 16).toString(16)}0000000000000a000001`);
    s.receive(f);
  }
  assert.equal(s.arp.size, 4);
  assert.deepEqual(s.arp.list().map((e) => e.ip & 0xff).sort((x, y) => x - y), [0x12, 0x13, 0x14, 0x15]);
});

test('ARP: requests for other addresses teach nothing new; a conflict is refused', () => {
  const { s, sent } = (() => {
    const sent: Uint8Array[] = [];
    const s = new NetStack({ mac: '00:16:3e:00:00:01', address: '10.0.0.1', prefix: 24, clock: () => 0, send: (f) => sent.push(f) });
    return { s, sent };
  })();
  s.receive(fromHex('ffffffffffff00163e0000020806000108000604000100163e0000020a0000020000000000000a000003'));
  assert.equal(s.arp.size, 0, 'not the target, not in the table: no entry (RFC 826)');
  assert.equal(sent.length, 0);
  s.receive(fromHex('ffffffffffff00163e0000020806000108000604000100163e0000020a0000010000000000000a000003'));
  assert.equal(s.counters.arpConflict, 1);
});

test('broadcast echo is ignored by default; subnet broadcast UDP is delivered', () => {
  const { a, b } = twoStacks();
  const rx = b.stack.udpBind(5000);
  a.stack.sendEchoRequest('10.0.0.255', 1, 1, new Uint8Array(0));
  assert.equal(b.stack.counters.icmpEchoIgnored, 1);
  a.stack.udpBind(6000).send('10.0.0.255', 5000, Uint8Array.of(42));
  assert.equal(rx.recv()?.payload[0], 42);
  a.stack.udpBind(6001).send('255.255.255.255', 7, Uint8Array.of(42));
  assert.equal(b.stack.counters.icmpUnreachTx, 0, 'never an ICMP error for a broadcast');
});

test('pinging our own address loops back', () => {
  const { a } = twoStacks();
  const got: number[] = [];
  a.stack.onEchoReply(3, (r) => got.push(r.seq));
  assert.equal(a.stack.sendEchoRequest('10.0.0.1', 3, 5, new Uint8Array(8)), 'sent');
  assert.deepEqual(got, [5]);
});

test('the stack refuses a multicast MAC or an absurd MTU', () => {
  const base = { address: '10.0.0.1', prefix: 24, clock: () => 0, send: () => {} };
  assert.throws(() => new NetStack({ ...base, mac: '01:00:5e:00:00:01' }), (e) => errorCode(e) === 'EINVAL');
  assert.throws(() => new NetStack({ ...base, mac: '00:16:3e:00:00:01', mtu: 20 }), (e) => errorCode(e) === 'EINVAL');
  assert.throws(() => new NetStack({ ...base, mac: '00:16:3e:00:00:01', prefix: 33 }), (e) => errorCode(e) === 'EINVAL');
  assert.throws(() => new NetStack({ ...base, mac: '00:16:3e:00:00:01', ttl: 0 }), (e) => errorCode(e) === 'EINVAL');
});

test('transient frames: a queued datagram keeps its bytes after the driver reuses the buffer it came in', () => {
  const { a, b } = twoStacks();
  const buf = new Uint8Array(2048); // the driver's reused buffer
  const orig = b.stack.receive.bind(b.stack);
  b.stack.receive = (f: Uint8Array) => {
    const frame = buf.subarray(0, f.length);
    frame.set(f);
    orig(frame, { transient: true });
    buf.fill(0xee); // reused for the next frame
  };
  const reader = b.stack.udpBind(5000);
  const seen: number[][] = [];
  reader.onReadable = () => {
    for (let d = reader.recv(); d !== undefined; d = reader.recv()) seen.push([...d.payload]);
  };
  const lazy = b.stack.udpBind(5001); // leaves its datagrams queued
  const tx = a.stack.udpBind();
  tx.send('10.0.0.2', 5000, Uint8Array.of(1, 2, 3));
  tx.send('10.0.0.2', 5001, Uint8Array.of(4, 5, 6));
  assert.deepEqual(seen, [[1, 2, 3]]);
  const l = lazy.recv()!;
  assert.deepEqual([...l.payload], [4, 5, 6], 'copied before the buffer was reused');
  assert.notEqual(l.payload.buffer, buf.buffer);
});

test('transient frames in one reused view (netfront rxScratch): each datagram of a same-sized stream reads its own bytes, queued ones keep theirs', () => {
  const { a, b } = twoStacks();
  const buf = new Uint8Array(2048);
  let view = buf.subarray(0, 0);
  const orig = b.stack.receive.bind(b.stack);
  b.stack.receive = (f: Uint8Array) => {
    if (view.length !== f.length) view = buf.subarray(0, f.length); // one view per size, as ScratchFrame
    view.set(f);
    orig(view, { transient: true });
    buf.fill(0xee);
  };
  const reader = b.stack.udpBind(5000);
  const seen: number[][] = [];
  reader.onReadable = () => {
    for (let d = reader.recv(); d !== undefined; d = reader.recv()) seen.push([...d.payload]);
  };
  const lazy = b.stack.udpBind(5001);
  const plain = b.stack.udpBind(5002);
  const tx = a.stack.udpBind();
  for (let i = 0; i < 3; i++) tx.send('10.0.0.2', 5000, Uint8Array.of(i, i + 1, i + 2, i + 3));
  for (let i = 0; i < 2; i++) tx.send('10.0.0.2', 5001, Uint8Array.of(10 + i, 11, 12, 13));
  tx.send('10.0.0.2', 5002, Uint8Array.of(20, 21, 22, 23));
  assert.deepEqual(seen, [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5]]);
  assert.deepEqual([...lazy.recv()!.payload], [10, 11, 12, 13]);
  assert.deepEqual([...lazy.recv()!.payload], [11, 11, 12, 13]);
  assert.deepEqual([...plain.recv()!.payload], [20, 21, 22, 23]);
});

test('onDatagram: each datagram is handed over as it arrives (a span of the transient frame), with its source; nothing is queued', () => {
  const { a, b } = twoStacks();
  const buf = new Uint8Array(2048);
  const orig = b.stack.receive.bind(b.stack);
  b.stack.receive = (f: Uint8Array) => {
    const frame = buf.subarray(0, f.length);
    frame.set(f);
    orig(frame, { transient: true });
    buf.fill(0xee);
  };
  const got: [number[], string, number, boolean][] = [];
  const s = b.stack.udpBind(5000, { onDatagram: (f, start, end, ip, port) => got.push([[...f.subarray(start, end)], formatIpv4(ip), port, f.buffer === buf.buffer]) });
  const tx = a.stack.udpBind(4444);
  tx.send('10.0.0.2', 5000, Uint8Array.of(1, 2, 3));
  tx.send('10.0.0.2', 5000, new Uint8Array(0));
  tx.send('10.0.0.2', 5000, Uint8Array.of(9));
  assert.deepEqual(got, [[[1, 2, 3], '10.0.0.1', 4444, true], [[], '10.0.0.1', 4444, true], [[9], '10.0.0.1', 4444, true]]);
  assert.equal(s.recv(), undefined);
  assert.equal(b.stack.counters.udpRx, 3);
  s.close();
  tx.send('10.0.0.2', 5000, Uint8Array.of(4));
  assert.equal(got.length, 3, 'a closed socket gets nothing');
  assert.equal(b.stack.counters.udpNoPort, 1);
});
