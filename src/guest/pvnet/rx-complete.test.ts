/**
 * netback stages a one-slot frame for the guest (its grant copy batched) only when the bridge
 * handed it over as stable: the port then completes it. A frame netback copied itself (the
 * IPv6 checksum it fills for a frontend without feature-ipv6-csum-offload) out of a borrowed,
 * cut-through delivery is copied into the guest at once, not left for a later completion.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { until, withNet } from './test-support.js';

/** Ethernet + IPv6 (link-local addresses) + UDP with a blank checksum, 32 bytes of payload. */
function ipv6Udp(dst: Uint8Array, src: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + 40 + 8 + 32);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x86;
  f[13] = 0xdd;
  f[14] = 0x60; // version 6
  f[19] = 40; // payload length
  f[20] = 17; // next header: UDP
  f[21] = 64; // hop limit
  f.set([0xfe, 0x80], 22);
  f[37] = 1;
  f.set([0xfe, 0x80], 38);
  f[53] = 2;
  f.set([0x12, 0x34, 0x56, 0x78, 0, 40], 54); // ports, UDP length; checksum left zero
  return f;
}

test('a csum-blank IPv6 frame cut through to a vif without IPv6 checksum offload reaches its guest', async () => {
  await withNet(async (env) => {
    const b = env.guests[1]!;
    // The bridge learns B's address: the frame below is then known unicast (cut through, borrowed).
    const hello = new Uint8Array(60).fill(0xff, 0, 6);
    hello.set(b.front.mac, 6);
    hello.set([0x88, 0xb5], 12);
    b.front.transmit(hello, { csumBlank: false, dataValidated: false });
    await new Promise((r) => setTimeout(r, 100));
    const uplink = env.bridge.addPort('up0', { deliver: () => true });
    const before = b.received.length;
    uplink.input(ipv6Udp(b.front.mac, Uint8Array.of(0x02, 0, 0, 0, 0, 9)), { csumBlank: true, dataValidated: true }, false);
    assert.equal(await until(env, () => b.received.length > before, 1500), true, 'the frame reaches the guest');
    const got = b.received.at(-1)!;
    assert.deepEqual([got.info.csumBlank, got.info.dataValidated], [false, true], 'netback filled the checksum');
  }, [{}, { front: { features: { ipv6CsumOffload: false } } }]);
});
