/**
 * dom0's CPU while a guest works: the demo's host process is dom0 and the guests at once, so
 * "dom0 CPU" is every thread of the process except the guests' vCPU workers.
 *
 * Node 20 names every thread "node", so a guest's thread cannot be told by name. What the
 * demo knows is *when* threads appeared: the threads alive before a measurement's guests are
 * created are dom0's (main thread: xenstored, blkback, netback, bridge, console daemon; the
 * libuv pool doing blkback's pread/pwrite; V8's helpers). A `Dom0CpuSampler` sums those
 * threads' CPU (`/proc/self/task/<tid>/schedstat`) every PERIOD_MS, so the CPU of any
 * time window — the one a guest's job reports — can be read off afterwards, excluding the
 * guest's boot and device handshake around it.
 */
import { readdirSync } from 'node:fs';
import { schedstatNs } from '../../guest/fio/cpu.js';

/** The process's thread ids; empty where /proc is not there (not Linux). */
export function threadIds(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number).filter((n) => Number.isSafeInteger(n));
  } catch {
    return [];
  }
}

/** Nanoseconds on a CPU of `tids` so far (a thread gone since counts nothing); undefined without /proc. */
export function threadsCpuNs(tids: readonly number[]): number | undefined {
  if (tids.length === 0) return undefined;
  let sum = 0;
  let seen = 0;
  for (const tid of tids) {
    const ns = schedstatNs(`/proc/self/task/${tid}/schedstat`);
    if (ns === undefined) continue;
    sum += ns;
    seen++;
  }
  return seen === 0 ? undefined : sum;
}

interface Sample {
  readonly at: number;
  readonly ns: number;
}

/**
 * The sampling period. Each sample reads one /proc file per thread, on the host's main thread,
 * whose CPU counts as dom0's: at 10 ms the block bench's three samplers were about 40% of that
 * thread's CPU (2-3% of a core taken from the path being measured). A window's two ends are
 * interpolated between samples, a few percent of a 1.5 s job at most.
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
  /** Subtracted from every sum: the CPU threads added later had used before they were added. */
  private offset = 0;

  /** Start sampling the threads alive now (call before creating the guests being measured). */
  constructor(tids: readonly number[] = threadIds()) {
    this.tids = [...tids];
    if (threadsCpuNs(tids) === undefined) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), PERIOD_MS);
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
    const before = threadsCpuNs([tid]);
    if (before === undefined) return;
    this.tids.push(tid);
    this.offset += before;
  }

  sample(): void {
    const total = threadsCpuNs(this.tids);
    const ns = total === undefined ? undefined : total - this.offset;
    if (ns === undefined || this.samples.length >= MAX_SAMPLES) return;
    this.samples.push({ at: performance.now(), ns });
  }

  /** dom0 CPU nanoseconds between two `performance.now()` times (linear between samples). */
  between(t0: number, t1: number): number | undefined {
    this.sample();
    const a = this.at(t0);
    const b = this.at(t1);
    return a === undefined || b === undefined ? undefined : Math.max(0, b - a);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private at(t: number): number | undefined {
    const s = this.samples;
    if (s.length === 0 || t < s[0]!.at - PERIOD_MS) return undefined;
    if (t <= s[0]!.at) return s[0]!.ns;
    for (let i = 1; i < s.length; i++) {
      const hi = s[i]!;
      if (t > hi.at) continue;
      const lo = s[i - 1]!;
      const f = hi.at === lo.at ? 1 : (t - lo.at) / (hi.at - lo.at);
      return lo.ns + f * (hi.ns - lo.ns);
    }
    return s[s.length - 1]!.ns;
  }
}
