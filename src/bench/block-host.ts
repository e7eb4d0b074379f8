/**
 * The PV path of `xenpv bench block` in the layout xenpv runs (`xenpv create`, `xenpv demo`):
 * a `Host` in this process, the guest created from `examples/pv-guest.cfg` with overrides
 * running `builtin:fio` in its vCPU worker (the guest kernel's BlkFront, default options),
 * and the disk's BlkBack in a dom0 worker thread of its own over synchronous pread/pwrite on
 * the image (toolstack/domain/disk-worker.ts).
 *
 * plain vs tuned is chosen in dom0, the only place a user can choose it: the Host's
 * `blkBack` option (what every backend offers, like Linux blkback's module parameters).
 * `plain` offers nothing (one queue, one ring page, no indirect, no persistent grants);
 * `tuned` is the toolstack's default, everything offered — what the guest's blkfront then
 * takes is its own default (persistent, 4 queues, indirect ≤ 32 segments, one ring page).
 *
 * One guest per fio job (builtin:fio runs one job and powers off). dom0 CPU over fio's timed
 * window: every thread alive before the guest was created plus the backend's thread
 * (demo/cpu.ts `Dom0CpuSampler`); the guest's: the threads that came with it.
 */
import type { BlkBackInfo } from '../devices/blk/index.js';
import { FRONT_DEFAULTS } from '../devices/blk/protocol.js';
import { parseKernelCmdline } from '../guest/cmdline.js';
import type { FioResult } from '../guest/fio/job.js';
import { ThreadedDiskBackend } from '../toolstack/domain/disk-thread.js';
import { Host, type BlkBackFeatureOptions } from '../toolstack/index.js';
import { diskBackendTids, Dom0CpuSampler, threadIds, type Occupancy } from './demo/cpu.js';
import { startGuest, type DemoContext, type GuestSpec } from './demo/guests.js';

export interface HostPvConfig {
  readonly name: 'plain' | 'tuned';
  /** Host-wide backend offer; undefined = the toolstack's default. */
  readonly back: BlkBackFeatureOptions | undefined;
  /** Guest kernel parameters put before fio's arguments in `extra` (guest/cmdline.ts). */
  readonly cmdline: string;
}

export const HOST_PLAIN: HostPvConfig = {
  name: 'plain',
  back: { persistent: false, maxIndirectSegments: 0, maxQueues: 1, maxRingPageOrder: 0 },
  cmdline: '',
};
/**
 * The toolstack's backend (persistent grants, 256 indirect segments, 4 queues) and a guest
 * blkfront tuned as a Linux guest is for large I/O, on its command line: 128 indirect segments,
 * so that a 1 MiB request takes two ring slots instead of eight (Linux's default is 32). At
 * iodepth 32 that fills two rings, served by the disk thread and a ring thread: 1 MiB reads,
 * alternating runs, 128 → 9.4 GB/s against 256 (one ring, one thread) → 8.3 and 32 → 7.5;
 * writes alike at 128 and 256 (ext4's inode lock serialises them), about 40 % less dom0 CPU
 * per MiB than at 32.
 *
 * And guest halt polling (`cpuidle_haltpoll.force=1`, guest/haltpoll.ts), as a latency-minded
 * KVM guest runs: the vCPU polls its event channels a while before blocking, so blkback's
 * responses find it awake and cost the disk thread no wake-up. Alternating runs, 4 KiB random
 * reads at QD32 against the native loop in the same process: 0.73-0.80 of native against
 * 0.54-0.69 without (3 pairs); 1 MiB reads and writes within the noise either way.
 */
export const HOST_TUNED: HostPvConfig = { name: 'tuned', back: undefined, cmdline: 'xen_blkfront.max_indirect_segments=128 cpuidle_haltpoll.force=1' };

export interface HostJobOutput {
  readonly result: FioResult;
  /** dom0 (every thread but the guest's, the backend thread included) over fio's window. */
  readonly dom0CpuNs: number | undefined;
  /** The disk backend's threads alone (its worker thread and ring threads). */
  readonly backCpuNs: number | undefined;
  /** The threads that appeared with the guest (its vCPU worker). */
  readonly guestCpuNs: number | undefined;
  /** What the backend negotiated, e.g. "persistent=true indirect-segments=32 queues=4 ring-pages=1". */
  readonly negotiated: string;
  /** Where the backend's threads and the guest's were over fio's window (summed over each set). */
  readonly backOccupancy?: Occupancy | undefined;
  readonly guestOccupancy?: Occupancy | undefined;
}

const XVDA = 51712;
/**
 * How often the job's CPU samplers read /proc. They run on the host's main thread, on a core the
 * job's own threads need: every 25 ms (the demo's period) the three of them cost 4.4 % of the
 * 4 KiB random-read IOPS (medians of 6 alternating rounds: 729 k against 761 k at 1 s). fio's
 * window ends at an exact sample (taken when its result arrives) and starts a second or more
 * into the job, where the threads' rates are steady, so one point interpolated between samples
 * a quarter second apart is close.
 */
export const JOB_CPU_SAMPLE_MS = 250;
const CONNECT_TIMEOUT_MS = 10_000;

/** A Host for one PV configuration; the image is the example config's `pv-guest.img` in `baseDir`. */
export class HostPvBed {
  private runs = 0;

  private constructor(
    private readonly cfg: HostPvConfig,
    private readonly host: Host,
    private readonly ctx: DemoContext,
  ) {}

  static async start(cfg: HostPvConfig, baseDir: string, runDir: string): Promise<HostPvBed> {
    const host = await Host.start({ runDir, storeSocket: false, maxMachineBytes: 2 ** 30, ...(cfg.back === undefined ? {} : { blkBack: cfg.back }) });
    return new HostPvBed(cfg, host, { host, baseDir, commands: new Map(), step: () => undefined });
  }

  /** The `xenpv create` line of the last guest. */
  command(): string | undefined {
    return [...this.ctx.commands.values()].pop();
  }

  close(): Promise<void> {
    return this.host.close();
  }

  /** One fio job (`extra`) in a fresh guest; fails if fio reports a failure or errors. */
  async run(extra: string, timeoutMs: number): Promise<HostJobOutput> {
    const dom0Tids = threadIds();
    const dom0 = new Dom0CpuSampler(dom0Tids, false, JOB_CPU_SAMPLE_MS);
    const spec: GuestSpec = { name: `bench-block-${this.cfg.name}-${++this.runs}`, program: 'fio', extra: `${this.cfg.cmdline} ${extra}`.trim() };
    let back: ThreadedDiskBackend | undefined;
    let backCpu: Dom0CpuSampler | undefined;
    let guestCpu: Dom0CpuSampler | undefined;
    const g = await startGuest(this.ctx, spec).catch((err: unknown) => {
      dom0.stop();
      throw err;
    });
    try {
      const b = this.host.domains.get(g.domid)?.disks.get(XVDA)?.back;
      if (b instanceof ThreadedDiskBackend) back = b;
      // The disk thread and its ring threads (ring-threads.ts) are dom0's.
      const backTids = back === undefined ? [] : diskBackendTids(back);
      for (const t of backTids) dom0.addThread(t);
      if (backTids.length > 0) backCpu = new Dom0CpuSampler(backTids, true, JOB_CPU_SAMPLE_MS);
      guestCpu = new Dom0CpuSampler(threadIds().filter((t) => !dom0Tids.includes(t) && !backTids.includes(t)), true, JOB_CPU_SAMPLE_MS);
      const negotiated = await this.negotiated(back);
      const { value, at } = await g.json<FioResult>('job', timeoutMs);
      if (value.failure !== undefined || value.errors > 0) {
        throw new Error(`bench block: fio failed in the guest: ${value.failure ?? `${value.errors} errors`}`);
      }
      const t0 = at - value.elapsed_s * 1000;
      return {
        result: value, dom0CpuNs: dom0.between(t0, at), backCpuNs: backCpu?.between(t0, at), guestCpuNs: guestCpu.between(t0, at), negotiated,
        backOccupancy: backCpu?.occupancy(t0, at), guestOccupancy: guestCpu.occupancy(t0, at),
      };
    } finally {
      dom0.stop();
      backCpu?.stop();
      guestCpu?.stop();
      await g.finish();
    }
  }

  /** Wait (bounded) for the backend to connect; describe the features in use. */
  private async negotiated(back: ThreadedDiskBackend | undefined): Promise<string> {
    if (back === undefined) return 'not a threaded backend';
    const end = performance.now() + CONNECT_TIMEOUT_MS;
    while (!back.isConnected && performance.now() < end) await new Promise((r) => setTimeout(r, 5));
    const info: BlkBackInfo = back.info();
    if (!info.connected) return 'not connected';
    // The backend's offer (its own key); the guest's blkfront uses at most its own maximum of it.
    const offer = Number(await this.host.store.readString(`${info.backPath}/feature-max-indirect-segments`).catch(() => '0'));
    const frontMax = parseKernelCmdline(this.cfg.cmdline).blkfront.maxIndirectSegments ?? FRONT_DEFAULTS.maxIndirectSegments;
    const indirect = Math.min(Number.isSafeInteger(offer) ? offer : 0, frontMax);
    return `persistent=${info.persistent} indirect-segments=${indirect} queues=${info.queues} ring-pages=${info.ringPages}`;
  }
}
