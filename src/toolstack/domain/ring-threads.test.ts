/**
 * Ring threads (ring-threads.ts, ring-worker.ts): a raw disk's queues beyond the first served
 * by dom0 threads of their own. A guest driving all four queues writes and reads back verified
 * data, the ring thread does part of the work, every request is counted once in the disk's
 * figures, and nothing stays mapped or bound; a disk whose threads die is reclaimed, the ring
 * threads' mappings included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { newBlkCounters } from '../../devices/blk/index.js';
import { parseDomainConfig } from '../config/index.js';
import type { Host } from '../host/host.js';
import { ThreadedDiskBackend } from './disk-thread.js';
import { addDelta, takeDelta } from './ring-counters.js';
import { runFioGuest, until, withDiskHost } from './test-support.js';

const XVDA = 51712;

/** One ring thread per disk, whatever this machine's core count. */
const withHost = (fn: (host: Host, dir: string, log: string[]) => Promise<void>): Promise<void> =>
  withDiskHost(8 << 20, fn, { XENPV_BLK_RING_THREADS: '1' });

/** CPU nanoseconds a thread of this process has run (schedstat's first field). */
function threadCpuNs(tid: number): number {
  return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
}

/** Run builtin:fio with `extra`; its fio JSON line, the disk backend (still up) and its ring thread's CPU over the run. */
async function fio(host: Host, dir: string, name: string, extra: string): Promise<{ line: Record<string, unknown>; back: ThreadedDiskBackend; ringCpuNs: number }> {
  let back: ThreadedDiskBackend | undefined;
  let ringTid = -1;
  let cpu0 = 0;
  const g = await runFioGuest(host, dir, name, extra, (d) => {
    const b = d.disks.get(XVDA)!.back;
    assert.ok(b instanceof ThreadedDiskBackend);
    assert.equal(b.ringOsTids.length, 1, 'one ring thread, started with the disk thread');
    back = b;
    ringTid = b.ringOsTids[0]!;
    assert.ok(existsSync(`/proc/self/task/${ringTid}`), 'the ring thread is a thread of this process');
    cpu0 = threadCpuNs(ringTid);
  });
  assert.equal(g.info.shutdownReason, 'poweroff', `${name}: ${g.info.message ?? ''} ${g.console.join('\n')}`);
  assert.ok(g.fio !== undefined, g.console.join('\n'));
  return { line: g.fio, back: back!, ringCpuNs: threadCpuNs(ringTid) - cpu0 };
}

test('ring threads serve the queues a busy guest spills into: verified data, counted once, nothing left behind', async () => {
  await withHost(async (host, dir) => {
    // 128 in flight: blkfront fills queue 0's 32 slots and spills into queues 1-3; with one
    // ring thread, queues 1 and 3 are its own.
    const w = await fio(host, dir, 'writer', 'rw=write bs=4k iodepth=128 size=4M verify=crc32c');
    assert.deepEqual([w.line['verify'], w.line['errors'], (w.line['write'] as Record<string, number>)['ios']], ['ok', 0, 1024]);
    await until(() => w.back.info().counters.write.requests === 1024, 'the write counters reach 1024');
    assert.equal(w.back.info().counters.write.bytes, 4 << 20);
    await host.destroy('writer');

    const r = await fio(host, dir, 'reader', 'rw=read bs=4k iodepth=128 size=4M verify=crc32c');
    assert.deepEqual([r.line['verify'], r.line['errors'], (r.line['read'] as Record<string, number>)['ios']], ['ok', 0, 1024]);
    await until(() => r.back.info().counters.read.requests === 1024, 'the read counters reach 1024');
    assert.equal(r.back.info().counters.write.requests, 0);
    await host.destroy('reader');
    // Measured: 17-31 ms of CPU while the guests ran; under 1 ms when no queue was its own.
    for (const [job, ns] of [['writer', w.ringCpuNs], ['reader', r.ringCpuNs]] as const) {
      assert.ok(ns > 5e6, `the ${job}'s ring thread moved data (${(ns / 1e6).toFixed(1)} ms of CPU)`);
    }
  });
});

test('a disk whose threads die is reclaimed, the ring thread mappings and ports included', async () => {
  await withHost(async (host, dir, log) => {
    const cfg = parseDomainConfig(`name = "t"\nmemory = 4\nkernel = "builtin:idle"\ndisk = ['disk.img,raw,xvda,rw']`, { source: 't.cfg' });
    const d = await host.create(cfg, { baseDir: dir });
    const back = d.disks.get(XVDA)!.back as ThreadedDiskBackend;
    await until(() => back.isConnected && back.info().queues === 4, 'four queues connected');
    assert.equal(back.ringOsTids.length, 1);
    await back.kill();
    const reclaimed = log
      .map((l) => /^disk backend thread died: reclaimed (\d+) mappings, (\d+) ports/.exec(l))
      .filter((m) => m !== null)
      .map((m) => [Number(m[1]), Number(m[2])]);
    assert.equal(reclaimed.length, 2, `the disk thread and the ring thread reclaimed (${log.join(' | ')})`);
    for (const [mappings, ports] of reclaimed) {
      assert.ok(mappings! >= 2 && ports! >= 2, `two rings and two ports each (${mappings}, ${ports})`);
    }
    await host.destroy('t');
  });
});

test('ring counters travel as deltas: each change is added once', () => {
  const c = newBlkCounters();
  const sent = newBlkCounters();
  const into = newBlkCounters();
  assert.equal(takeDelta(c, sent), undefined, 'nothing new');
  c.read.requests = 3;
  c.read.bytes = 12288;
  c.flush.errors = 1;
  addDelta(into, takeDelta(c, sent)!);
  assert.equal(takeDelta(c, sent), undefined, 'sent caught up');
  c.read.requests = 5;
  addDelta(into, takeDelta(c, sent)!);
  assert.deepEqual(into, c);
});
