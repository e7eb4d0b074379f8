/**
 * Hostile input: random bytes, truncated and bit-flipped valid frames, fed to the guest
 * stack and to the bridge. Nothing throws, every frame is counted, and the stack still
 * answers a ping afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NetStack } from './stack.js';
import { FakeClock, twoStacks } from './test-support.js';
import { Bridge } from '../../devices/net/bridge/bridge.js';
import type { FrameInfo } from '../../devices/net/bridge/port.js';

/** Valid frames a peer (10.0.0.2, 00:16:3e:00:00:02) could send to 10.0.0.1, captured from real stacks. */
function seedFrames(): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const { a, b } = twoStacks();
  b.port.input = ((orig) => (f: Uint8Array, info?: FrameInfo) => (frames.push(f.slice()), orig.call(b.port, f, info)))(b.port.input);
  b.stack.sendEchoRequest('10.0.0.1', 1, 1, new Uint8Array(16));
  b.stack.udpBind(4000).send('10.0.0.1', 5000, new Uint8Array(40).fill(7));
  b.stack.udpBind(4001).send('10.0.0.255', 5000, new Uint8Array(3));
  a.stack.sendEchoRequest('10.0.0.2', 2, 1, new Uint8Array(4)); // B answers: an echo reply
  return frames;
}

const seeds = seedFrames();

const hostileFrame = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 120 }),
  fc.record({ i: fc.nat(seeds.length - 1), cut: fc.nat(200) }).map(({ i, cut }) => seeds[i]!.slice(0, cut)),
  fc.record({ i: fc.nat(seeds.length - 1), at: fc.nat(200), v: fc.integer({ min: 0, max: 255 }) }).map(({ i, at, v }) => {
    const f = seeds[i]!.slice();
    f[at % f.length] = v;
    return f;
  }),
  fc.record({ i: fc.nat(seeds.length - 1), extra: fc.uint8Array({ maxLength: 40 }) }).map(({ i, extra }) => {
    const f = new Uint8Array(seeds[i]!.length + extra.length);
    f.set(seeds[i]!);
    f.set(extra, seeds[i]!.length);
    return f;
  }),
);

const rxInfo = fc.record({ csumBlank: fc.boolean(), dataValidated: fc.boolean(), fillBlank: fc.boolean() });

test('the guest stack survives hostile frames, counts each one, and still answers pings', () => {
  assert.ok(seeds.length >= 5, `seeds: ${seeds.length}`);
  fc.assert(
    fc.property(fc.array(fc.tuple(hostileFrame, rxInfo), { maxLength: 40 }), (inputs) => {
      const clock = new FakeClock();
      const out: Uint8Array[] = [];
      const s = new NetStack({ mac: '00:16:3e:00:00:01', address: '10.0.0.1', prefix: 24, clock: clock.now, send: (f) => out.push(f) });
      s.udpBind(5000, { queueDatagrams: 8 });
      for (const [frame, info] of inputs) {
        const before = { ...s.counters };
        s.receive(frame, info);
        clock.advance(100);
        s.tick();
        assert.equal(s.counters.rxFrames, before.rxFrames + 1);
      }
      assert.ok(s.counters.rxDropped <= inputs.length);
      // Still alive: a well-formed echo request (seeds[1], after its ARP) gets its reply.
      const sentBefore = s.counters.icmpEchoRepliesTx;
      s.receive(seeds[0]!);
      s.receive(seeds[1]!);
      assert.equal(s.counters.icmpEchoRepliesTx, sentBefore + 1);
    }),
    { numRuns: 300 },
  );
});

test('garbage is dropped with a counter: runts, bad checksums, fragments', () => {
  const s = new NetStack({ mac: '00:16:3e:00:00:01', address: '10.0.0.1', prefix: 24, clock: () => 0, send: () => {} });
  s.receive(new Uint8Array(5));
  const echo = seeds[1]!;
  const badIp = echo.slice();
  badIp[14 + 8] = badIp[14 + 8]! ^ 1; // TTL changed, header checksum now wrong
  s.receive(badIp);
  const frag = echo.slice();
  frag[14 + 6] = frag[14 + 6]! | 0x20; // MF
  frag[14 + 10] = 0;
  frag[14 + 11] = 0;
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += (frag[i]! << 8) | frag[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  frag[14 + 10] = (~sum >> 8) & 0xff;
  frag[14 + 11] = ~sum & 0xff;
  s.receive(frag);
  const badIcmp = echo.slice();
  badIcmp[echo.length - 1] = badIcmp[echo.length - 1]! ^ 0xff;
  s.receive(badIcmp);
  s.receive(badIcmp, { dataValidated: true });
  const c = s.counters;
  assert.deepEqual([c.ethRunt, c.ipBadChecksum, c.ipFragments, c.icmpBadChecksum, c.icmpEchoRequestsRx], [1, 1, 1, 1, 1]);
  assert.equal(c.rxDropped, 4);
});

test('the bridge survives hostile frames from every port; counters add up and queues stay bounded', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(3), hostileFrame, fc.boolean()), { maxLength: 60 }),
      (inputs) => {
        const clock = new FakeClock();
        const br = new Bridge('xenbr0', { clock: clock.now, fdbMax: 8 });
        const ports = [0, 1, 2, 3].map((i) => br.addPort(`vif${i}.0`, { deliver: () => i !== 3 }, { queueFrames: 4 }));
        const fed = [0, 0, 0, 0];
        for (const [i, frame, gso] of inputs) {
          const info: FrameInfo = gso ? { csumBlank: true, dataValidated: true, gso: { type: 'tcpv4', size: 1448 } } : { csumBlank: false, dataValidated: false };
          ports[i]!.input(frame, info);
          fed[i]!++;
          clock.advance(1000);
        }
        for (let i = 0; i < 4; i++) {
          const s = ports[i]!.stats();
          assert.equal(s.rxPackets + s.rxErrors + s.rxDropped, fed[i]);
          assert.ok(ports[i]!.queueLength <= 4);
        }
        assert.ok(br.fdbStats().entries <= 8);
      },
    ),
    { numRuns: 300 },
  );
});
