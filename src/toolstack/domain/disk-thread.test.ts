/**
 * Disk backends in dom0 worker threads (disk-thread.ts): the guest's disk connects through
 * one, block-list/domstats figures come back from it, a bad image fails before anything is
 * written, and a thread that dies mid-connection is reclaimed so the guest still tears down
 * cleanly (no mapping, pin or port left).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDomainConfig } from '../config/index.js';
import { Host } from '../host/host.js';
import { accounting } from '../host/views.js';
import { ThreadedDiskBackend } from './disk-thread.js';

async function withHost(fn: (host: Host, dir: string, log: string[]) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-diskthread-'));
  await writeFile(join(dir, 'disk.img'), '');
  await truncate(join(dir, 'disk.img'), 1 << 20);
  const log: string[] = [];
  const host = await Host.start({ runDir: join(dir, 'run'), storeSocket: false, maxMachineBytes: 2 ** 28, log: (l) => log.push(l) });
  const base = host.hv.framesInUse;
  try {
    await fn(host, dir, log);
    const a = await accounting(host, base);
    assert.deepEqual([a.domains, a.guestFrames, a.dom0Ports, a.dom0Maptrack, a.foreignPins], [0, 0, 0, 0, 0]);
  } finally {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const cfg = (name: string, disk: string): ReturnType<typeof parseDomainConfig> =>
  parseDomainConfig(`name = "${name}"\nmemory = 4\nkernel = "builtin:idle"\ndisk = ['${disk}']`, { source: 't.cfg' });

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
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
    const d = await host.create(cfg('t3', 'disk.img,raw,xvda,rw'), { baseDir: dir });
    const back = d.disks.get(51712)!.back as ThreadedDiskBackend;
    await until(() => back.isConnected);
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
