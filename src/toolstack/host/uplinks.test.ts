/**
 * `--uplink BRIDGE=tap:IFNAME`: parsing, and a host whose xenbr0 has a TAP uplink in a
 * network namespace — Linux's ping reaches a `builtin:shell` guest, a `builtin:ping` guest
 * reaches Linux, and an uplink that cannot be created is listed with its reason while the
 * host runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorCode } from '../../base/index.js';
import { configureInNs, inNs, skipTapPing, uniqueNames, withNetns } from '../../devices/net/bridge/tap-test-support.js';
import { parseDomainConfig } from '../config/index.js';
import { Host } from './host.js';
import { formatUplinks, parseUplinkSpec } from './uplinks.js';
import { pollUntil } from '../../base/testing.js';

test('uplink specs: BRIDGE=tap:IFNAME, names checked', () => {
  assert.deepEqual(parseUplinkSpec('xenbr0=tap:xpv0'), { bridge: 'xenbr0', tap: 'xpv0' });
  assert.deepEqual(parseUplinkSpec(' br-lan=tap:tap.1 '), { bridge: 'br-lan', tap: 'tap.1' });
  for (const bad of ['xenbr0', 'xenbr0=xpv0', 'xenbr0=tun:xpv0', '=tap:xpv0', 'xenbr0=tap:', 'xenbr0=tap:sixteen-chars-xx', 'a b=tap:x']) {
    assert.throws(() => parseUplinkSpec(bad), (err: Error) => errorCode(err) === 'EINVAL', bad);
  }
});

test('uplink rows format for host status', () => {
  const lines = formatUplinks([
    { bridge: 'xenbr0', tap: 'xpv0', state: 'up', rxPackets: 1, rxBytes: 60, txPackets: 2, txBytes: 120, txDropped: 0, rxDropped: 0 },
    { bridge: 'xenbr1', tap: 'xpv1', state: 'failed', reason: 'ENOTSUP: koffi did not load', rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, txDropped: 0, rxDropped: 0 },
  ]);
  assert.deepEqual(lines, [
    'uplink xenbr0 <-> xpv0: up, from Linux 1 packets 60 bytes (0 dropped), to Linux 2 packets 120 bytes (0 dropped)',
    'uplink xenbr1 <-> xpv1: failed (ENOTSUP: koffi did not load)',
  ]);
});

const guest = (name: string, kernel: string, extra: string): ReturnType<typeof parseDomainConfig> =>
  parseDomainConfig(`name = "${name}"\nmemory = 16\nkernel = "${kernel}"\nextra = "${extra}"\nvif = ['bridge=xenbr0']\non_poweroff = "preserve"\n`, { source: `${name}.cfg` });

const until = (cond: () => Promise<boolean> | boolean, ms: number): Promise<boolean> => pollUntil(cond, ms, 50);

test('host --uplink: Linux in a namespace pings a guest; a guest pings Linux; a failed uplink says why', { skip: skipTapPing }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-uplink-'));
  const { ns, tap } = uniqueNames();
  const runDir = join(dir, 'run');
  // The second uplink asks for the same TAP: it cannot be opened twice.
  const host = await Host.start({ runDir, storeSocket: false, maxMachineBytes: 2 ** 28, uplinks: [{ bridge: 'xenbr0', tap }, { bridge: 'xenbr1', tap }] });
  try {
    const rows = host.uplinks.list();
    assert.deepEqual(rows.map((r) => [r.bridge, r.state]), [['xenbr0', 'up'], ['xenbr1', 'failed']]);
    assert.match(rows[1]!.reason ?? '', /EBUSY: .*another process has it open/);
    await withNetns(ns, async () => {
      await configureInNs(ns, tap, '02:00:00:00:02:00', '10.0.0.254/24');
      await host.create(guest('shell1', 'builtin:shell', 'ip=10.0.0.1/24'));
      const fromLinux = await inNs(ns, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '-w', '15', '10.0.0.1');
      assert.equal(fromLinux.code, 0, fromLinux.stdout);
      await host.create(guest('ping1', 'builtin:ping', 'ip=10.0.0.2/24 dst=10.0.0.254 count=3 interval=100 timeout=3000'));
      const log = join(runDir, 'guest-ping1.log');
      const result = async (): Promise<string> => (await readFile(log, 'utf8').catch(() => '')).split('\n').find((l) => l.startsWith('{"ping"')) ?? '';
      assert.ok(await until(async () => (await result()) !== '', 10_000), 'the guest ping reported');
      assert.equal((JSON.parse(await result()) as { ping: { received: number } }).ping.received, 3);
      const up = host.uplinks.list()[0]!;
      assert.ok(up.rxPackets >= 6 && up.txPackets >= 6, JSON.stringify(up));
    });
  } finally {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
  assert.deepEqual(host.uplinks.list().map((r) => r.state), ['closed', 'failed']);
});
