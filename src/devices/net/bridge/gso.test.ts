import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_GSO_SEGMENTS, TCP_CWR, TCP_FIN, TCP_PSH, segmentGso } from './gso.js';
import type { GsoType } from './port.js';
import { be16, be32, onesComplementOk, pseudoHeader, put16, superFrame, type Spec } from './gso-test-support.js';

const specArb = fc.record({
  v6: fc.boolean(),
  ipOptions: fc.integer({ min: 0, max: 3 }),
  tcpOptions: fc.integer({ min: 0, max: 10 }),
  seq: fc.oneof(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0xffff0000, max: 0xffffffff })),
  ipId: fc.nat({ max: 0xffff }),
  flags: fc.nat({ max: 0xff }),
  payload: fc.uint8Array({ minLength: 0, maxLength: 12000 }),
});

function checkSegment(s: Spec, orig: Uint8Array, seg: Uint8Array, i: number, n: number, mss: number): number {
  const ipLen = s.v6 ? 40 : 20 + s.ipOptions * 4;
  const t = 14 + ipLen;
  const hdr = t + 20 + s.tcpOptions * 4;
  const len = seg.length - hdr;
  assert.ok(len <= mss && (len === mss || i === n - 1), `segment ${i}/${n} carries ${len} of mss ${mss}`);
  if (s.v6) {
    assert.equal(be16(seg, 18), seg.length - 54, 'IPv6 payload length');
  } else {
    assert.equal(be16(seg, 16), seg.length - 14, 'IPv4 total length');
    assert.equal(be16(seg, 18), (s.ipId + i) & 0xffff, 'IPv4 id increments per segment');
    assert.ok(onesComplementOk(seg.subarray(14, t)), 'IPv4 header checksum');
  }
  assert.ok(onesComplementOk([...pseudoHeader(seg, s.v6, seg.length - t), ...seg.subarray(t)]), `TCP checksum of segment ${i}`);
  const flags = seg[t + 13]!;
  const keep = ~(TCP_FIN | TCP_PSH | TCP_CWR) & 0xff;
  assert.equal(flags & keep, s.flags & keep, 'other flags unchanged');
  assert.equal(flags & (TCP_FIN | TCP_PSH), i === n - 1 ? s.flags & (TCP_FIN | TCP_PSH) : 0, 'FIN/PSH only on the last');
  assert.equal(flags & TCP_CWR, i === 0 ? s.flags & TCP_CWR : 0, 'CWR only on the first');
  // Everything but the per-segment fields is the super-frame's header.
  const a = seg.slice(0, hdr);
  const b = orig.slice(0, hdr);
  for (const at of s.v6 ? [18, 19] : [16, 17, 18, 19, 24, 25]) a[at] = b[at] = 0;
  for (const at of [4, 5, 6, 7, 13, 16, 17]) a[t + at] = b[t + at] = 0;
  assert.deepEqual(a, b);
  return len;
}

test('GSO segmentation: segments reassemble to the payload; every checksum, length, id, seq and flag is right', () => {
  fc.assert(
    fc.property(specArb, fc.integer({ min: 1, max: 2000 }), (s, mss) => {
      fc.pre(Math.ceil(s.payload.length / mss) <= MAX_GSO_SEGMENTS);
      const orig = superFrame(s);
      const segs = segmentGso(orig, { type: s.v6 ? 'tcpv6' : 'tcpv4', size: mss })!;
      assert.ok(segs !== undefined);
      assert.equal(segs.length, Math.max(1, Math.ceil(s.payload.length / mss)));
      const hdr = 14 + (s.v6 ? 40 : 20 + s.ipOptions * 4) + 20 + s.tcpOptions * 4;
      const t = hdr - 20 - s.tcpOptions * 4;
      const parts: Uint8Array[] = [];
      let offset = 0;
      segs.forEach((seg, i) => {
        assert.equal(be32(seg, t + 4), (s.seq + offset) >>> 0, `seq of segment ${i} (u32 wrap)`);
        offset += checkSegment(s, orig, seg, i, segs.length, mss);
        parts.push(seg.subarray(hdr));
      });
      assert.deepEqual(Buffer.concat(parts), Buffer.from(s.payload));
    }),
    { numRuns: 150 },
  );
});

test('GSO segmentation: the super-frame is not modified', () => {
  const s: Spec = { v6: false, ipOptions: 0, tcpOptions: 3, seq: 5, ipId: 9, flags: TCP_FIN | TCP_PSH | 0x10, payload: new Uint8Array(5000).fill(7) };
  const f = superFrame(s);
  const copy = f.slice();
  assert.equal(segmentGso(f, { type: 'tcpv4', size: 1448 })!.length, 4);
  assert.deepEqual(f, copy);
});

test('GSO segmentation refuses what is not a TCP super-frame of its type', () => {
  const base: Spec = { v6: false, ipOptions: 0, tcpOptions: 0, seq: 1, ipId: 1, flags: 0x10, payload: new Uint8Array(3000) };
  const v4 = superFrame(base);
  const v6 = superFrame({ ...base, v6: true });
  const cases: [string, Uint8Array, GsoType, number][] = [
    ['IPv4 frame as tcpv6', v4, 'tcpv6', 1448],
    ['IPv6 frame as tcpv4', v6, 'tcpv4', 1448],
    ['size 0', v4, 'tcpv4', 0],
    ['fractional size', v4, 'tcpv4', 1.5],
    ['too many segments', v4, 'tcpv4', 1],
    ['runt', v4.subarray(0, 30), 'tcpv4', 1448],
  ];
  const udp = v4.slice();
  udp[23] = 17;
  cases.push(['UDP', udp, 'tcpv4', 1448]);
  const frag = v4.slice();
  frag[20] = 0x20; // MF
  cases.push(['IPv4 fragment', frag, 'tcpv4', 1448]);
  const long = v4.slice();
  put16(long, 16, v4.length); // total length beyond the frame
  cases.push(['IPv4 length beyond the frame', long, 'tcpv4', 1448]);
  const doff = v4.slice();
  doff[46] = 0x40; // TCP data offset 4 words < 20 bytes
  cases.push(['TCP data offset < 5', doff, 'tcpv4', 1448]);
  const v6long = v6.slice();
  put16(v6long, 18, v6.length);
  cases.push(['IPv6 payload length beyond the frame', v6long, 'tcpv6', 1448]);
  for (const [name, frame, type, size] of cases) assert.equal(segmentGso(frame, { type, size }), undefined, name);
  assert.equal(segmentGso(v4, { type: 'tcpv4', size: 1448 })!.length, 3, 'the base case is accepted');
});

test('GSO segmentation: trailing Ethernet padding is not payload', () => {
  const s: Spec = { v6: false, ipOptions: 0, tcpOptions: 0, seq: 0, ipId: 0, flags: 0x18, payload: Uint8Array.of(1, 2, 3) };
  const f = superFrame(s);
  const padded = new Uint8Array(f.length + 10);
  padded.set(f);
  const segs = segmentGso(padded, { type: 'tcpv4', size: 1448 })!;
  assert.equal(segs.length, 1);
  assert.deepEqual([...segs[0]!.subarray(54)], [1, 2, 3]);
});
