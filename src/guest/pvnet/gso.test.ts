/**
 * Software GSO end to end: a guest whose netfront negotiated GSO sends a TCP super-frame
 * through netback and the bridge to a guest whose netfront did not; the receiver gets MSS
 * segments through its rx ring, each a complete frame with valid checksums, that reassemble
 * to the payload the sender gave.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ping } from '../net/ping.js';
import { internetChecksum, ipv4PseudoSum } from '../../devices/net/bridge/checksum.js';
import { tcpFrame, until, withNet, type NetEnv, type NetGuest } from './test-support.js';

async function pingOk(env: NetEnv, from: NetGuest, to: NetGuest): Promise<void> {
  const p = new Ping(from.stack, { dst: to.ip, count: 1, intervalMs: 5, timeoutMs: 2000 });
  await until(env, () => (p.poll(), p.done), 4000);
  assert.equal(p.result().received, 1);
}

test('GSO end to end: a GSO sender to a non-GSO receiver arrives as valid MSS segments', () =>
  withNet(async (env) => {
    const [a, , c] = env.guests as [NetGuest, NetGuest, NetGuest];
    await pingOk(env, a, c);
    assert.equal(await env.dom0.readString(`/local/domain/${c.domid}/device/vif/0/feature-gso-tcpv4`), '0', 'c did not negotiate GSO');
    const frame = tcpFrame(a, c, 40001, 80, 30000);
    const seq = 0xfffffff0; // the segments' sequence numbers cross the 2^32 wrap
    new DataView(frame.buffer).setUint32(34 + 4, seq);
    frame[34 + 13] = 0x19; // ACK|PSH|FIN: PSH and FIN only on the last segment
    assert.equal(a.front.transmit(frame, { csumBlank: true, dataValidated: true, gso: { type: 'tcpv4', size: 1448 } }), true);
    const count = Math.ceil(30000 / 1448);
    const segs = (): Uint8Array[] => c.received.filter((r) => r.frame.length > 54 && r.frame[23] === 6).map((r) => r.frame);
    assert.ok(await until(env, () => segs().length >= count), `got ${segs().length} of ${count} segments`);
    const got = segs();
    assert.equal(got.length, count);
    let offset = 0;
    got.forEach((f, i) => {
      assert.ok(f.length <= 1514);
      assert.equal(internetChecksum(f, 14, 34), 0, 'IPv4 header checksum');
      assert.equal(internetChecksum(f, 34, f.length, ipv4PseudoSum(f, 14, 6, f.length - 34)), 0, 'TCP checksum');
      assert.equal(new DataView(f.buffer, f.byteOffset).getUint32(38), (seq + offset) >>> 0);
      assert.equal(f[47], i === count - 1 ? 0x19 : 0x10);
      offset += f.length - 54;
    });
    assert.deepEqual(Buffer.concat(got.map((f) => f.subarray(54))), Buffer.from(frame.subarray(54)));
    assert.equal(env.bridge.counters.gsoSegmented, 1);
    assert.equal(c.back.stats().port?.txTooBig, 0);
  }, [{ mtu: 1500 }, { stack: false }, { front: { features: { gso: false } } }]));
