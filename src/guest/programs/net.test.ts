/**
 * The network programs' logic (ping, udp-send, udp-recv) in-process: each brings up its own
 * NetFront + NetStack on a domain whose NetBack sits on the shared bridge, and prints its JSON
 * line. (The builtin entry points differ only in opening the store with platform.openStore().)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCode, sleep } from '../../base/index.js';
import { withNet, type BackendOnly } from '../pvnet/test-support.js';
import type { NetProgramEnv } from './net-common.js';
import { runPing } from './ping.js';
import { runUdpRecv, runUdpSend } from './udp-stream.js';

function envOf(g: BackendOnly, extra: string, lines: string[], stop: { v: boolean }): NetProgramEnv {
  return {
    platform: g.platform, store: g.client, domid: g.domid, argv: extra.split(/\s+/),
    log: (l) => lines.push(l), sleep, running: async () => !stop.v,
  };
}

function jsonLine(lines: string[], key: string): Record<string, unknown> {
  const l = lines.find((x) => x.startsWith(`{"${key}"`));
  assert.ok(l !== undefined, `no JSON line for ${key} in ${lines.join(' | ')}`);
  return (JSON.parse(l) as Record<string, Record<string, unknown>>)[key]!;
}

test('builtin ping, udp-send and udp-recv over NetFront: iputils lines and one JSON line each', () =>
  withNet(async (env) => {
    const g1 = await env.addBackendOnly();
    const g2 = await env.addBackendOnly();
    const stop = { v: false };
    const recvLines: string[] = [];
    const receiving = runUdpRecv(envOf(g2, `ip=10.0.0.2/24 port=5001 timeout=8000`, recvLines, stop));
    await sleep(50);
    const pingLines: string[] = [];
    const r = await runPing(envOf(g1, `ip=10.0.0.1/24 dst=10.0.0.2 count=3 interval=10 timeout=2000`, pingLines, stop));
    assert.equal(r.received, 3);
    assert.match(pingLines[0]!, /^PING 10\.0\.0\.2 \(10\.0\.0\.2\) 56\(84\) bytes of data\.$/);
    assert.ok(pingLines.some((l) => /^64 bytes from 10\.0\.0\.2: icmp_seq=1 ttl=64 time=/.test(l)));
    assert.equal(jsonLine(pingLines, 'ping').received, 3);
    assert.equal(pingLines.filter((l) => l.includes('ping statistics')).length, 1, 'one summary');
    const sendLines: string[] = [];
    const sent = await runUdpSend(envOf(g1, `ip=10.0.0.1/24 dst=10.0.0.2 port=5001 size=1472 duration=150 pps=2000`, sendLines, stop));
    const got = await receiving;
    assert.ok(sent.packets > 0);
    assert.equal(jsonLine(sendLines, 'udp').role, 'sender');
    const rep = jsonLine(recvLines, 'udp');
    assert.equal(rep.role, 'receiver');
    assert.equal(got.complete, true, JSON.stringify({ got, sent, recvLines, sendLines }));
    assert.equal(got.packets, sent.packets, 'a paced stream loses nothing');
    assert.equal(got.lost, 0);
    assert.ok(got.mbps > 0);
  }, []));

test('builtin udp-send to an address no one answers: it keeps probing until arpwait, then fails with EHOSTUNREACH instead of streaming', () =>
  withNet(async (env) => {
    const g1 = await env.addBackendOnly();
    const stop = { v: false };
    const lines: string[] = [];
    const t0 = performance.now();
    await assert.rejects(
      runUdpSend(envOf(g1, `ip=10.0.0.1/24 dst=10.0.0.77 duration=100 arpwait=5000`, lines, stop)),
      (err: unknown) => errorCode(err) === 'EHOSTUNREACH' && /no ARP reply from 10\.0\.0\.77 in 5000 ms/.test(String(err)),
    );
    const ms = performance.now() - t0;
    assert.ok(ms >= 4900 && ms < 9000, `gave up after ${ms} ms`);
    assert.ok(!lines.includes('udp-send: streaming'), lines.join(' | '));
    // A second round of probes went out after the first entry was given up (3 probes, 1 s apart):
    // every frame from this guest is an ARP request (its probe datagram never left unresolved).
    const requests = g1.back.stats().port?.rxPackets ?? 0;
    assert.ok(requests >= 4, `ARP requests sent: ${requests}`);
  }, []));
