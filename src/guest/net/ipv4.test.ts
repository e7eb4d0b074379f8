import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { internetChecksum } from '../../devices/net/bridge/checksum.js';
import { checkIpv4Header, writeIpv4Header } from './ipv4.js';

test('checkIpv4Header accepts exactly the headers whose internet checksum verifies (any options length)', () => {
  fc.assert(fc.property(fc.integer({ min: 5, max: 15 }), fc.uint8Array({ minLength: 60, maxLength: 60 }), fc.boolean(), (ihl, bytes, fix) => {
    const hl = ihl * 4;
    const h = bytes.slice(0, hl);
    h[0] = 0x40 | ihl;
    h[2] = 0;
    h[3] = hl; // total length: the header alone
    if (fix) {
      h[10] = 0;
      h[11] = 0;
      const sum = internetChecksum(h, 0, hl);
      h[10] = sum >> 8;
      h[11] = sum & 0xff;
    }
    const good = internetChecksum(h, 0, hl) === 0;
    assert.equal(checkIpv4Header(h, 0, hl), good ? undefined : 'checksum');
  }), { numRuns: 2000 });
});

test('writeIpv4Header (checksum from the values) writes a header that verifies, for any fields', () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 1, max: 255 }), fc.integer({ min: 0, max: 65515 }),
    (src, dst, protocol, id, ttl, payloadLength) => {
      const buf = new Uint8Array(22).fill(0xaa);
      writeIpv4Header(buf, 2, src, dst, protocol, id, ttl, payloadLength);
      assert.equal(internetChecksum(buf, 2, 22), 0);
    },
  ), { numRuns: 2000 });
});
