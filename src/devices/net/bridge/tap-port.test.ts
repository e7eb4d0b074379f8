/**
 * The TAP uplink against Linux's own network stack, in a network namespace. Linux is the
 * judge of what the bridge sends it: a TCP segment with a bad checksum is dropped silently,
 * a valid one to a closed port is answered with a RST; a UDP datagram with a bad checksum is
 * dropped, a valid one to a closed port is answered with ICMP port unreachable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCode, sleep } from '../../../base/index.js';
import { Bridge } from './bridge.js';
import { ipv4PseudoSum, foldSum } from './checksum.js';
import { superFrame, put16 } from './gso-test-support.js';
import { RecordingSink } from './test-support.js';
import { TapUplink } from './tap-port.js';
import { configureInNs, inNs, ip, linkExists, skipTap, skipTapPing, uniqueNames, withNetns } from './tap-test-support.js';
import { pollUntil } from '../../../base/testing.js';

// The fake guest (a RecordingSink port) is 10.0.0.1 at :01; Linux in the namespace is 10.0.0.2 at :02.
const GUEST_MAC = '00:16:3e:00:00:01';
const LINUX_MAC = '00:16:3e:00:00:02';

const waitFor = (cond: () => boolean, ms = 3000): Promise<boolean> => pollUntil(cond, ms);

/** A UDP datagram 10.0.0.1:5000 → 10.0.0.2:`dport`, its checksum left as `csum`. */
function udpFrame(dport: number, csum: 'partial' | 'bogus'): Uint8Array {
  const f = superFrame({ v6: false, ipOptions: 0, tcpOptions: 0, seq: 0, ipId: 1, flags: 0, payload: new Uint8Array(8) });
  f[23] = 17;
  put16(f, 16, 20 + 8 + 20); // IP total: 20 + UDP 8 + 20 bytes of data (the TCP header bytes become data)
  f[24] = f[25] = 0;
  const sum = (() => {
    let s = 0;
    for (let i = 14; i < 34; i += 2) s += (f[i]! << 8) | f[i + 1]!;
    return ~foldSum(s) & 0xffff;
  })();
  put16(f, 24, sum);
  put16(f, 34, 5000);
  put16(f, 36, dport);
  put16(f, 38, 28);
  // CHECKSUM_PARTIAL as Linux and netfront leave it: the folded pseudo-header sum, for the receiver to complete.
  put16(f, 40, csum === 'partial' ? foldSum(ipv4PseudoSum(f, 14, 17, 28)) : 0x1234);
  return f.subarray(0, 14 + 48);
}

async function withUplink(fn: (ctx: { ns: string; bridge: Bridge; uplink: TapUplink; sink: RecordingSink; guest: ReturnType<Bridge['addPort']> }) => Promise<void>): Promise<void> {
  const { ns, tap } = uniqueNames();
  await withNetns(ns, async () => {
    const bridge = new Bridge('xenbr0');
    const uplink = await TapUplink.open(bridge, tap);
    try {
      await configureInNs(ns, tap, LINUX_MAC, '10.0.0.2/24');
      await ip('-n', ns, 'neigh', 'add', '10.0.0.1', 'lladdr', GUEST_MAC, 'dev', tap);
      const sink = new RecordingSink();
      const guest = bridge.addPort('vif1.0', sink);
      await fn({ ns, bridge, uplink, sink, guest });
    } finally {
      await uplink.close();
      bridge.dispose();
    }
    assert.equal(linkExists(tap), false, 'the TAP is gone once closed');
    assert.equal((await inNs(ns, 'ip', 'link', 'show', tap)).code === 0, false);
  });
}

const tcpFromLinux = (s: RecordingSink): Uint8Array[] => s.frames.map((r) => r.frame).filter((f) => f[12] === 0x08 && f[13] === 0 && f[23] === 6);

test('toward Linux, a GSO super-frame arrives as valid TCP segments: Linux answers every one with a RST', { skip: skipTap }, () =>
  withUplink(async ({ bridge, uplink, sink, guest }) => {
    const frame = superFrame({ v6: false, ipOptions: 0, tcpOptions: 0, seq: 1000, ipId: 1, flags: 0x10, payload: new Uint8Array(10000).fill(0x5a) });
    put16(frame, 50, 0); // the TCP checksum field left blank (csum_blank)
    assert.equal(guest.input(frame, { csumBlank: true, dataValidated: true, gso: { type: 'tcpv4', size: 1448 } }), true);
    const count = Math.ceil(10000 / 1448);
    assert.ok(await waitFor(() => tcpFromLinux(sink).length >= count), `RSTs: ${tcpFromLinux(sink).length} of ${count}`);
    const rsts = tcpFromLinux(sink);
    assert.equal(rsts.length, count);
    for (const r of rsts) assert.equal(r[47]! & 0x04, 0x04, 'RST');
    assert.equal(bridge.counters.gsoSegmented, 1);
    const st = uplink.stats();
    assert.equal(st.port.txPackets, count, 'segments written to Linux');
    assert.equal(st.port.txTooBig, 0);
    assert.ok(st.linuxRead >= count);
    assert.equal(st.state, 'up');
  }));

test('toward Linux, a checksum-blank UDP datagram is completed; a bad checksum is dropped by Linux (the control)', { skip: skipTap }, () =>
  withUplink(async ({ sink, guest }) => {
    const icmp = (): Uint8Array[] => sink.frames.map((r) => r.frame).filter((f) => f[23] === 1 && f[34] === 3 && f[35] === 3);
    guest.input(udpFrame(10, 'bogus'));
    guest.input(udpFrame(9, 'partial'), { csumBlank: true, dataValidated: true });
    assert.ok(await waitFor(() => icmp().length >= 1), 'ICMP port unreachable for the completed datagram');
    await sleep(100);
    const got = icmp();
    assert.equal(got.length, 1, 'none for the bogus checksum');
    // ICMP quotes the datagram: IP header at 42, UDP at 62; its destination port is 9.
    assert.equal((got[0]![64]! << 8) | got[0]![65]!, 9);
  }));

test('a TAP name already open elsewhere is refused with the reason; the bridge goes on', { skip: skipTap }, async () => {
  const { tap } = uniqueNames();
  const bridge = new Bridge('xenbr0');
  const first = await TapUplink.open(bridge, tap);
  try {
    await assert.rejects(TapUplink.open(new Bridge('xenbr1'), tap), (err: Error) => errorCode(err) === 'EBUSY' && /another process has it open/.test(err.message));
    assert.equal(bridge.ports().length, 1);
    assert.equal(first.stats().state, 'up');
  } finally {
    await first.close();
    bridge.dispose();
  }
  assert.equal(bridge.ports().length, 0);
  assert.equal(linkExists(tap), false);
});

test('an invalid interface name is refused before anything is opened', async () => {
  await assert.rejects(TapUplink.open(new Bridge('xenbr0'), 'no spaces allowed'), (err: Error) => errorCode(err) === 'EINVAL');
  await assert.rejects(TapUplink.open(new Bridge('xenbr0'), 'sixteen-chars-xx'), (err: Error) => errorCode(err) === 'EINVAL');
});

test('an existing interface that is not a TAP is refused with the reason', { skip: skipTap }, async () => {
  await assert.rejects(TapUplink.open(new Bridge('xenbr0'), 'lo'), (err: Error) => errorCode(err) === 'EINVAL' && /not a TAP device/.test(err.message));
});

test('frames from Linux are bounded in flight: a stalled event loop drops them, counted, and the uplink goes on', { skip: skipTapPing }, async () => {
  const { ns, tap } = uniqueNames();
  await withNetns(ns, async () => {
    const bridge = new Bridge('xenbr0');
    const uplink = await TapUplink.open(bridge, tap, { maxInFlight: 2 });
    try {
      await configureInNs(ns, tap, LINUX_MAC, '10.0.0.2/24');
      // 30 broadcast pings, 5 ms apart, while this thread is blocked: each one a frame for the reader.
      const pinging = inNs(ns, 'ping', '-b', '-c', '30', '-i', '0.005', '-W', '1', '10.0.0.255');
      // The event loop stalls on purpose until the reader has read 20 frames (it counts in shared memory).
      const nap = new Int32Array(new SharedArrayBuffer(4));
      const end = performance.now() + 5000;
      while (uplink.stats().linuxRead < 20 && performance.now() < end) Atomics.wait(nap, 0, 0, 10);
      await pinging;
      assert.ok(await waitFor(() => uplink.stats().linuxRead === uplink.stats().port.rxPackets + uplink.stats().rxQueueFull && uplink.stats().linuxRead >= 30));
      const st = uplink.stats();
      assert.ok(st.rxQueueFull >= 18, JSON.stringify(st));
      assert.equal(st.state, 'up');
    } finally {
      await uplink.close();
      bridge.dispose();
    }
  });
});
