import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fillL4Checksum, foldSum, internetChecksum, onesSum } from './checksum.js';

/** RFC 1071 the slow way, folding at every step: an independent reference. */
function reference(bytes: number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += bytes[i]! * 256 + (bytes[i + 1] ?? 0);
    if (sum > 0xffff) sum -= 0xffff;
  }
  return 0xffff - sum;
}

function ipv4Frame(protocol: number, l4: number[], opts: { fragment?: boolean; lie?: number } = {}): Uint8Array {
  const total = 20 + l4.length + (opts.lie ?? 0);
  const ip = [0x45, 0, total >> 8, total & 0xff, 0, 1, opts.fragment ? 0x20 : 0x40, 0, 64, protocol, 0, 0, 192, 168, 1, 10, 192, 168, 1, 20];
  return Uint8Array.from([...Array(12).fill(2), 0x08, 0x00, ...ip, ...l4]);
}

function ipv4Pseudo(f: Uint8Array, protocol: number, len: number): number[] {
  return [...f.subarray(26, 34), 0, protocol, len >> 8, len & 0xff];
}

test('fill: UDP and TCP over IPv4 verify against an explicitly built pseudo-header', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.boolean(), (data, tcp) => {
      const hdr = tcp ? [0, 80, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0xde, 0xad, 0, 0] : [0x30, 0x39, 0, 53, 0, 8 + data.length, 0xbe, 0xef];
      const l4 = [...hdr, ...data];
      const proto = tcp ? 6 : 17;
      const f = ipv4Frame(proto, l4);
      assert.equal(fillL4Checksum(f), true);
      const field = 34 + (tcp ? 16 : 6);
      const got = (f[field]! << 8) | f[field + 1]!;
      const zeroed = [...f.subarray(34)];
      zeroed[field - 34] = 0;
      zeroed[field - 33] = 0;
      let want = reference([...ipv4Pseudo(f, proto, l4.length), ...zeroed]);
      if (want === 0 && !tcp) want = 0xffff;
      assert.equal(got, want);
    }),
    { numRuns: 200 },
  );
});

test('fill: a UDP checksum that computes to zero is sent as all ones (RFC 768)', () => {
  const l4 = [0x12, 0x34, 0x56, 0x78, 0, 10, 0, 0, 0, 0];
  const probe = ipv4Frame(17, l4);
  // Choose the 2 data bytes so that the folded sum is 0xffff, i.e. the checksum is 0.
  const s = foldSum(onesSum(probe, 34, probe.length, onesSum(probe, 26, 34) + 17 + 10));
  const w = 0xffff - s;
  l4[8] = w >> 8;
  l4[9] = w & 0xff;
  const f = ipv4Frame(17, l4);
  assert.equal(fillL4Checksum(f), true);
  assert.deepEqual([f[40], f[41]], [0xff, 0xff]);
});

test('fill: UDP over IPv6 verifies against an explicitly built pseudo-header', () => {
  const src = Array.from({ length: 16 }, (_, i) => 0x20 + i);
  const dst = Array.from({ length: 16 }, (_, i) => 0xf0 - i);
  const udp = [0x04, 0xd2, 0x16, 0x2e, 0, 12, 0, 0, 1, 2, 3, 4];
  const ip6 = [0x60, 0, 0, 0, 0, udp.length, 17, 64, ...src, ...dst];
  const f = Uint8Array.from([...Array(12).fill(2), 0x86, 0xdd, ...ip6, ...udp]);
  assert.equal(fillL4Checksum(f), true);
  const pseudo = [...src, ...dst, 0, 0, 0, udp.length, 0, 0, 0, 17];
  assert.equal((f[54 + 6]! << 8) | f[54 + 7]!, reference([...pseudo, ...udp]));
});

test('fill refuses what it cannot checksum, leaving the frame untouched', () => {
  const cases = [
    new Uint8Array(10),
    ipv4Frame(1, [8, 0, 0, 0, 0, 0, 0, 0]), // ICMP
    ipv4Frame(17, [0, 1, 0, 2, 0, 8, 0, 0], { fragment: true }),
    ipv4Frame(17, [0, 1, 0, 2, 0, 8, 0, 0], { lie: 1 }), // total length beyond the frame
    ipv4Frame(17, [0, 1, 0, 2]), // UDP header cut short
    ipv4Frame(6, [0, 1, 0, 2, 0, 0, 0, 0, 0, 0]), // TCP header cut short
    Uint8Array.from([...Array(12).fill(2), 0x08, 0x06, ...Array(28).fill(0)]), // ARP
  ];
  for (const f of cases) {
    const before = f.slice();
    assert.equal(fillL4Checksum(f), false);
    assert.deepEqual(f, before);
  }
});

test('internetChecksum of empty and odd-length data', () => {
  assert.equal(internetChecksum(new Uint8Array(0), 0, 0), 0xffff);
  assert.equal(internetChecksum(Uint8Array.of(0x01), 0, 1), 0xfeff, 'an odd byte is padded with zero');
  assert.equal(foldSum(0x2fffd), 0xffff);
});

test('internetChecksum: the word-at-a-time sum agrees with RFC 1071 at any buffer offset, start and length', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.nat(7), fc.nat(9), fc.nat(0xffff), (data, shift, start, initial) => {
      const backing = new Uint8Array(data.length + 16);
      const buf = backing.subarray(shift, shift + data.length + 8);
      buf.set(data, Math.min(start, 8));
      const from = Math.min(start, 8);
      const to = from + data.length;
      const bytes = [...buf.subarray(from, to)];
      const want = reference(initial === 0 ? bytes : [initial >> 8, initial & 0xff, ...bytes]);
      assert.equal(internetChecksum(buf, from, to, initial), want);
    }),
    { numRuns: 2000 },
  );
});
