/**
 * CPU time of the calling thread, from `/proc/thread-self/schedstat` (Linux): its first
 * field is the nanoseconds this thread has spent on a CPU. Undefined where that file does
 * not exist (not Linux), so callers report "not measured" instead of a made-up number.
 */
import { readFileSync } from 'node:fs';

export function threadCpuNs(): number | undefined {
  return schedstatNs('/proc/thread-self/schedstat');
}

/** First field of a schedstat file (`/proc/self/task/<tid>/schedstat` too). */
export function schedstatNs(path: string): number | undefined {
  try {
    const first = readFileSync(path, 'latin1').split(' ', 1)[0];
    const n = Number(first);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}
