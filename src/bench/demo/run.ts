/**
 * `xenpv demo` without the command line: a temp dir with the guests' image and the host's run
 * dir, a Host in this process (hypervisor model, xenstored, console daemon, bridges,
 * backends), rounds of disk and network work through PV and natively, then the report.
 * Everything it made is gone when it returns, also when it fails: guests destroyed, host
 * closed (workers, ports, store), temp dir removed; on SIGINT/SIGTERM the temp dir is removed
 * and the process exits (its workers with it).
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../../toolstack/index.js';
import { BENCH_SCHEMA, machineInfo, nowNs } from '../harness.js';
import { makeDiskImage, nativeDisk, pvDiskJob, PV_JOBS, type DiskPvOutcome } from './disk.js';
import { DemoSamples } from './figures.js';
import { EXAMPLE_IMAGE, type DemoContext } from './guests.js';
import { nativeNetRound, PV_NET_STEPS, pvNetRound, UDP_PAYLOAD } from './net.js';
import { FULL_PLAN, QUICK_PLAN, type DemoPlan } from './plan.js';
import { Progress, type ProgressSink } from './progress.js';
import { EMULATED_STATUS, jsonRow, terminalText, writeDemoReport, type DemoReport, type WrittenReport } from './report.js';

export interface DemoOptions {
  readonly quick: boolean;
  /** Print the report as one JSON object instead of the table. */
  readonly json: boolean;
  /** The report folder (created if missing). */
  readonly out: string;
  /** stdout (the table or the JSON). */
  readonly write?: (text: string) => void;
  /** Where the step line goes (stderr by default; undefined in `progress: null` = silent). */
  readonly progress?: ProgressSink | null;
}

export interface DemoOutcome {
  readonly report: DemoReport;
  readonly files: WrittenReport;
}

/** Steps per round: PV disk jobs + native disk + PV network steps + native network. */
const stepsPerRound = PV_JOBS + 1 + PV_NET_STEPS + 1;

export async function runDemo(options: DemoOptions): Promise<DemoOutcome> {
  const plan = options.quick ? QUICK_PLAN : FULL_PLAN;
  const write = options.write ?? ((t: string) => void process.stdout.write(t));
  const progress = new Progress(2 + plan.rounds * stepsPerRound, options.progress === null ? undefined : (options.progress ?? process.stderr));
  const startedAt = new Date().toISOString();
  const t0 = nowNs();
  try {
    const measured = await measure(plan, progress);
    progress.step('writing the report');
    const report = buildReport(plan, measured, startedAt, (nowNs() - t0) / 1e6);
    const files = await writeDemoReport(report, options.out);
    progress.end();
    write(options.json ? JSON.stringify(report, null, 2) + '\n' : terminalText(report, options.out));
    return { report, files };
  } finally {
    progress.end();
  }
}

interface Measured {
  readonly samples: DemoSamples;
  readonly commands: readonly string[];
  readonly disk: DiskPvOutcome | undefined;
  /** 1-minute load average at the start and at the end: the neighbours' share of the 2 cores. */
  readonly load: readonly [number, number];
}

async function measure(plan: DemoPlan, progress: Progress): Promise<Measured> {
  const loadStart = loadavg()[0]!;
  return withScratchDir(async (dir) => {
    progress.step(`booting the host, ${plan.imageMiB} MiB disk image`);
    const image = join(dir, EXAMPLE_IMAGE);
    makeDiskImage(image, plan.imageMiB);
    const host = await Host.start({ runDir: join(dir, 'run'), storeSocket: false, maxMachineBytes: 2 ** 30 });
    try {
      const ctx: DemoContext = { host, baseDir: dir, commands: new Map(), step: (w) => progress.step(w) };
      const samples = new DemoSamples();
      const disk = await runRounds(ctx, plan, image, samples);
      return { samples, commands: [...ctx.commands.values()], disk, load: [loadStart, loadavg()[0]!] };
    } finally {
      await host.close();
    }
  });
}

/** A temp dir for the image and the host's run dir, removed afterwards — also on Ctrl-C or a kill. */
async function withScratchDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-demo-'));
  // The workers die with the process, but the image in the temp dir would stay.
  const onSignal = (sig: NodeJS.Signals): void => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(dir);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await rm(dir, { recursive: true, force: true });
  }
}

/** The rounds: disk PV and native, then network PV and native; odd rounds run native first. */
async function runRounds(ctx: DemoContext, plan: DemoPlan, image: string, samples: DemoSamples): Promise<DiskPvOutcome | undefined> {
  let disk: DiskPvOutcome | undefined;
  const diskParts = [
    async () => {
      for (let j = 0; j < PV_JOBS; j++) {
        const o = await pvDiskJob(ctx, plan, samples, j);
        disk ??= o; // the first job's negotiation, for the notes
      }
    },
    async () => {
      ctx.step('disk natively: pread/pwrite on the same image');
      nativeDisk(image, plan, samples);
    },
  ];
  const netParts = [
    () => pvNetRound(ctx, plan, samples),
    async () => {
      ctx.step('network natively: loopback UDP stream and echo');
      await nativeNetRound(plan, samples);
    },
  ];
  for (let round = 0; round < plan.rounds; round++) {
    // Alternate which path goes first, so neither always runs on a machine the other warmed.
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) await diskParts[i]!();
    for (const i of order) await netParts[i]!();
  }
  return disk;
}

/** What the PV UDP stream lost, when it lost anything worth saying. */
export function udpLossNote(s: DemoSamples): string | undefined {
  const loss = s.result('net.udp_1500_mbps', 'pv')?.extra?.['loss_percent'];
  if (loss === undefined || !(loss >= 1)) return undefined;
  return `The PV UDP sender is unpaced and ${loss.toFixed(0)} % of its datagrams never arrived (median over rounds): the receiving guest is the bottleneck; Mbit/s and CPU per GiB count what arrived.`;
}

function notes(plan: DemoPlan, m: Measured): string[] {
  const b = m.disk?.back;
  const loss = udpLossNote(m.samples);
  return [
    `Load average (1 min) ${m.load[0].toFixed(1)} at the start, ${m.load[1].toFixed(1)} at the end, on ${cpus().length} cores: the machine is shared, absolute figures drift between runs, ratios measured in the same round hold better.`,
    ...(loss === undefined ? [] : [loss]),
    `Host: the hypervisor model, xenstored, the console daemon, the bridge xenbr0 and the backends in this one process; each guest is a worker thread (its vCPU).`,
    `Disk: a ${plan.imageMiB} MiB raw image created sparse in a temp dir, then filled with random bytes (a hole reads faster than data); the machine has the RAM to keep it in the page cache, so this measures the I/O path, not a device.`,
    `Disk through PV: builtin:fio in the guest on xvda (BlkFront), ${plan.diskSeconds} s per job after ${plan.diskRampSeconds} s of fio ramp_time (a fresh guest's code compiling), time_based; blkback in dom0 over the raw file${b === undefined ? '' : ` (negotiated: ${b.queues} queue(s), ${b.ringPages} ring page(s), persistent grants ${b.persistent ? 'on' : 'off'})`}. QD32 = 32 requests in flight.`,
    `Disk natively: synchronous pread/pwrite from one thread on the same file (${plan.diskSeconds} s per kind); one request in flight, so it is the baseline of QD32 and QD1 alike. Latency: fio's mean in the guest vs the loop's time per request.`,
    `Network through PV: guests on xenbr0: builtin:ping against a guest running builtin:udp-recv (${plan.pings} echoes, one every ${plan.pingIntervalMs} ms, 56 data bytes; the figure is the median of the per-reply times ping prints, the mean is in demo.json), then builtin:udp-send to another builtin:udp-recv (${UDP_PAYLOAD}-byte payloads, ${plan.udpMs} ms, unpaced). Mbit/s of UDP payload as the receiver counted it; losses are in demo.json.`,
    `Network natively: a loopback UDP socket pair in this process (${UDP_PAYLOAD}-byte payloads, at most 128 in flight, ${plan.udpMs} ms) and a loopback UDP echo (${plan.pings} sequential round trips of 56 bytes, median).`,
    `dom0 CPU per GiB: PV = every thread of the process except the guests' vCPU threads (blkback/netback/bridge on the main thread, libuv's pool doing blkback's pread/pwrite, V8 helpers), over the guest job's own timed window, read from /proc/self/task/*/schedstat; native = the thread doing the I/O (disk) or the whole process (network: it is sender, kernel path and receiver at once).`,
    `${plan.rounds} round(s); each figure is the median over rounds, the PV and native parts of a round alternate which goes first.`,
    `Emulated devices (the third column): ${EMULATED_STATUS}. When the HVM device model lands, the same figures get an emulated column and comparisons named demo.<figure>.emulated_vs_native and demo.<figure>.pv_vs_emulated.`,
  ];
}

function buildReport(plan: DemoPlan, m: Measured, startedAt: string, elapsedMs: number): DemoReport {
  return {
    suite: 'demo',
    schema: BENCH_SCHEMA,
    machine: machineInfo(),
    quick: plan === QUICK_PLAN,
    startedAt,
    elapsedMs,
    rounds: plan.rounds,
    results: m.samples.results(),
    comparisons: m.samples.comparisons(),
    rows: m.samples.rows().map(jsonRow),
    emulated: { status: EMULATED_STATUS, note: 'the HVM device model, with IDE and NE2000/RTL8139, arrives in a later issue' },
    guests: m.commands,
    notes: notes(plan, m),
  };
}
