import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ping, formatRtt } from './ping.js';
import { twoStacks, type FakeClock } from './test-support.js';
import type { NetStack, RxInfo } from './stack.js';

test('reply times are formatted as iputils formats them', () => {
  assert.deepEqual(
    [0.045, 0.9994, 1.234, 9.999, 12.34, 99.9, 123.4].map(formatRtt),
    ['0.045', '0.999', '1.23', '10.0', '12.3', '99.9', '123'],
  );
});

/** Make `stack` see echo requests after `delay(seq)` ms; a negative delay loses it, a list sends it twice. */
function delayEchoRequests(stack: NetStack, clock: FakeClock, delay: (seq: number) => number | number[]): void {
  const orig = stack.receive.bind(stack);
  stack.receive = (f: Uint8Array, info?: RxInfo) => {
    const isEcho = f.length > 41 && f[23] === 1 && f[34] === 8;
    if (!isEcho) return orig(f, info);
    const d = delay((f[40]! << 8) | f[41]!);
    for (const ms of Array.isArray(d) ? d : [d]) {
      if (ms < 0) continue;
      clock.advance(ms);
      orig(f, info);
    }
  };
}

function run(ping: Ping, stack: NetStack, clock: FakeClock): void {
  for (let guard = 0; guard < 1000 && !ping.done; guard++) {
    const t = [ping.poll(), stack.nextTimer()].filter((x): x is number => x !== undefined);
    if (ping.done) break;
    clock.nowMs = Math.max(clock.nowMs, Math.min(...t));
    stack.tick();
  }
  assert.ok(ping.done);
}

test('ping 3 times: output and summary like iputils', () => {
  const { a, b, clock } = twoStacks();
  delayEchoRequests(b.stack, clock, (seq) => [0.5, 1.5, 1.0][seq - 1]!);
  const ping = new Ping(a.stack, { dst: '10.0.0.2', count: 3, id: 77 });
  run(ping, a.stack, clock);
  assert.deepEqual(ping.lines, [
    'PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.',
    '64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.500 ms',
    '64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=1.50 ms',
    '64 bytes from 10.0.0.2: icmp_seq=3 ttl=64 time=1.00 ms',
    '',
    '--- 10.0.0.2 ping statistics ---',
    '3 packets transmitted, 3 received, 0% packet loss, time 2000ms',
    // mdev = sqrt((0.25 + 2.25 + 1) / 3 - 1) = 0.408
    'rtt min/avg/max/mdev = 0.500/1.000/1.500/0.408 ms',
  ]);
  const r = ping.result();
  assert.equal(r.received, 3);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
  assert.equal(a.stack.echoHandlers.size, 0, 'the reply handler is gone once finished');
});

test('ping with a lost request, a duplicate reply and a timeout', () => {
  const { a, b, clock } = twoStacks();
  delayEchoRequests(b.stack, clock, (seq) => (seq === 2 ? -1 : seq === 3 ? [0.2, 0.3] : 0.1));
  const ping = new Ping(a.stack, { dst: '10.0.0.2', count: 3, timeoutMs: 2000, id: 5, size: 8 });
  run(ping, a.stack, clock);
  assert.deepEqual(ping.lines.slice(1, 4), [
    '16 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.100 ms',
    '16 bytes from 10.0.0.2: icmp_seq=3 ttl=64 time=0.200 ms',
    '16 bytes from 10.0.0.2: icmp_seq=3 ttl=64 time=0.500 ms (DUP!)',
  ]);
  assert.equal(ping.lines[6], '3 packets transmitted, 2 received, +1 duplicates, 33.3333% packet loss, time 4000ms');
  assert.deepEqual([ping.result().duplicates, ping.result().lossPercent.toFixed(2)], [1, '33.33']);
});

test('ping an address nobody has: Destination Host Unreachable, 100% loss', () => {
  const { a, clock } = twoStacks();
  const ping = new Ping(a.stack, { dst: '10.0.0.9', count: 2, timeoutMs: 5000, id: 1 });
  run(ping, a.stack, clock);
  assert.deepEqual(ping.lines.filter((l) => l.startsWith('From')), [
    'From 10.0.0.1 icmp_seq=1 Destination Host Unreachable',
    'From 10.0.0.1 icmp_seq=2 Destination Host Unreachable',
  ]);
  assert.match(ping.lines.at(-1)!, /^2 packets transmitted, 0 received, \+2 errors, 100% packet loss, time \d+ms$/);
  assert.equal(ping.result().rtt, undefined);
  assert.equal(a.stack.onHostUnreachable, undefined, 'the hook is restored');
});

test('adaptive ping (-A): the next request leaves when the reply arrives; a lost one waits out the interval', () => {
  const { a, b, clock } = twoStacks();
  delayEchoRequests(b.stack, clock, (seq) => [0.5, 1, -1, 0.25][seq - 1]!);
  // When each request reaches b, before its delay: when a sent it.
  const sentAt: number[] = [];
  const delayed = b.stack.receive.bind(b.stack);
  b.stack.receive = (f: Uint8Array, info?: RxInfo) => {
    if (f.length > 41 && f[23] === 1 && f[34] === 8) sentAt.push(clock.nowMs);
    delayed(f, info);
  };
  const ping = new Ping(a.stack, { dst: '10.0.0.2', count: 4, intervalMs: 1000, timeoutMs: 100, id: 9, adaptive: true });
  run(ping, a.stack, clock);
  // (the first leaves once ARP resolved): then on each reply, and a full interval after the lost one
  assert.deepEqual(sentAt.map((t) => t - sentAt[0]!), [0, 0.5, 1.5, 1001.5]);
  assert.deepEqual(ping.lines.slice(1, 4), [
    '64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.500 ms',
    '64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=1.00 ms',
    '64 bytes from 10.0.0.2: icmp_seq=4 ttl=64 time=0.250 ms',
  ]);
  assert.deepEqual([ping.result().transmitted, ping.result().received], [4, 3]);
});
