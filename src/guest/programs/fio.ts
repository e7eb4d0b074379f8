/**
 * `builtin:fio`: a disk load generator with verification, on the guest's first disk.
 *
 *   extra = "rw=randread bs=4k iodepth=32 size=256M runtime=10 verify=crc32c"
 *
 * (options: guest/fio/args.ts). It finds its disk in the store (`device/vbd/51712` = xvda,
 * else the lowest-numbered vbd) and uses the kernel's BlkFront for it (guest/devices.ts
 * probes every vbd at boot; without start info, no kernel frontend exists and fio brings up
 * its own), runs the job, prints ONE JSON line on the console and powers off:
 *
 *   {"job":"fio","rw":"randread","bs":4096,"iodepth":32,"size":...,"elapsed_s":...,
 *    "read":{"ios":..,"bytes":..,"iops":..,"mbps":..,"lat_us":{"mean":..,"p50":..,"p99":..,"max":..}},
 *    "write":{...},"errors":0,"verify":"ok","verified":...}
 *
 * A verify failure or an I/O error still prints the line (with "failure"), then shuts the
 * domain down with reason crash and a message naming the offset. Bad arguments crash at
 * once with a message naming the bad word.
 *
 * The logic takes a `FioEnv` (platform, store client, console, shutdown) rather than the
 * kernel's context, so it can run wherever a store connection exists: the builtin entry
 * opens it with `platform.openStore()`; tests and `xenpv bench block` run it in their own
 * guest worker (guest/fio/guest-worker.ts) with a store bridged over a MessagePort.
 */
import { XenpvError } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import { BlkBuffer, BlkFront, type BlkFrontOptions } from '../../devices/blk/index.js';
import { XsClient } from '../../xenstore/client/index.js';
import { parseFioArgs, type FioJob } from '../fio/args.js';
import { runFio, type FioBuffer, type FioDisk, type FioResult } from '../fio/job.js';
import { kernelDisk } from '../devices.js';
import type { GuestContext, ShutdownName } from '../program.js';

export interface FioEnv {
  readonly platform: Platform;
  readonly store: XsClient;
  readonly domid: number;
  /** One console line. */
  log(line: string): void;
  /** Shut the domain down (the kernel's ctx.shutdown). */
  shutdown(reason: ShutdownName, message: string): Promise<void>;
}

/** xvda's `virtual-device` number (202 << 8). */
export const VDEV_XVDA = 51712;

/** The frontend directory of the guest's first disk. */
export async function firstDiskPath(store: XsClient, domid: number): Promise<string> {
  const dir = `/local/domain/${domid}/device/vbd`;
  const ids = (await store.directory(dir).catch(() => [] as string[])).filter((d) => /^\d+$/.test(d)).map(Number);
  if (ids.length === 0) throw new XenpvError('ENODEV', `fio: no disk (nothing under ${dir})`);
  const id = ids.includes(VDEV_XVDA) ? VDEV_XVDA : Math.min(...ids);
  return `${dir}/${id}`;
}

/** A connected BlkFront as fio's disk; buffers are BlkBuffers (zero copy where the frontend can). */
export function blkDisk(front: BlkFront): FioDisk {
  const info = front.info;
  return {
    sectors: info.sectors,
    sectorSize: info.sectorSize,
    readOnly: info.readOnly,
    read: (sector, buf) => front.read(sector, buf as BlkBuffer),
    write: (sector, buf) => front.write(sector, buf as BlkBuffer),
    // Completions by callback, io_submit-style: no promise per I/O (fio's libaio engine).
    submit: (write, sector, buf, done, tag) => front.submit(write ? 'write' : 'read', sector, buf as BlkBuffer, done, tag),
    // fio's buffers serve every request of the job: kept granted, they need no copy or map.
    alloc: (bytes): FioBuffer => front.allocBuffer(bytes, { persistent: true }),
    free: (buf) => (buf as BlkBuffer).free(),
  };
}

/** Bring up the first disk. `frontOptions` are for benchmarks (feature sets); the default is BlkFront's. */
export async function openFirstDisk(env: FioEnv, frontOptions: BlkFrontOptions = {}): Promise<BlkFront> {
  const path = await firstDiskPath(env.store, env.domid);
  const front = new BlkFront(env.platform, env.store, path, { ...frontOptions, log: (m) => env.log(`blkfront: ${m}`) });
  try {
    await front.start();
  } catch (err) {
    await front.dispose(1000);
    throw err;
  }
  return front;
}

/** Run one job on a connected disk and print its JSON line; a failure shuts the domain down. */
export async function runJobAndReport(env: FioEnv, front: BlkFront, job: FioJob): Promise<FioResult> {
  const result = await runFio(blkDisk(front), job);
  env.log(JSON.stringify(result));
  if (result.failure !== undefined) await env.shutdown('crash', `fio: ${result.failure}`);
  return result;
}

/** Wait up to `ms` for `get()` to give a value. */
async function waitFor<T>(get: () => T | undefined, ms: number): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (let v = get(); ; v = get()) {
    if (v !== undefined || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The disk of `builtin:fio`. A kernel that boots with start info probes every vbd itself
 * (guest/devices.ts) as the program starts, and a second BlkFront on the same directory would
 * fight the kernel's over the xenbus state: so use the kernel's, once it has probed and
 * connected it. Without start info there is no kernel frontend: bring up our own.
 */
async function acquireDisk(env: FioEnv, kernelProbes: boolean, frontOptions: BlkFrontOptions): Promise<{ front: BlkFront; owned: boolean }> {
  if (!kernelProbes) return { front: await openFirstDisk(env, frontOptions), owned: true };
  const path = await firstDiskPath(env.store, env.domid);
  const devid = Number(path.slice(path.lastIndexOf('/') + 1));
  const front = await waitFor(() => kernelDisk(devid), CONNECT_TIMEOUT_MS);
  if (front === undefined) throw new XenpvError('ENODEV', `fio: the kernel did not probe ${path}`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new XenpvError('ETIMEDOUT', `fio: ${path} did not connect`)), CONNECT_TIMEOUT_MS);
  });
  try {
    await Promise.race([front.whenConnected(), timeout]);
  } finally {
    clearTimeout(timer);
  }
  return { front, owned: false };
}

const CONNECT_TIMEOUT_MS = 10_000;

/** The whole program on an env: parse, find xvda, run, report; close the disk if it is ours. */
export async function runFioProgram(env: FioEnv, argv: readonly string[], kernelProbes = false, frontOptions: BlkFrontOptions = {}): Promise<FioResult> {
  const job = parseFioArgs(argv);
  const { front, owned } = await acquireDisk(env, kernelProbes, frontOptions);
  try {
    return await runJobAndReport(env, front, job);
  } finally {
    if (owned) await front.close(2000);
  }
}

export default async function fio(ctx: GuestContext): Promise<void> {
  // Arguments first: a typo crashes with its message before anything else happens.
  parseFioArgs(ctx.argv);
  const store = new XsClient(await ctx.platform.openStore());
  try {
    await runFioProgram(
      {
        platform: ctx.platform,
        store,
        domid: ctx.domid,
        log: (line) => ctx.log(line),
        shutdown: (reason, message) => ctx.shutdown(reason, message),
      },
      ctx.argv,
      ctx.platform.startInfo !== undefined,
      ctx.blkfront,
    );
  } finally {
    store.close();
  }
}
