/**
 * Golden bytes: frames the stack sends, checked byte for byte against values computed by
 * hand (the arithmetic is in the comments), and the checksum against an independent
 * reference that folds after every addition.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NetStack } from './stack.js';
import { FakeClock, fromHex, hex } from './test-support.js';
import { internetChecksum } from '../../devices/net/bridge/checksum.js';
import { parseIpv4Header } from './ipv4.js';

/** RFC 1071 the slow way: 16-bit words, end-around carry folded at every step. */
function referenceChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    const word = bytes[i]! * 256 + (i + 1 < bytes.length ? bytes[i + 1]! : 0);
    sum += word;
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return 0xffff - sum;
}

test('checksum agrees with the reference on random data, and a filled-in checksum verifies', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => {
      const sum = internetChecksum(bytes, 0, bytes.length);
      assert.equal(sum, referenceChecksum(bytes) & 0xffff);
      if (bytes.length >= 2 && bytes.length % 2 === 0) {
        const copy = bytes.slice();
        copy[0] = 0;
        copy[1] = 0;
        const c = internetChecksum(copy, 0, copy.length);
        copy[0] = c >> 8;
        copy[1] = c & 0xff;
        assert.equal(internetChecksum(copy, 0, copy.length), 0);
      }
    }),
    { numRuns: 300 },
  );
});

test('the IPv4 header checksum of a published example (0xb861)', () => {
  // The widely quoted example header 192.168.0.1 -> 192.168.0.199, UDP, total length 0x73.
  const h = fromHex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
  assert.equal(internetChecksum(h, 0, 20), 0, 'a correct header sums to zero');
  const zeroed = h.slice();
  zeroed[10] = 0;
  zeroed[11] = 0;
  assert.equal(internetChecksum(zeroed, 0, 20), 0xb861);
  const padded = new Uint8Array(20 + 0x73 - 20);
  padded.set(h);
  const p = parseIpv4Header(padded, 0, padded.length);
  assert.ok(p.ok && p.header.protocol === 17 && p.header.totalLength === 0x73);
  assert.deepEqual(parseIpv4Header(zeroed, 0, 20), { ok: false, reason: 'length' });
});

function stack() {
  const sent: Uint8Array[] = [];
  const clock = new FakeClock();
  const s = new NetStack({ mac: '00:16:3e:00:00:01', address: '10.0.0.1', prefix: 24, clock: clock.now, send: (f) => sent.push(f) });
  return { s, sent, clock };
}

const ARP_REQUEST_FROM_PEER = fromHex(
  'ffffffffffff 00163e000002 0806' + // Ethernet: broadcast, from the peer, ARP
    '0001 0800 06 04 0001' + // Ethernet/IPv4, request
    '00163e000002 0a000002' + // sender 00:16:3e:00:00:02 10.0.0.2
    '000000000000 0a000001', // target ? 10.0.0.1
);

test('golden ARP request', () => {
  const { s, sent } = stack();
  assert.equal(s.sendEchoRequest('10.0.0.2', 1, 1, new Uint8Array(0)), 'queued');
  assert.equal(sent.length, 1);
  assert.equal(
    hex(sent[0]!),
    'ffffffffffff00163e0000010806' + '0001080006040001' + '00163e0000010a000001' + '0000000000000a000002',
  );
});

test('golden ARP reply to a request for our address, and the sender is learned', () => {
  const { s, sent } = stack();
  s.receive(ARP_REQUEST_FROM_PEER);
  assert.equal(sent.length, 1);
  assert.equal(
    hex(sent[0]!),
    '00163e000002' + '00163e000001' + '0806' + '0001080006040002' + '00163e0000010a000001' + '00163e0000020a000002',
  );
  assert.equal(s.arp.lookup(0x0a000002)?.join(','), '0,22,62,0,0,2');
});

test('golden ICMP echo request', () => {
  const { s, sent } = stack();
  s.receive(ARP_REQUEST_FROM_PEER);
  s.sendEchoRequest('10.0.0.2', 0x1234, 1, new TextEncoder().encode('abcd'));
  // IP header sum: 4500+0020+0001+4000+4001+0a00+0001+0a00+0002 = d925 -> checksum 26da.
  // ICMP sum: 0800+1234+0001+6162+6364 = defb -> checksum 2104.
  assert.equal(
    hex(sent[1]!),
    '00163e000002 00163e000001 0800'.replace(/ /g, '') +
      '45000020000140004001' + '26da' + '0a000001' + '0a000002' +
      '0800' + '2104' + '1234' + '0001' + '61626364',
  );
});

test('golden UDP datagram; its checksum is verified by the receiver', () => {
  const { s, sent } = stack();
  s.receive(ARP_REQUEST_FROM_PEER);
  const sock = s.udpBind(1234);
  assert.equal(sock.send('10.0.0.2', 5678, new TextEncoder().encode('hi')), 'sent');
  // IP: 4500+001e+0001+4000+4011+0a00+0001+0a00+0002 = d933 -> 26cc.
  // UDP: pseudo 0a00+0001+0a00+0002+0011+000a = 141e; + 04d2+162e+000a+6869 = 9791 -> 686e.
  const expected = '00163e00000200163e0000010800' + '4500001e000140004011' + '26cc' + '0a0000010a000002' + '04d2162e000a686e' + '6869';
  assert.equal(hex(sent[1]!), expected);
});

test('UDP with checksum offload leaves the partial pseudo-header sum and marks the frame', () => {
  const infos: { csumBlank: boolean; dataValidated: boolean }[] = [];
  const sent: Uint8Array[] = [];
  const s = new NetStack({
    mac: '00:16:3e:00:00:01', address: '10.0.0.1', prefix: 24, clock: () => 0, txChecksumOffload: true,
    send: (f, info) => (sent.push(f), infos.push(info)),
  });
  s.receive(ARP_REQUEST_FROM_PEER);
  s.udpBind(1234).send('10.0.0.2', 5678, new TextEncoder().encode('hi'));
  const f = sent[1]!;
  assert.equal((f[40]! << 8) | f[41]!, 0x141e, 'the folded pseudo-header sum, as Linux CHECKSUM_PARTIAL');
  assert.deepEqual(infos[1], { csumBlank: true, dataValidated: true });
});
