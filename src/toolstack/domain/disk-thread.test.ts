/**
 * Disk backends in dom0 worker threads (disk-thread.ts): the guest's disk connects through
 * one, block-list/domstats figures come back from it, a bad image fails before anything is
 * written, and a thread that dies mid-connection is reclaimed so the guest still tears down
 * cleanly (no mapping, pin or port left), and is replaced by a new one (restart-budget.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseDomainConfig } from '../config/index.js';
import type { Host } from '../host/host.js';
import { ThreadedDiskBackend } from './disk-thread.js';
import { until, withDiskHost } from './test-support.js';

const withHost = (fn: (host: Host, dir: string, log: string[]) => Promise<void>): Promise<void> => withDiskHost(1 << 20, fn);

const cfg = (name: string, disk: string): ReturnType<typeof parseDomainConfig> =>
  parseDomainConfig(`name = "${name}"\nmemory = 4\nkernel = "builtin:idle"\ndisk = ['${disk}']`, { source: 't.cfg' });

/** A guest `name` with one disk, once its backend thread has connected it. */
async function connectedDisk(host: Host, dir: string, name: string): Promise<ThreadedDiskBackend> {
  const d = await host.create(cfg(name, 'disk.img,raw,xvda,rw'), { baseDir: dir });
  const back = d.disks.get(51712)!.back as ThreadedDiskBackend;
  await until(() => back.isConnected);
  return back;
}

test('the disk backend runs in its own thread and reports its figures', async () => {
  await withHost(async (host, dir) => {
    const d = await host.create(cfg('t1', 'disk.img,raw,xvda,rw'), { baseDir: dir });
    const disk = d.disks.get(51712)!;
    assert.ok(disk.back instanceof ThreadedDiskBackend);
    if (process.platform === 'linux') assert.ok(disk.back.osTid !== undefined && existsSync(`/proc/self/task/${disk.back.osTid}`), 'its task id is ours');
    await until(() => disk.back.isConnected);
    const info = disk.back.info();
    assert.equal(info.connected, true);
    assert.equal(info.queues >= 1, true);
    assert.equal(disk.storage.sectorCount, (1 << 20) / 512);
    assert.equal(host.devices.stats(d)['block.0.capacity'], 1 << 20);
    await host.destroy('t1');
  });
});

test('a missing image fails create before any device directory is written', async () => {
  await withHost(async (host, dir) => {
    await assert.rejects(host.create(cfg('t2', 'nope.img,raw,xvda,rw'), { baseDir: dir }));
    assert.equal(host.list().some((r) => r.name === 't2'), false);
  });
});

test('a backend thread that dies is reclaimed: its mappings and ports go, the guest still tears down', async () => {
  await withHost(async (host, dir, log) => {
    const back = await connectedDisk(host, dir, 't3');
    await back.kill();
    assert.equal(back.isConnected, false);
    const line = log.find((l) => l.startsWith('disk backend thread died: reclaimed'));
    const m = /reclaimed (\d+) mappings, (\d+) ports/.exec(line ?? '');
    assert.ok(m !== null, `reclaim logged (${log.join(' | ')})`);
    assert.ok(Number(m[1]) >= 1, 'the ring mapping was reclaimed');
    assert.ok(Number(m[2]) >= 1, 'the event channel was reclaimed');
    await host.destroy('t3');
  });
});

test('a backend thread that dies is replaced: a new thread connects the guest\'s disk again', async () => {
  await withHost(async (host, dir, log) => {
    const back = await connectedDisk(host, dir, 't4');
    const firstTid = back.osTid;
    await back.kill();
    assert.equal(back.isConnected, false, 'down until the restart');
    await until(() => back.isConnected, 'connected through a new thread');
    assert.equal(back.restarts, 1);
    if (process.platform === 'linux') assert.notEqual(back.osTid, firstTid, 'another thread');
    assert.ok(log.some((l) => /restarted \(1 so far\)/.test(l)), log.join(' | '));
    await host.destroy('t4');
  });
});

test('a backend that cannot start again is retried within its budget, then left down; the guest still tears down', async () => {
  await withHost(async (host, dir, log) => {
    const back = await connectedDisk(host, dir, 't5');
    rmSync(join(dir, 'disk.img'));
    await back.kill();
    // The default policy: 5 attempts, 50 ms doubling (1.55 s in all), then no more.
    await until(() => log.some((l) => l.includes('not restarted')), 'given up', 10_000);
    assert.equal(log.filter((l) => l.includes('restart failed')).length, 5, log.join(' | '));
    assert.equal(back.restarts, 0);
    assert.equal(back.isConnected, false);
    await host.destroy('t5');
  });
});
