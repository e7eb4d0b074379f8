/**
 * What the OS accounts of the sim's threads (every vCPU and dom0 backend is one; affinity.ts
 * places them): CPU time of the calling thread, from `/proc/thread-self/schedstat` (Linux):
 * its first field is the nanoseconds this thread has spent on a CPU. Undefined where that file
 * does not exist (not Linux), so callers report "not measured" instead of a made-up number.
 *
 * `threadSched` adds the rest of the scheduler's account of the thread: how long it was
 * runnable but waiting for a CPU, and how often it slept or was preempted. On a machine with
 * fewer cores than busy threads those say why a pipeline of threads runs slower than the sum
 * of its CPU times suggests (bench net's per-thread figures).
 */
import { readFileSync } from 'node:fs';

/** The calling thread's /proc directory; another thread's is `/proc/self/task/<tid>`. */
const SELF = '/proc/thread-self';

export function threadCpuNs(): number | undefined {
  return readSchedstat(SELF)?.cpuNs;
}

/** The scheduler's account of one thread, cumulative since it started. */
export interface ThreadSched {
  /** Nanoseconds on a CPU (schedstat's first field). */
  readonly cpuNs: number;
  /** Nanoseconds runnable but waiting for a CPU (schedstat's second field). */
  readonly runqNs: number;
  /** Times it gave up its CPU to wait for something (`voluntary_ctxt_switches`): its sleeps. */
  readonly sleeps: number;
  /** Times it was taken off a CPU while it could still run (`nonvoluntary_ctxt_switches`). */
  readonly preempted: number;
}

/** The calling thread's account, or undefined where the OS does not give one. */
export function threadSched(): ThreadSched | undefined {
  const schedstat = readText(SELF, 'schedstat');
  const status = schedstat === undefined ? undefined : readText(SELF, 'status');
  return schedstat === undefined || status === undefined ? undefined : parseSched(schedstat, status);
}

/** Time on a CPU and waiting for one of the thread whose /proc directory is `dir`; undefined where unreadable (a thread gone, not Linux). */
export function readSchedstat(dir: string): Pick<ThreadSched, 'cpuNs' | 'runqNs'> | undefined {
  const text = readText(dir, 'schedstat');
  return text === undefined ? undefined : parseSchedstat(text);
}

/** Sleeps and preemptions of the thread whose /proc directory is `dir`; undefined where unreadable. */
export function readSwitches(dir: string): Pick<ThreadSched, 'sleeps' | 'preempted'> | undefined {
  const text = readText(dir, 'status');
  return text === undefined ? undefined : parseSwitches(text);
}

function readText(dir: string, file: string): string | undefined {
  try {
    return readFileSync(`${dir}/${file}`, 'latin1');
  } catch {
    return undefined;
  }
}

/** A ThreadSched from the text of a thread's `schedstat` and `status` files; undefined if either lacks a field. */
export function parseSched(schedstat: string, status: string): ThreadSched | undefined {
  const times = parseSchedstat(schedstat);
  const switches = parseSwitches(status);
  return times === undefined || switches === undefined ? undefined : { ...times, ...switches };
}

/** Time on a CPU and waiting for one, from a `schedstat` file's text. */
export function parseSchedstat(schedstat: string): Pick<ThreadSched, 'cpuNs' | 'runqNs'> | undefined {
  const [cpu, runq] = schedstat.trim().split(/\s+/, 2).map(Number);
  return isCount(cpu) && isCount(runq) ? { cpuNs: cpu, runqNs: runq } : undefined;
}

/** Sleeps and preemptions, from a `status` file's text. */
export function parseSwitches(status: string): Pick<ThreadSched, 'sleeps' | 'preempted'> | undefined {
  const sleeps = statusField(status, 'voluntary_ctxt_switches');
  const preempted = statusField(status, 'nonvoluntary_ctxt_switches');
  return sleeps === undefined || preempted === undefined ? undefined : { sleeps, preempted };
}

function statusField(status: string, name: string): number | undefined {
  const m = new RegExp(`^${name}:\\s*(\\d+)$`, 'm').exec(status);
  const n = m === null ? NaN : Number(m[1]);
  return isCount(n) ? n : undefined;
}

function isCount(n: number | undefined): n is number {
  return n !== undefined && Number.isSafeInteger(n) && n >= 0;
}

/** How a thread's account grew over a span, in milliseconds and counts (fields absent where unknown). */
export interface SchedDelta {
  readonly cpuMs?: number;
  readonly runqMs?: number;
  readonly sleeps?: number;
  readonly preempted?: number;
}

/** What the calling thread's account grew by since `from`, in milliseconds and counts; {} where unknown. */
export function schedSince(from: ThreadSched | undefined): SchedDelta {
  const now = threadSched();
  if (from === undefined || now === undefined) return {};
  return {
    cpuMs: (now.cpuNs - from.cpuNs) / 1e6,
    runqMs: (now.runqNs - from.runqNs) / 1e6,
    sleeps: now.sleeps - from.sleeps,
    preempted: now.preempted - from.preempted,
  };
}
