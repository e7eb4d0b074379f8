/**
 * The old PV path of `xenpv bench block`, kept for its `block.inproc.*` figures (the real
 * layout is block-host.ts): a guest domain whose fio runs in its own worker thread
 * (guest/fio/guest-worker.ts, BlkFront on xvda), BlkBack in dom0 on this (main) thread over
 * the raw image file (page-cache I/O on libuv's pool, storage/node-file.ts), the store
 * in-process. Set up the way the blk tests and libxl do it: domain home, the vbd's two
 * directories, backend probe, frontend handshake.
 */
import type { DomId } from '../base/index.js';
import { BlkBack, type BlkBackOptions, type BlkFeatures, type BlkFrontOptions } from '../devices/blk/index.js';
import { openStorage } from '../devices/blk/storage/open.js';
import type { BlockStorage } from '../devices/blk/storage/types.js';
import { FioGuest } from '../guest/fio/guest-host.js';
import type { FioResult } from '../guest/fio/job.js';
import type { Hypervisor } from '../hv/sim/hypervisor.js';
import { backendPath, type DeviceId } from '../xenbus/paths.js';
import { startTestStore } from '../xenbus/testing.js';
import { addDevice, prepareDomainHome } from '../xenbus/toolstack.js';
import { threadCpuNs } from '../hv/sim/thread-sched.js';
import { processCpuNs } from './block-cpu.js';

export interface PvConfig {
  readonly name: 'plain' | 'tuned';
  readonly back: BlkBackOptions;
  readonly front: BlkFrontOptions;
}

/** blkif without any of its performance features: one queue, one ring page, 11 segments, grants mapped per request. */
export const PLAIN: PvConfig = {
  name: 'plain',
  back: { persistent: false, maxIndirectSegments: 0, maxQueues: 1, maxRingPageOrder: 0 },
  front: { persistent: false, maxIndirectSegments: 0, maxQueues: 1, maxRingPageOrder: 0 },
};

/** Persistent grants + indirect descriptors (a 1 MiB request in one slot) + multi-queue + a 16-page ring. */
export const TUNED: PvConfig = {
  name: 'tuned',
  back: { persistent: true, maxIndirectSegments: 256, maxQueues: 4, maxRingPageOrder: 4 },
  front: { persistent: true, maxIndirectSegments: 256, maxQueues: 4, maxRingPageOrder: 4 },
};

export interface PvJobOutput {
  readonly result: FioResult;
  /** The guest worker thread's CPU over the job. */
  readonly guestCpuNs: number | undefined;
  /** The main thread (blkback) over the job. */
  readonly dom0MainCpuNs: number | undefined;
  /** Every thread but the guest's: blkback + libuv pool + V8 helpers. */
  readonly dom0CpuNs: number | undefined;
}

export interface PvGuest {
  readonly features: BlkFeatures;
  run(args: string): Promise<PvJobOutput>;
}

/** 128 MiB: room for 32 × 1 MiB buffers plus the frontend's granted pages. */
const GUEST_PAGES = 32768;
const VDEV_XVDA = 51712;

/** Bring up a guest with `config` on `imagePath`, hand it to `fn`, tear everything down. */
export async function withPvGuest<T>(hv: Hypervisor, imagePath: string, config: PvConfig, fn: (g: PvGuest) => Promise<T>): Promise<T> {
  const guestId = hv.createDomain({ name: `bench-${config.name}`, memoryPages: GUEST_PAGES, startInfo: false, maxGrantFrames: 256 });
  if (hv.info(guestId)?.state === 'paused') hv.unpause(guestId);
  const store = startTestStore();
  const storage: BlockStorage = await openStorage({ format: 'raw', target: imagePath });
  let back: BlkBack | undefined;
  let guest: FioGuest | undefined;
  try {
    const xs0 = store.connect(0);
    const dev: DeviceId = { frontClass: 'vbd', backClass: 'vbd', frontDomid: guestId, backDomid: 0 as DomId, devid: VDEV_XVDA };
    await prepareDomainHome(xs0, guestId);
    await addDevice(xs0, dev, {
      frontKeys: { 'virtual-device': VDEV_XVDA, 'device-type': 'disk' },
      backKeys: { mode: 'w', params: imagePath, type: 'file', dev: 'xvda', 'device-type': 'disk' },
    });
    back = new BlkBack(hv.dom0, xs0, storage, backendPath(dev), config.back);
    await back.start();
    guest = await FioGuest.start({ platform: hv.platformHandle(guestId), daemon: store.daemon, frontOptions: config.front });
    const g = guest;
    return await fn({ features: g.features!, run: (args) => runJob(g, args) });
  } finally {
    await guest?.close();
    await back?.destroy();
    await storage.close();
    store.close();
    await hv.destroy(guestId);
  }
}

async function runJob(guest: FioGuest, args: string): Promise<PvJobOutput> {
  const main0 = threadCpuNs();
  const proc0 = processCpuNs();
  const out = await guest.run(args);
  const main1 = threadCpuNs();
  const proc = processCpuNs() - proc0;
  if (out.result.failure !== undefined || out.result.errors > 0) {
    throw new Error(`bench block: fio failed in the guest: ${out.result.failure ?? `${out.result.errors} errors`}`);
  }
  return {
    result: out.result,
    guestCpuNs: out.cpuNs,
    dom0MainCpuNs: main0 === undefined || main1 === undefined ? undefined : main1 - main0,
    dom0CpuNs: out.cpuNs === undefined ? undefined : proc - out.cpuNs,
  };
}
