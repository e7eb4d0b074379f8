/**
 * The demo's disk work, through PV and natively, on the same image file:
 *
 * - PV: a guest from the example config running `builtin:fio` on its xvda (BlkFront in the
 *   guest's vCPU worker, blkback in dom0 with the toolstack's default features, the image's
 *   raw file under it); the figure is what fio in the guest saw.
 * - native: the host process doing the same I/O itself, synchronous pread/pwrite from one
 *   thread through the page cache (block-native.ts, `xenpv bench block`'s baseline).
 *
 * dom0 CPU per GiB: for PV, every thread but the guest's over fio's timed window
 * (cpu.ts); natively, the thread doing the I/O.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, openSync, ftruncateSync, writeSync } from 'node:fs';
import type { BlkBackInfo } from '../../devices/blk/back.js';
import type { FioResult } from '../../guest/fio/job.js';
import type { Host } from '../../toolstack/index.js';
import { ThreadedDiskBackend } from '../../toolstack/domain/disk-thread.js';
import { cpuSecondsPerGiB } from '../block-cpu.js';
import { nativeLoop } from '../block-native.js';
import { diskBackendTids, Dom0CpuSampler } from './cpu.js';
import type { DemoSamples } from './figures.js';
import { startGuest, type DemoContext } from './guests.js';
import type { DemoPlan } from './plan.js';

const XVDA = 51712;
const MIB = 2 ** 20;

interface DiskJob {
  readonly name: string;
  readonly fio: string;
  readonly record: (s: DemoSamples, r: FioResult, dom0CpuNs: number | undefined) => void;
}

/** The four PV jobs; the iodepth of the sequential ones is Linux fio's usual QD32 for 1 MiB too. */
const JOBS: readonly DiskJob[] = [
  {
    name: 'sequential read 1 MiB',
    fio: 'rw=read bs=1M iodepth=32',
    record: (s, r, cpu) => {
      s.add('disk.seqread_1m_mbps', 'pv', r.read.mbps, { lat_p50_us: r.read.lat_us.p50, lat_p99_us: r.read.lat_us.p99 });
      s.add('cpu.disk_seqread_s_per_gib', 'pv', cpuSecondsPerGiB(cpu, r.read.bytes));
    },
  },
  {
    name: 'sequential write 1 MiB',
    fio: 'rw=write bs=1M iodepth=32',
    record: (s, r, cpu) => {
      s.add('disk.seqwrite_1m_mbps', 'pv', r.write.mbps, { lat_p50_us: r.write.lat_us.p50, lat_p99_us: r.write.lat_us.p99 });
      s.add('cpu.disk_seqwrite_s_per_gib', 'pv', cpuSecondsPerGiB(cpu, r.write.bytes));
    },
  },
  {
    name: 'random read 4 KiB QD32',
    fio: 'rw=randread bs=4k iodepth=32',
    record: (s, r, cpu) =>
      s.add('disk.randread_4k_qd32_iops', 'pv', r.read.iops, {
        lat_p50_us: r.read.lat_us.p50, lat_p99_us: r.read.lat_us.p99, dom0_cpu_s_per_gib: cpuSecondsPerGiB(cpu, r.read.bytes),
      }),
  },
  {
    name: 'random read 4 KiB QD1',
    fio: 'rw=randread bs=4k iodepth=1',
    record: (s, r) => s.add('disk.randread_4k_qd1_lat_us', 'pv', r.read.lat_us.mean, { p50: r.read.lat_us.p50, p99: r.read.lat_us.p99, iops: r.read.iops }),
  },
];

/** The image the guest gets as xvda: created sparse, then filled (a hole reads faster than data). */
export function makeDiskImage(path: string, mib: number): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, mib * MIB);
    const chunk = randomFillSync(Buffer.alloc(MIB));
    for (let i = 0; i < mib; i++) writeSync(fd, chunk, 0, MIB, i * MIB);
  } finally {
    closeSync(fd);
  }
}

/** Wait (bounded) until blkback has connected, and describe what it negotiated. */
async function negotiated(host: Host, domid: number): Promise<BlkBackInfo | undefined> {
  const end = performance.now() + 5000;
  for (;;) {
    const info = host.domains.get(domid)?.disks.get(XVDA)?.back.info();
    if (info === undefined || info.connected || performance.now() > end) return info;
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface DiskPvOutcome {
  readonly back: BlkBackInfo | undefined;
}

/** One PV job in a fresh guest; resolves once the guest is destroyed. */
export async function pvDiskJob(ctx: DemoContext, plan: DemoPlan, s: DemoSamples, index: number): Promise<DiskPvOutcome> {
  const job = JOBS[index]!;
  ctx.step(`disk through PV: ${job.name} (fio in a guest)`);
  const sampler = new Dom0CpuSampler();
  const g = await startGuest(ctx, { name: `demo-disk-${index}`, program: 'fio', extra: `${job.fio} ramp_time=${plan.diskRampSeconds} runtime=${plan.diskSeconds} time_based` });
  // blkback runs in dom0 threads of its own (a disk thread, ring threads), started with the guest: count them too.
  const back = ctx.host.domains.get(g.domid)?.disks.get(XVDA)?.back;
  if (back instanceof ThreadedDiskBackend) for (const tid of diskBackendTids(back)) sampler.addThread(tid);
  try {
    const back = await negotiated(ctx.host, g.domid);
    const { value, at } = await g.json<FioResult>('job', (plan.diskRampSeconds + plan.diskSeconds) * 1000 + 30_000);
    if (value.failure !== undefined || value.errors > 0) throw new Error(`demo: fio failed in the guest: ${value.failure ?? `${value.errors} errors`}`);
    job.record(s, value, sampler.between(at - value.elapsed_s * 1000, at));
    return { back };
  } finally {
    sampler.stop();
    await g.finish();
  }
}

export const PV_JOBS = JOBS.length;

/** The native side of one round: three synchronous loops on the same image. */
export function nativeDisk(image: string, plan: DemoPlan, s: DemoSamples): void {
  for (const kind of ['seqread', 'seqwrite'] as const) {
    const o = nativeLoop(image, kind, MIB, plan.diskSeconds);
    s.add(`disk.${kind}_1m_mbps`, 'native', o.bytes / (o.elapsedNs / 1e9) / 1e6);
    s.add(`cpu.disk_${kind}_s_per_gib`, 'native', cpuSecondsPerGiB(o.mainCpuNs, o.bytes));
  }
  const r = nativeLoop(image, 'randread', 4096, plan.diskSeconds);
  // One request in flight: this loop is the baseline of QD32 and QD1 alike.
  s.add('disk.randread_4k_qd32_iops', 'native', r.ops / (r.elapsedNs / 1e9), { cpu_s_per_gib: cpuSecondsPerGiB(r.mainCpuNs, r.bytes) });
  s.add('disk.randread_4k_qd1_lat_us', 'native', r.elapsedNs / r.ops / 1000);
}
