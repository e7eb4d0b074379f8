/**
 * xl's `cpus=` and `vcpu-pin` reach the kernel: a vCPU thread's Linux CPU mask is what the
 * config or the command asked for, read back with sched_getaffinity (not from our record).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { threadAffinity } from '../../hv/sim/affinity.js';
import { parseDomainConfig } from '../config/index.js';
import { until, withDiskHost } from '../domain/test-support.js';

const last = cpus().length - 1;
const linux = process.platform === 'linux' && process.arch === 'x64';

test('cpus= pins a vCPU thread at boot; vcpu-pin moves it; all unpins it', { skip: !linux && 'needs Linux on x86_64 (koffi, /proc)' }, () =>
  withDiskHost(1 << 20, async (host) => {
    const cfg = parseDomainConfig(`name = "p"\nmemory = 4\nvcpus = 2\nkernel = "builtin:idle"\ncpus = ["${last}"]`, { source: 'p.cfg' });
    const d = await host.create(cfg);
    const tids = (): (number | undefined)[] => host.hv.vcpuList(d.domid).map((v) => v.osTid);
    await until(() => tids().every((t) => t !== undefined), 'both vCPU threads up');
    const [t0, t1] = tids() as [number, number];
    assert.deepEqual(threadAffinity(t0), [last], 'vCPU 0 as cpus= says');
    assert.equal(threadAffinity(t1).length, cpus().length, 'vCPU 1 unpinned (no list entry)');
    let rows = host.vcpuList('p');
    assert.deepEqual(rows.map((r) => [r.vcpu, r.hard]), [[0, String(last)], [1, 'all']]);
    host.vcpuPin('p', '1', String(last));
    assert.deepEqual(threadAffinity(t1), [last]);
    host.vcpuPin('p', 'all', 'all');
    assert.equal(threadAffinity(t0).length, cpus().length);
    rows = host.vcpuList('p');
    assert.deepEqual(rows.map((r) => r.hard), ['all', 'all']);
    assert.throws(() => host.vcpuPin('p', '2', '0'), /has no vCPU 2/);
    assert.throws(() => host.vcpuPin('p', '0', 'nodes:0'), /NUMA/);
    await host.destroy('p');
  }));

test('Domain-0 has one vCPU, the host thread, and vcpu-pin pins it', { skip: !linux && 'needs Linux on x86_64 (koffi, /proc)' }, () =>
  withDiskHost(1 << 20, async (host) => {
    const [row] = host.vcpuList('Domain-0');
    assert.deepEqual([row?.name, row?.domid, row?.vcpu], ['Domain-0', 0, 0]);
    try {
      host.vcpuPin('0', '0', String(last));
      assert.equal(host.vcpuList(0)[0]?.hard, String(last));
    } finally {
      host.vcpuPin('Domain-0', 'all', 'all');
    }
    assert.equal(host.vcpuList(0)[0]?.hard, 'all');
    assert.throws(() => host.vcpuPin('Domain-0', '1', 'all'), /one vCPU/);
  }));
