/**
 * dom0's CPU while a guest works: the demo's host process is dom0 and the guests at once, so
 * "dom0 CPU" is every thread of the process except the guests' vCPU workers.
 *
 * Node 20 names every thread "node", so a guest's thread cannot be told by name. What the
 * demo knows is *when* threads appeared: the threads alive before a measurement's guests are
 * created are dom0's (main thread: xenstored, blkback, netback, bridge, console daemon; the
 * libuv pool doing blkback's pread/pwrite; V8's helpers). A `Dom0CpuSampler` sums those
 * threads' CPU and time waiting for a CPU (`/proc/self/task/<tid>/schedstat`), and if asked
 * their sleeps (`status`), every PERIOD_MS, so the figures of any time window — the one a
 * guest's job reports — can be read off afterwards, excluding the guest's boot and device
 * handshake around it.
 */
import { readdirSync } from 'node:fs';
import { readSchedstat, readSwitches } from '../../hv/sim/thread-sched.js';

/** The process's thread ids; empty where /proc is not there (not Linux). */
export function threadIds(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number).filter((n) => Number.isSafeInteger(n));
  } catch {
    return [];
  }
}

/** What the scheduler counted for a set of threads, summed. */
interface Account {
  readonly ns: number;
  /** Runnable but waiting for a CPU. */
  readonly runqNs: number;
  /** Sleeps (voluntary context switches): counted only by a sampler asked to (`countSleeps`). */
  readonly sleeps: number;
}

interface Sample extends Account {
  readonly at: number;
}

/** The account of `tids` so far (a thread gone since counts nothing); undefined without /proc. */
function threadsAccount(tids: readonly number[], countSleeps: boolean): Account | undefined {
  let ns = 0;
  let runqNs = 0;
  let sleeps = 0;
  let seen = 0;
  for (const tid of tids) {
    // A thread that has ended counts nothing more.
    const dir = `/proc/self/task/${tid}`;
    const t = readSchedstat(dir);
    const w = countSleeps && t !== undefined ? readSwitches(dir) : undefined;
    if (t === undefined || (countSleeps && w === undefined)) continue;
    ns += t.cpuNs;
    runqNs += t.runqNs;
    sleeps += w?.sleeps ?? 0;
    seen++;
  }
  return seen === 0 ? undefined : { ns, runqNs, sleeps };
}

/** Where threads were over a window: percent of it on a CPU and waiting for one, sleeps a second. */
export interface Occupancy {
  readonly busyPercent: number;
  readonly runqWaitPercent: number;
  /** Undefined where sleeps were not counted. */
  readonly sleepsPerS: number | undefined;
}

/** The Occupancy of what threads counted (ns, and sleeps where known) over a window of `spanMs`; undefined for an empty window. */
export function occupancyOf(grown: { readonly ns: number; readonly runqNs: number; readonly sleeps: number | undefined }, spanMs: number): Occupancy | undefined {
  if (!(spanMs > 0)) return undefined;
  const spanNs = spanMs * 1e6;
  return { busyPercent: (100 * grown.ns) / spanNs, runqWaitPercent: (100 * grown.runqNs) / spanNs, sleepsPerS: grown.sleeps === undefined ? undefined : (grown.sleeps * 1e9) / spanNs };
}

/** An Occupancy as a bench figure's extras, each named by `key` (busy_percent, runq_wait_percent, sleeps_per_s); {} when not measured. */
export function occupancyExtras(o: Occupancy | undefined, key: (what: 'busy_percent' | 'runq_wait_percent' | 'sleeps_per_s') => string): Record<string, number> {
  if (o === undefined) return {};
  return {
    [key('busy_percent')]: o.busyPercent,
    [key('runq_wait_percent')]: o.runqWaitPercent,
    ...(o.sleepsPerS === undefined ? {} : { [key('sleeps_per_s')]: o.sleepsPerS }),
  };
}

/**
 * The default sampling period (the demo's live figures). Each sample reads one /proc file per
 * thread, on the host's main thread, whose CPU counts as dom0's: at 10 ms the block bench's
 * three samplers were about 40% of that thread's CPU (2-3% of a core taken from the path being
 * measured). A window's two ends are interpolated between samples.
 */
const PERIOD_MS = 25;
/** At most ~10 minutes of samples: bounded even if a caller forgets to stop. */
const MAX_SAMPLES = 60_000;

/** A threaded disk backend's OS threads: its disk thread (when known) and its ring threads. */
export function diskBackendTids(back: { readonly osTid: number | undefined; readonly ringOsTids: readonly number[] }): number[] {
  return [...(back.osTid === undefined ? [] : [back.osTid]), ...back.ringOsTids];
}

export class Dom0CpuSampler {
  private readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly tids: number[];
  /** Subtracted from every sum: what threads added later had counted before they were added. */
  private offset: Account = { ns: 0, runqNs: 0, sleeps: 0 };

  /**
   * Start sampling the threads alive now (call before creating the guests being measured).
   * `countSleeps` reads each thread's status file too, a second file per thread and sample:
   * for samplers of a thread or two (bench block's disk thread and guest), not all of dom0.
   */
  constructor(
    tids: readonly number[] = threadIds(),
    private readonly countSleeps = false,
    /** How often to sample; a window measured over seconds needs no more than a few a second. */
    private readonly periodMs = PERIOD_MS,
  ) {
    this.tids = [...tids];
    if (threadsAccount(tids, countSleeps) === undefined) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), periodMs);
    this.timer.unref();
  }

  get measurable(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Count a dom0 thread created after the sampler (a disk backend's worker, which the
   * toolstack starts with the guest); its CPU counts from now on.
   */
  addThread(tid: number): void {
    if (this.timer === undefined || this.tids.includes(tid)) return;
    const before = threadsAccount([tid], this.countSleeps);
    if (before === undefined) return;
    this.tids.push(tid);
    const o = this.offset;
    this.offset = { ns: o.ns + before.ns, runqNs: o.runqNs + before.runqNs, sleeps: o.sleeps + before.sleeps };
  }

  sample(): void {
    const total = threadsAccount(this.tids, this.countSleeps);
    if (total === undefined || this.samples.length >= MAX_SAMPLES) return;
    const o = this.offset;
    this.samples.push({ at: performance.now(), ns: total.ns - o.ns, runqNs: total.runqNs - o.runqNs, sleeps: total.sleeps - o.sleeps });
  }

  /** dom0 CPU nanoseconds between two `performance.now()` times (linear between samples). */
  between(t0: number, t1: number): number | undefined {
    this.sampleAfter(t1);
    return this.grown('ns', t0, t1);
  }

  /** Where the threads were between two `performance.now()` times; undefined where not measured. */
  occupancy(t0: number, t1: number): Occupancy | undefined {
    this.sampleAfter(t1);
    const ns = this.grown('ns', t0, t1);
    const runqNs = this.grown('runqNs', t0, t1);
    if (ns === undefined || runqNs === undefined) return undefined;
    return occupancyOf({ ns, runqNs, sleeps: this.countSleeps ? this.grown('sleeps', t0, t1) : undefined }, t1 - t0);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** A sample now unless one already lies at or after `t` (a window's figures asked in turn read /proc once). */
  private sampleAfter(t: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last === undefined || last.at < t) this.sample();
  }

  /** How `field` grew between two times, from the samples taken so far. */
  private grown(field: keyof Account, t0: number, t1: number): number | undefined {
    const a = this.at(field, t0);
    const b = this.at(field, t1);
    return a === undefined || b === undefined ? undefined : Math.max(0, b - a);
  }

  private at(field: keyof Account, t: number): number | undefined {
    const s = this.samples;
    if (s.length === 0 || t < s[0]!.at - this.periodMs) return undefined;
    if (t <= s[0]!.at) return s[0]![field];
    for (let i = 1; i < s.length; i++) {
      const hi = s[i]!;
      if (t > hi.at) continue;
      const lo = s[i - 1]!;
      const f = hi.at === lo.at ? 1 : (t - lo.at) / (hi.at - lo.at);
      return lo[field] + f * (hi[field] - lo[field]);
    }
    return s[s.length - 1]![field];
  }
}
