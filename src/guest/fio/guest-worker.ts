/**
 * A guest vCPU worker that runs fio jobs on its first disk, driven by the host
 * (guest-host.ts): the guest side of fio's end-to-end tests and of `xenpv bench block`.
 *
 * It is a guest the way the kernel's vCPU workers are: its own thread, the guest domain's
 * platform (its memory, grant table, event channels), a BlkFront on `device/vbd/…` with
 * the options the host asks for (a benchmark compares feature sets). The store arrives over a
 * MessagePort (store-bridge.ts): no toolstack introduced this domain's store ring. Unlike
 * `builtin:fio`, it stays up between jobs, so a benchmark can run several jobs on one
 * connected disk and read its own CPU time around each.
 *
 * A failed job (verify or I/O) shuts the domain down with reason crash (SCHEDOP_shutdown)
 * and tells the host the message, as the kernel does.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { SHUTDOWN } from '../../abi/xen.js';
import type { BlkFront, BlkFrontOptions } from '../../devices/blk/index.js';
import { SimPlatform, type PlatformHandle } from '../../hv/sim/platform.js';
import { XsClient } from '../../xenstore/client/index.js';
import { openFirstDisk, runJobAndReport, type FioEnv } from '../programs/fio.js';
import { parseFioArgs } from './args.js';
import { threadCpuNs } from '../../hv/sim/thread-sched.js';
import type { HostToGuest, GuestToHost } from './guest-protocol.js';
import { PortStoreTransport } from './store-bridge.js';

export interface FioGuestBoot {
  readonly platform: PlatformHandle;
  readonly store: MessagePort;
  readonly frontOptions: BlkFrontOptions;
}

const boot = workerData as FioGuestBoot;
const post = (m: GuestToHost): void => parentPort!.postMessage(m);
const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function main(): Promise<void> {
  const platform = SimPlatform.attach(boot.platform);
  platform.events.startAsync();
  const store = new XsClient(new PortStoreTransport(boot.store));
  let crashed = false;
  const env: FioEnv = {
    platform,
    store,
    domid: platform.domid,
    log: (line) => post({ type: 'console', line }),
    shutdown: async (reason, message) => {
      crashed = true;
      platform.shutdown(SHUTDOWN[`SHUTDOWN_${reason}`]);
      post({ type: 'shutdown', reason, message });
    },
  };
  let front: BlkFront;
  try {
    front = await openFirstDisk(env, boot.frontOptions);
  } catch (err) {
    post({ type: 'error', message: describe(err) });
    return finish(platform, store, undefined);
  }
  post({ type: 'ready', features: { ...front.info.features }, sectors: front.info.sectors });
  parentPort!.on('message', (m: HostToGuest) => {
    if (m.type === 'close') void finish(platform, store, front);
    else void runOne(env, front, m.argv, () => crashed);
  });
}

async function runOne(env: FioEnv, front: BlkFront, argv: readonly string[], crashed: () => boolean): Promise<void> {
  if (crashed()) return post({ type: 'error', message: 'the domain has shut down' });
  try {
    const job = parseFioArgs(argv);
    const cpu0 = threadCpuNs();
    const result = await runJobAndReport(env, front, job);
    const cpu1 = threadCpuNs();
    post({ type: 'result', result, ...(cpu0 !== undefined && cpu1 !== undefined ? { cpuNs: cpu1 - cpu0 } : {}) });
  } catch (err) {
    post({ type: 'error', message: describe(err) });
  }
}

async function finish(platform: SimPlatform, store: XsClient, front: BlkFront | undefined): Promise<void> {
  await front?.close(2000).catch(() => undefined);
  store.close();
  platform.events.stopAsync();
  platform.dispose();
  post({ type: 'closed', unreclaimedGrants: front?.unreclaimedGrants ?? 0 });
  parentPort!.close();
}

void main();
