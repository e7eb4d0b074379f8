/**
 * vCPU placement on host CPUs (xl's `cpus=`, `xl vcpu-pin`, `xl vcpu-list`): a vCPU is a
 * thread, so its hard affinity is Linux's per-thread CPU mask (sched_setaffinity on its task
 * id; 0 names the calling thread), and where it runs and how long it ran are in
 * /proc/self/task/<tid>/stat. Pinning needs the native bridge (koffi); without it, or off
 * Linux, setting refuses with the reason and reading answers "every CPU".
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { cpus } from 'node:os';
import { XenpvError } from '../../base/index.js';
import { loadLibc } from '../native-libc.js';

/** cpu_set_t: 1024 CPUs. */
const MASK_BYTES = 128;

type MaskCall = (tid: number, size: number, mask: Uint8Array) => number;
interface Calls {
  readonly set: MaskCall;
  readonly get: MaskCall;
  readonly errno: () => number;
}

let bound: Calls | string | undefined;

function calls(): Calls | string {
  if (bound !== undefined) return bound;
  const libc = loadLibc('CPU affinity');
  if (typeof libc === 'string') return (bound = libc);
  bound = {
    set: libc.lib.func('int sched_setaffinity(int pid, size_t size, void *mask)') as MaskCall,
    get: libc.lib.func('int sched_getaffinity(int pid, size_t size, void *mask)') as MaskCall,
    errno: libc.errno,
  };
  return bound;
}

/** This thread's Linux task id (per-thread CPU accounting, pinning); undefined elsewhere. */
export function osThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isSafeInteger(tid) ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** Why threads cannot be pinned to separate CPUs here, or undefined when they can. */
export function pinningUnavailable(): string | undefined {
  const c = calls();
  if (typeof c === 'string') return c;
  return hostCpus() < 2 ? 'the host has one CPU' : undefined;
}

/** The host's CPU ids: 0 .. hostCpus()-1. */
export function hostCpus(): number {
  return cpus().length;
}

/** Every host CPU: an unpinned thread's mask. */
export function allCpus(): number[] {
  return Array.from({ length: hostCpus() }, (_, i) => i);
}

/** Pin thread `tid` (0: the calling thread) to `cpus`; throws XenpvError (EINVAL, EOPNOTSUPP) with the reason. */
export function setThreadAffinity(tid: number, cpuIds: readonly number[]): void {
  const c = calls();
  if (typeof c === 'string') throw new XenpvError('EOPNOTSUPP', `cannot pin threads: ${c}`);
  const mask = new Uint8Array(MASK_BYTES);
  for (const cpu of cpuIds) {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= MASK_BYTES * 8) throw new XenpvError('EINVAL', `no CPU ${cpu}`);
    mask[cpu >>> 3]! |= 1 << (cpu & 7);
  }
  if (c.set(tid, MASK_BYTES, mask) !== 0) {
    const errno = c.errno();
    // EINVAL: no CPU of the mask is online or allowed (cgroup cpuset); ESRCH: the thread is gone.
    throw new XenpvError(errno === 3 ? 'ESRCH' : 'EINVAL', `sched_setaffinity(${tid}, [${cpuIds.join(',')}]) failed (errno ${errno})`);
  }
}

/** The CPUs thread `tid` may run on; every host CPU where that cannot be read. */
export function threadAffinity(tid: number): number[] {
  const c = calls();
  const mask = new Uint8Array(MASK_BYTES);
  if (typeof c === 'string' || c.get(tid, MASK_BYTES, mask) !== 0) return allCpus();
  const out: number[] = [];
  for (let cpu = 0; cpu < MASK_BYTES * 8; cpu++) if ((mask[cpu >>> 3]! & (1 << (cpu & 7))) !== 0) out.push(cpu);
  return out;
}

export interface ThreadPlace {
  /** The CPU it last ran on. */
  readonly cpu: number;
  /** Running or runnable now (Linux state R), not waiting. */
  readonly running: boolean;
  /** CPU time used, seconds. */
  readonly cpuSeconds: number;
}

/** Where thread `tid` of this process runs, from /proc; undefined when it is gone or not Linux. */
export function threadPlace(tid: number): ThreadPlace | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // proc(5): state is field 3, utime 14, stime 15, processor 39 (f[0] is field 3).
  const ticks = Number(f[11]) + Number(f[12]);
  return { cpu: Number(f[36]), running: f[0] === 'R', cpuSeconds: ticks / 100 };
}
