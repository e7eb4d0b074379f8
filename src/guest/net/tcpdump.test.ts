/**
 * Our frames judged by a real Linux tool: two stacks exchange ARP, ping, UDP and a port
 * unreachable; every frame goes into a pcap file that tcpdump decodes and checks
 * (-vv verifies IP, ICMP and UDP checksums).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bridge } from '../../devices/net/bridge/bridge.js';
import { PcapWriter } from '../../devices/net/bridge/pcap.js';
import type { BridgePort } from '../../devices/net/bridge/port.js';
import { NetStack } from './stack.js';
import { FakeClock } from './test-support.js';
import { skipUnlessInstalled } from '../../base/testing.js';

const tcpdump = spawnSync('tcpdump', ['--version']).status === 0;

function capturedExchange(): Uint8Array {
  const clock = new FakeClock(1_700_000_000_000);
  const pcap = new PcapWriter();
  const bridge = new Bridge('xenbr0', { clock: clock.now });
  const stacks: NetStack[] = [];
  const ports: BridgePort[] = [];
  for (const i of [1, 2]) {
    ports.push(bridge.addPort(`vif${i}.0`, { deliver: (f, info) => (stacks[i - 1]!.receive(f, info), true) }));
    stacks.push(new NetStack({
      mac: `00:16:3e:00:00:0${i}`, address: `10.0.0.${i}`, prefix: 24, clock: clock.now,
      send: (f, info) => {
        clock.advance(0.25);
        pcap.record(f, clock.now());
        ports[i - 1]!.input(f, info);
      },
    }));
  }
  const [a, b] = stacks as [NetStack, NetStack];
  a.onEchoReply(77, () => {});
  a.sendEchoRequest('10.0.0.2', 77, 1, Uint8Array.from({ length: 56 }, (_, i) => i));
  b.udpBind(5000);
  const s = a.udpBind(40000);
  s.send('10.0.0.2', 5000, new TextEncoder().encode('hello, dom0'));
  s.send('10.0.0.2', 5000, new Uint8Array(1472).fill(0x42));
  s.send('10.0.0.2', 9, Uint8Array.of(1)); // closed port: ICMP port unreachable
  return pcap.bytes();
}

test('tcpdump decodes our frames and finds every checksum correct', { skip: skipUnlessInstalled(tcpdump ? false : 'tcpdump is not installed') }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-pcap-'));
  try {
    const file = join(dir, 'net.pcap');
    writeFileSync(file, capturedExchange());
    const out = execFileSync('tcpdump', ['-r', file, '-nn', '-vv', '-e'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const expectations = [
      /00:16:3e:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype ARP \(0x0806\), length 42: Ethernet \(len 6\), IPv4 \(len 4\), Request who-has 10\.0\.0\.2 tell 10\.0\.0\.1, length 28/,
      /ethertype ARP \(0x0806\), length 42: Ethernet \(len 6\), IPv4 \(len 4\), Reply 10\.0\.0\.2 is-at 00:16:3e:00:00:02, length 28/,
      /ttl 64, id 1, offset 0, flags \[DF\], proto ICMP \(1\), length 84\)\s+10\.0\.0\.1 > 10\.0\.0\.2: ICMP echo request, id 77, seq 1, length 64/,
      /10\.0\.0\.2 > 10\.0\.0\.1: ICMP echo reply, id 77, seq 1, length 64/,
      /10\.0\.0\.1\.40000 > 10\.0\.0\.2\.5000: \[udp sum ok\] UDP, length 11/,
      /10\.0\.0\.1\.40000 > 10\.0\.0\.2\.5000: \[udp sum ok\] UDP, length 1472/,
      /10\.0\.0\.2 > 10\.0\.0\.1: ICMP 10\.0\.0\.2 udp port 9 unreachable/,
    ];
    for (const re of expectations) assert.match(out, re);
    assert.equal((out.match(/udp sum ok/g) ?? []).length, 3, 'the three datagrams (tcpdump does not check the one quoted in the ICMP error)');
    assert.doesNotMatch(out, /bad cksum|wrong|truncated|malformed/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
