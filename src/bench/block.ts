/**
 * `xenpv bench block` (issue 4, Performance): in one run, on one image file,
 *
 *   4 KiB random reads at queue depth 1 and 32 (IOPS), 1 MiB sequential reads and writes (MB/s),
 *
 * through PV in the layout xenpv runs (block-host.ts: a Host in this process, `builtin:fio`
 * in a guest created from examples/pv-guest.cfg, the disk's BlkBack in a dom0 worker thread
 * of its own on synchronous pread/pwrite), `plain` (the backend offers no persistent grants,
 * no indirect, one queue, one ring page) and `tuned` (the toolstack's default backend:
 * persistent grants + indirect + multi-queue, and the guest booted with HOST_TUNED's command
 * line, block-host.ts) — against the host process doing the same I/O on the same
 * file itself: synchronous pread/pwrite through the page cache (the baseline of every
 * comparison), and O_DIRECT through the storage layer's direct mode. Plus CPU seconds per GiB
 * moved: dom0 (blkback's thread, and dom0 as a whole) and the guest.
 *
 * `block.inproc.*`: the earlier layout (block-pv.ts: blkback on the main thread over the
 * libuv-pool storage), kept for comparison with older runs.
 *
 * Rounds alternate the order of the parts, so each figure and its baseline see the same
 * machine (harness.ts). Comparisons: the tuned PV figure (real layout) against native cached
 * pread/pwrite. 1 MB = 10^6 bytes.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlkFeatures } from '../devices/blk/index.js';
import { BATCH_RUNS } from '../devices/blk/back-sync.js';
import type { FioResult } from '../guest/fio/job.js';
import { openStorage } from '../devices/blk/storage/open.js';
import { Hypervisor } from '../hv/sim/hypervisor.js';
import { cpuSecondsPerGiB } from './block-cpu.js';
import { nativeLoop, storageLoop, type LoopOutput, type NativeKind } from './block-native.js';
import { HOST_PLAIN, HOST_TUNED, HostPvBed, JOB_CPU_SAMPLE_MS, type HostJobOutput } from './block-host.js';
import { PLAIN, TUNED, withPvGuest, type PvConfig, type PvJobOutput } from './block-pv.js';
import { occupancyExtras, type Occupancy } from './demo/cpu.js';
import { EXAMPLE_IMAGE } from './demo/guests.js';
import { compare, summarize, type BenchOptions, type BenchResult, type BenchSuite, type Better, type SuiteOutput } from './harness.js';

interface Plan {
  readonly runs: number;
  readonly warmupRuns: number;
  readonly imageMiB: number;
  /** Seconds per measured job (native loop or fio runtime). */
  readonly jobSeconds: number;
  /**
   * fio's ramp_time before each PV job's timed phase. Every PV job boots a fresh guest, whose
   * vCPU worker and disk thread start with none of their code compiled: over 0.5 s jobs that
   * start read 0.26 of native where 3 s jobs read 0.6. The native loop runs on the main
   * thread, compiled since the warm-up round.
   */
  readonly rampSeconds: number;
  /** Queue depth of the 1 MiB sequential PV and O_DIRECT jobs. */
  readonly seqDepth: number;
}

const FULL: Plan = { runs: 5, warmupRuns: 1, imageMiB: 256, jobSeconds: 1.5, rampSeconds: 1, seqDepth: 32 };
const QUICK: Plan = { runs: 1, warmupRuns: 0, imageMiB: 64, jobSeconds: 0.1, rampSeconds: 0, seqDepth: 32 };

type Figure = { unit: string; better: Better; values: number[]; extras: Record<string, number>[] };

class Samples {
  readonly figures = new Map<string, Figure>();
  /** Figures that could not be measured on this machine, and why. */
  readonly unavailable = new Set<string>();
  keep = false;

  add(name: string, unit: string, better: Better, value: number, extra?: Record<string, number>): void {
    if (!this.keep) return;
    let f = this.figures.get(name);
    if (f === undefined) this.figures.set(name, (f = { unit, better, values: [], extras: [] }));
    f.values.push(value);
    if (extra !== undefined) f.extras.push(extra);
  }

  result(name: string): BenchResult {
    const f = this.figures.get(name);
    if (f === undefined) throw new Error(`bench block: no figure ${name}`);
    return summarize(name, f.unit, f.better, f.values, f.extras);
  }
}

const MB = 1e6;
const JOBS = [
  { key: 'randread_4k_qd1_iops', kind: 'randread', bs: 4096, qd: 1 },
  { key: 'randread_4k_qd32_iops', kind: 'randread', bs: 4096, qd: 32 },
  { key: 'seqread_1m_mbps', kind: 'seqread', bs: 2 ** 20, qd: 0 },
  { key: 'seqwrite_1m_mbps', kind: 'seqwrite', bs: 2 ** 20, qd: 0 },
] as const;

function rate(key: string, bytes: number, ops: number, seconds: number): number {
  return key.endsWith('_iops') ? ops / seconds : bytes / seconds / MB;
}

const unitOf = (key: string): string => (key.endsWith('_iops') ? 'IOPS' : 'MB/s');

/** Native cached: one sync loop per kind (random reads are one figure: a sync loop is QD1 whatever the depth asked). */
function nativePart(plan: Plan, image: string, s: Samples, seed: number): void {
  const add = (name: string, unit: string, o: LoopOutput, value: number): void =>
    s.add(name, unit, 'higher', value, {
      main_cpu_s_per_gib: cpuSecondsPerGiB(o.mainCpuNs, o.bytes),
      process_cpu_s_per_gib: cpuSecondsPerGiB(o.processCpuNs, o.bytes),
    });
  const r = nativeLoop(image, 'randread', 4096, plan.jobSeconds, seed);
  add('block.randread_4k_iops.native', 'IOPS', r, r.ops / (r.elapsedNs / 1e9));
  for (const kind of ['seqread', 'seqwrite'] as const) {
    const o = nativeLoop(image, kind, 2 ** 20, plan.jobSeconds, seed);
    add(`block.${kind}_1m_mbps.native`, 'MB/s', o, o.bytes / (o.elapsedNs / 1e9) / MB);
  }
  // Not baselines of any comparison: what fio's working set alone costs the native loop.
  for (const kind of ['seqread', 'seqwrite'] as const) {
    const o = nativeLoop(image, kind, 2 ** 20, plan.jobSeconds, seed, plan.seqDepth);
    add(`block.${kind}_1m_mbps.native_${plan.seqDepth}bufs`, 'MB/s', o, o.bytes / (o.elapsedNs / 1e9) / MB);
  }
}

/**
 * The storage layer blkback itself uses, driven directly by the host at the same queue depths:
 * `async` = the cached raw file as blkback opens it (libuv pool), `direct` = its O_DIRECT mode.
 * The async figures are the ceiling of the PV path on this storage: PV over them is the cost
 * of the transport (ring, grants, events, two threads), the rest is the storage layer's.
 */
async function storagePart(plan: Plan, image: string, direct: boolean, s: Samples, seed: number): Promise<void> {
  let storage;
  try {
    storage = await openStorage({ format: 'raw', target: image, direct });
  } catch (err) {
    // tmpfs and some other file systems refuse O_DIRECT: say so instead of failing the suite.
    if (!direct) throw err;
    s.unavailable.add(`native_direct: not measured, O_DIRECT refused on ${tmpdir()}: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  try {
    for (const j of JOBS) {
      const o = await storageLoop(storage, j.kind as NativeKind, j.bs, j.qd === 0 ? plan.seqDepth : j.qd, plan.jobSeconds, seed);
      s.add(`block.${j.key}.${direct ? 'native_direct' : 'native_async'}`, unitOf(j.key), 'higher', rate(j.key, o.bytes, o.ops, o.elapsedNs / 1e9), {
        process_cpu_s_per_gib: cpuSecondsPerGiB(o.processCpuNs, o.bytes),
      });
    }
  } finally {
    await storage.close();
  }
}

function fioArgs(plan: Plan, j: (typeof JOBS)[number], seed: number): string {
  const rw = j.kind === 'randread' ? 'randread' : j.kind === 'seqread' ? 'read' : 'write';
  const qd = j.qd === 0 ? plan.seqDepth : j.qd;
  return `rw=${rw} bs=${j.bs} iodepth=${qd} ramp_time=${plan.rampSeconds} runtime=${plan.jobSeconds} time_based seed=${seed}`;
}

/** One PV figure and its dom0 CPU figure; `prefix` is 'block' (real layout) or 'block.inproc'. */
function addPv(
  s: Samples,
  prefix: string,
  cfg: string,
  key: string,
  o: { result: FioResult; guestCpuNs: number | undefined; backCpuNs: number | undefined; dom0CpuNs: number | undefined; backOccupancy?: Occupancy | undefined; guestOccupancy?: Occupancy | undefined },
): void {
  const r = o.result;
  const dir = r.read.ios > 0 ? r.read : r.write;
  const value = key.endsWith('_iops') ? dir.iops : dir.mbps;
  const dom0 = cpuSecondsPerGiB(o.dom0CpuNs, dir.bytes);
  s.add(`${prefix}.${key}.pv_${cfg}`, unitOf(key), 'higher', value, {
    lat_p50_us: dir.lat_us.p50,
    lat_p99_us: dir.lat_us.p99,
    guest_cpu_s_per_gib: cpuSecondsPerGiB(o.guestCpuNs, dir.bytes),
    dom0_blkback_thread_cpu_s_per_gib: cpuSecondsPerGiB(o.backCpuNs, dir.bytes),
    dom0_cpu_s_per_gib: dom0,
    ...occupancyExtras(o.backOccupancy, (what) => `blkback_threads_${what}`),
    ...occupancyExtras(o.guestOccupancy, (what) => `guest_${what}`),
  });
  s.add(`${prefix}.dom0_cpu_s_per_gib.${key.replace(/_(iops|mbps)$/, '')}.pv_${cfg}`, 's/GiB', 'lower', dom0);
}

/** The earlier layout (block.inproc.*): blkback on this thread, the guest's fio in a worker. */
async function inprocPart(plan: Plan, hv: Hypervisor, image: string, cfg: PvConfig, s: Samples, seed: number, features: Map<string, string>): Promise<void> {
  await withPvGuest(hv, image, cfg, async (g) => {
    features.set(`inproc_${cfg.name}`, describeFeatures(g.features));
    for (const j of JOBS) {
      const o: PvJobOutput = await g.run(fioArgs(plan, j, seed));
      addPv(s, 'block.inproc', cfg.name, j.key, { ...o, backCpuNs: o.dom0MainCpuNs });
    }
  });
}

/** The real layout: one guest per job on the Host of this configuration. */
async function hostPart(plan: Plan, bed: HostPvBed, cfg: string, s: Samples, seed: number, features: Map<string, string>): Promise<void> {
  for (const j of JOBS) {
    const o: HostJobOutput = await bed.run(fioArgs(plan, j, seed), plan.jobSeconds * 1000 + 30_000);
    features.set(cfg, o.negotiated);
    addPv(s, 'block', cfg, j.key, o);
  }
}

/** A raw image of `mib` MiB with non-zero contents (no holes: a hole reads faster than data). */
function makeImage(path: string, mib: number): void {
  const fd = openSync(path, 'w');
  try {
    const chunk = randomFillSync(Buffer.alloc(2 ** 20));
    for (let i = 0; i < mib; i++) writeSync(fd, chunk, 0, chunk.length, i * 2 ** 20);
  } finally {
    closeSync(fd);
  }
}

function describeFeatures(f: BlkFeatures): string {
  return `persistent=${f.persistent} indirect-segments=${f.indirectSegments} queues=${f.queues} ring-pages=${f.ringPages}`;
}

async function runRounds(plan: Plan, images: { cached: string; direct: string }, dir: string): Promise<{ s: Samples; features: Map<string, string>; commands: string[] }> {
  const image = images.cached;
  const s = new Samples();
  const features = new Map<string, string>();
  const hv = new Hypervisor({ maxMachineBytes: 2 ** 30 });
  hv.dom0.events.startAsync();
  const beds: HostPvBed[] = [];
  try {
    const plain = await HostPvBed.start(HOST_PLAIN, dir, join(dir, 'run-plain'));
    beds.push(plain);
    const tuned = await HostPvBed.start(HOST_TUNED, dir, join(dir, 'run-tuned'));
    beds.push(tuned);
    for (let round = 0; round < plan.warmupRuns + plan.runs; round++) {
      s.keep = round >= plan.warmupRuns;
      const seed = round + 1;
      const parts = [
        async () => nativePart(plan, image, s, seed),
        () => storagePart(plan, image, false, s, seed),
        () => storagePart(plan, images.direct, true, s, seed),
        () => hostPart(plan, plain, 'plain', s, seed, features),
        () => hostPart(plan, tuned, 'tuned', s, seed, features),
        () => inprocPart(plan, hv, image, PLAIN, s, seed, features),
        () => inprocPart(plan, hv, image, TUNED, s, seed, features),
      ];
      for (let i = 0; i < parts.length; i++) await parts[(i + round) % parts.length]!();
    }
    return { s, features, commands: beds.map((b) => b.command() ?? '') };
  } finally {
    for (const b of beds) await b.close();
    hv.dom0.events.stopAsync();
    await hv.dispose();
  }
}

function output(plan: Plan, s: Samples, features: Map<string, string>, commands: readonly string[]): SuiteOutput {
  const results = [...s.figures.keys()].map((n) => s.result(n));
  const native = (k: string): BenchResult => s.result(k.startsWith('randread') ? 'block.randread_4k_iops.native' : `block.${k}.native`);
  const pool = process.env['UV_THREADPOOL_SIZE'] ?? 4;
  return {
    results,
    comparisons: [
      compare('block.randread_4k_qd32_iops.pv_vs_native', s.result('block.randread_4k_qd32_iops.pv_tuned'), native('randread'), 0.8),
      compare('block.seqread_1m_mbps.pv_vs_native', s.result('block.seqread_1m_mbps.pv_tuned'), native('seqread_1m_mbps'), 0.9),
      compare('block.seqwrite_1m_mbps.pv_vs_native', s.result('block.seqwrite_1m_mbps.pv_tuned'), native('seqwrite_1m_mbps'), 0.9),
    ],
    notes: [
      `image: ${plan.imageMiB} MiB raw file in ${tmpdir()}, written with random bytes first (cached: the machine has far more RAM); native_direct writes and reads a copy of its own, so that its O_DIRECT writes do not evict the image from the page cache under the other parts.`,
      `native: synchronous readSync/writeSync (pread/pwrite) on the main thread into a plain Buffer, through the page cache; one request in flight, so block.randread_4k_iops.native is the baseline of QD1 and QD32 alike. block.seq{read,write}_1m_mbps.native_${plan.seqDepth}bufs: the same loops through ${plan.seqDepth} buffers in turn, as many as fio's at iodepth ${plan.seqDepth}, which are cold in the CPU's caches when they come round again (the one-buffer loop reuses a hot one); for reading the PV sequential ratios, not their baselines.`,
      `native_async: the storage layer's async raw file (storage/raw.ts on node-file.ts: FileHandle pread/pwrite on libuv's pool, page cache), driven by the host at the same depths.`,
      `native_direct: O_DIRECT through the storage layer's direct mode (aligned bounce pool of 8 × 1 MiB slots, libuv pool of ${pool} threads); QD as named, sequential at QD${plan.seqDepth}.`,
      `pv_plain / pv_tuned: the layout xenpv runs. A Host in this process; per job a guest created from examples/pv-guest.cfg with overrides (e.g. ${commands.at(-1) ?? 'n/a'}) running builtin:fio in its vCPU worker on the guest kernel's BlkFront; the disk's BlkBack in a dom0 worker thread of its own, moving data between the image and the guest's granted pages with no copy of its own: adjacent requests form one transfer, and up to ${BATCH_RUNS} transfers go in one submission: io_uring for one-buffer reads, Linux AIO for the rest (toolstack/domain/disk-worker.ts, devices/blk/back-sync.ts, devices/blk/storage/io-uring.ts, linux-aio.ts); a raw image's queues beyond the first are served by dom0 ring threads, one per spare core (toolstack/domain/ring-threads.ts); fio's buffers are persistent BlkBuffers (kept granted, no copy in the guest). Sequential jobs at iodepth ${plan.seqDepth}; figures are what fio in the guest saw.`,
      `pv_plain: the Host started with blkBack = { persistent: false, maxIndirectSegments: 0, maxQueues: 1, maxRingPageOrder: 0 } (HostOptions.blkBack, host-wide like Linux blkback's module parameters), the guest's blkfront on its defaults; pv_tuned: the toolstack's backend defaults, the guest booted with ${HOST_TUNED.cmdline} (as a Linux guest's kernel command line takes it; Linux's default is 32 segments, 128 KiB per request; 128 make a 1 MiB request two slots, and iodepth 32 two rings, served by two dom0 threads; cpuidle_haltpoll.force=1: the vCPU polls for events up to Linux's adaptive limit, at most 200 µs, before it blocks, so its CPU figures include that polling).`,
      `pv_plain negotiated: ${features.get('plain') ?? 'not measured'}`,
      `pv_tuned negotiated: ${features.get('tuned') ?? 'not measured'}`,
      `CPU (real layout), over fio's timed window: dom0 = every thread alive before the guest was created (main thread: xenstored, bridges, consoles; libuv pool; V8 helpers) plus the disk backend's worker thread (demo/cpu.ts Dom0CpuSampler); dom0_blkback_thread = that worker thread alone; guest = the threads created with the guest (its vCPU worker). Per GiB the guest saw move. blkback_threads_* and guest_* (real layout): the disk backend's threads and the guest's, summed, as a percent of fio's window on a CPU (busy) and runnable but waiting for one (runq_wait), and their sleeps a second, each a wake-up another thread paid for (/proc schedstat and status, sampled every ${JOB_CPU_SAMPLE_MS} ms and when fio's result arrives).`,
      `block.inproc.*: the earlier layout (bench/block-pv.ts), blkback on the main thread over the libuv-pool storage (pool of ${pool} threads), fio in a guest worker with explicit front options (tuned: persistent + 256 indirect + 4 queues + 16-page ring); dom0 = process CPU minus the guest thread, dom0_blkback_thread = the main thread. Not the layout xenpv runs; kept to compare with earlier runs.`,
      `inproc pv_plain negotiated: ${features.get('inproc_plain') ?? 'not measured'}`,
      `inproc pv_tuned negotiated: ${features.get('inproc_tuned') ?? 'not measured'}`,
      `${plan.runs} timed rounds (+${plan.warmupRuns} warm-up) of ${plan.jobSeconds} s jobs; the seven parts rotate order each round. Each PV job runs fio's ramp_time=${plan.rampSeconds} first, uncounted: its guest and disk thread are fresh threads whose code V8 has yet to compile; the native loop is compiled since the warm-up round.`,
    ],
  };
}

export const blockSuite: BenchSuite = {
  name: 'block',
  description: 'PV block (plain and tuned, in the toolstack\'s layout) vs native pread/pwrite on the same image: 4 KiB random-read IOPS at QD1/QD32, 1 MiB sequential MB/s, CPU per GiB',
  async run(options: BenchOptions): Promise<SuiteOutput> {
    const plan = options.quick ? QUICK : FULL;
    const dir = await mkdtemp(join(tmpdir(), 'xenpv-bench-block-'));
    try {
      // The example config's image name, so its guests get this very file as xvda.
      const image = join(dir, EXAMPLE_IMAGE);
      makeImage(image, plan.imageMiB);
      // O_DIRECT writes drop the pages they cover from the page cache, and pages read back one
      // by one come back as single pages, where a sequentially written file sits in large
      // folios: 4 KiB reads of the same cached file then ran ~20 % slower (590 k against 740 k
      // per second, natively). So the O_DIRECT part has a file of its own, and every cached
      // part sees the image as written.
      const directImage = join(dir, 'direct.img');
      makeImage(directImage, plan.imageMiB);
      const load0 = loadavg();
      const { s, features, commands } = await runRounds(plan, { cached: image, direct: directImage }, dir);
      const out = output(plan, s, features, commands);
      const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' / ');
      // performance.md §4.6: report every benchmark with the neighbour load at the time.
      const note = `machine load (1/5/15-min load average on ${cpus().length} cores): ${load(load0)} at start, ${load(loadavg())} at end; the PV path needs two threads (guest vCPU, disk backend) to wake each other, so it suffers more from a loaded machine than the one-thread native loop.`;
      return { ...out, notes: [...(out.notes ?? []), ...s.unavailable, note] };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
