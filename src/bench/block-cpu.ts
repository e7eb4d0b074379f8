/**
 * CPU accounting for `xenpv bench block`: where the time of moving a GiB goes.
 *
 * - the calling thread (`threadCpuNs`, /proc/thread-self/schedstat): on the main thread that
 *   is blkback's event loop (ring, grant maps, request decoding, completions);
 * - the process (`process.cpuUsage()`, every thread): minus the guest worker's own CPU (which
 *   the guest measures on its thread) it is dom0's share: blkback plus the libuv pool threads
 *   that do its pread/pwrite, plus V8's helper threads (GC, compiler) — Node 20 names every
 *   thread "node", so they cannot be told apart from the pool by name.
 */
export function processCpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** Seconds of CPU per GiB moved; NaN when nothing moved or the CPU time is unknown. */
export function cpuSecondsPerGiB(cpuNs: number | undefined, bytes: number): number {
  if (cpuNs === undefined || bytes === 0) return NaN;
  return cpuNs / 1e9 / (bytes / 2 ** 30);
}
