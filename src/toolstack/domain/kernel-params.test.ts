/**
 * blkfront's module parameters on the guest's command line (guest/cmdline.ts) reach the
 * kernel's frontend: `xen_blkfront.max_indirect_segments=256` makes a 1 MiB write one ring
 * request instead of eight, as the backend counts them; a bad parameter is reported on the
 * console and the guest runs on its defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlkBackInfo } from '../../devices/blk/index.js';
import type { Host } from '../host/host.js';
import { runFioGuest, until, withDiskHost } from './test-support.js';

const XVDA = 51712;

/** 4 MiB written in 1 MiB requests with `params`; the backend's write request count and the console. */
async function writeRequests(host: Host, dir: string, name: string, params: string): Promise<{ requests: number; console: string[] }> {
  let info: (() => BlkBackInfo) | undefined;
  const g = await runFioGuest(host, dir, name, `${params} rw=write bs=1M iodepth=2 size=4M verify=crc32c`, (d) => {
    const back = d.disks.get(XVDA)!.back;
    info = () => back.info();
  });
  assert.equal(g.info.shutdownReason, 'poweroff', `${name}: ${g.info.message ?? ''} ${g.console.join('\n')}`);
  assert.deepEqual([g.fio?.['verify'], g.fio?.['errors']], ['ok', 0], g.console.join('\n'));
  await until(() => info!().counters.write.bytes === 4 << 20, `${name}: the backend counts 4 MiB written`);
  const requests = info!().counters.write.requests;
  await host.destroy(name);
  return { requests, console: g.console };
}

test('xen_blkfront.max_indirect_segments on the command line: 1 MiB per ring request; a bad parameter is reported and ignored', async () => {
  await withDiskHost(8 << 20, async (host, dir) => {
    const big = await writeRequests(host, dir, 'big', 'xen_blkfront.max_indirect_segments=256');
    assert.equal(big.requests, 4, 'one request per MiB');
    const plain = await writeRequests(host, dir, 'plain', 'xen_blkfront.max_indirect_segments=nope');
    assert.equal(plain.requests, 32, 'the default 32 segments: 128 KiB per request');
    assert.ok(plain.console.some((l) => l.includes("xen_blkfront: ignoring 'xen_blkfront.max_indirect_segments=nope'")), plain.console.join('\n'));
  });
});

test('cpuidle_haltpoll.force=1 on the command line: the guest polls for its disk before blocking, says so at boot, and counts its idle states', async () => {
  await withDiskHost(8 << 20, async (host, dir) => {
    const g = await runFioGuest(host, dir, 'poll', 'cpuidle_haltpoll.force=1 rw=randrw bs=4k iodepth=8 size=2M verify=crc32c');
    assert.equal(g.info.shutdownReason, 'poweroff', `${g.info.message ?? ''} ${g.console.join('\n')}`);
    assert.deepEqual([g.fio?.['verify'], g.fio?.['errors']], ['ok', 0], g.console.join('\n'));
    assert.ok(g.console.includes('cpuidle: using governor haltpoll (guest_halt_poll_ns=200000)'), g.console.join('\n'));
    const usage = g.console.map((l) => /^cpuidle: state POLL usage (\d+), state HALT usage (\d+)/.exec(l)).find((m) => m !== null);
    assert.ok(usage !== undefined, g.console.join('\n'));
    assert.ok(Number(usage[1]) > 0, `idle periods ended while polling: ${usage[0]}`);
    await host.destroy('poll');
  });
});
