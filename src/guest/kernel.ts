/**
 * The PV guest kernel, first version: the worker entry of one vCPU.
 *
 * Boot: attach to the domain's platform, start the upcall handler (event delivery on the
 * event loop), wait until the toolstack unpauses the domain, run the guest program.
 * Shutdown: the program's return is `poweroff`; a throw (or an event handler's throw) is
 * `crash` with the message; `ctx.shutdown(reason)` is that reason. The reason goes to the
 * hypervisor (SCHEDOP_shutdown), which tells dom0 with VIRQ_DOM_EXC; the vCPU then stops.
 * When the host destroys the domain, the vCPU notices the kill flag and exits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SHUTDOWN } from '../abi/xen.js';
import { sleep } from '../base/index.js';
import { osThreadId, setThreadAffinity } from '../hv/sim/affinity.js';
import { SimPlatform } from '../hv/sim/platform.js';
import type { GuestMessage, VcpuBoot } from '../hv/sim/vcpu-protocol.js';
import { parseKernelCmdline } from './cmdline.js';
import { GuestDevices } from './devices.js';
import { HaltPollGovernor } from './haltpoll.js';
import { resolveProgram, type GuestContext, type ShutdownName } from './program.js';

const boot = workerData as VcpuBoot;
announce();
/** The command line split between the kernel's drivers and the program. */
const cmdline = parseKernelCmdline(boot.extra);
/** Store, console 0, frontends and the shutdown watch (devices.ts), when the builder gave start info. */
let devices: GuestDevices | undefined;
/** vCPU 0's idle governor when the command line turned halt polling on. */
const haltpoll = cmdline.haltpoll === undefined ? undefined : new HaltPollGovernor(cmdline.haltpoll);

function post(m: GuestMessage): void {
  parentPort?.postMessage(m);
}

/** Pin this thread as the config asks (before any guest code runs), and tell the host its task id. */
function announce(): void {
  let pinError: string | undefined;
  if (boot.cpus !== undefined) {
    try {
      setThreadAffinity(0, boot.cpus);
    } catch (err) {
      pinError = describe(err);
    }
  }
  post({ type: 'vcpu-up', osTid: osThreadId(), ...(pinError === undefined ? {} : { pinError }) });
}

function stop(): never {
  process.exit(0);
}

function shutdownNow(platform: SimPlatform, reason: ShutdownName, message?: string): never {
  const code = SHUTDOWN[`SHUTDOWN_${reason}`];
  // The message first: the host must have it by the time it sees the shutdown state.
  post(message === undefined ? { type: 'shutdown', reason: code } : { type: 'shutdown', reason: code, message });
  platform.shutdown(code);
  stop();
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Exit as soon as the host kills the domain (destroy), whatever the program is doing. */
async function watchControl(platform: SimPlatform): Promise<void> {
  for (;;) {
    if (platform.killed) stop();
    await platform.controlChanged(1000);
  }
}

function context(platform: SimPlatform): GuestContext {
  return {
    platform,
    domid: platform.domid,
    vcpu: boot.vcpu,
    name: boot.name,
    args: cmdline.args,
    argv: cmdline.argv,
    blkfront: cmdline.blkfront,
    log: (...parts) => {
      const text = parts.map((p) => (typeof p === 'string' ? p : String(p))).join(' ');
      post({ type: 'console', text });
      devices?.write(`${text}\n`);
    },
    shutdown: (reason, message) => closeDevices().then(() => shutdownNow(platform, reason, message)),
    running: () => platform.whileRunning(),
    sleep,
  };
}

/** Close the frontends (bounded), so backends unmap before the domain stops. */
async function closeDevices(): Promise<void> {
  const d = devices;
  if (d === undefined) return;
  await Promise.race([d.close(), sleep(2000)]);
}

function startDevices(platform: SimPlatform): void {
  if (platform.startInfo === undefined) return;
  const d = new GuestDevices(platform, {
    onShutdownRequest: (reason) => void closeDevices().then(() => shutdownNow(platform, reason)),
    log: (line) => post({ type: 'console', text: line }),
    blkfront: cmdline.blkfront,
  });
  devices = d;
  platform.openStore = () => Promise.resolve(d.ring.openClient());
  // Not awaited: without a store (kernel tests) the program still runs.
  d.start().catch((err: unknown) => post({ type: 'console', text: `xenbus: ${describe(err)}` }));
}

async function main(): Promise<void> {
  let platform: SimPlatform | undefined;
  platform = SimPlatform.attach(boot.platform, {
    onHandlerError: (err, port) => shutdownNow(platform!, 'crash', `event handler of port ${port}: ${describe(err)}`),
    ...(haltpoll === undefined || boot.vcpu !== 0 ? {} : { idlePoll: haltpoll }),
  });
  setInterval(() => {}, 1 << 30); // the vCPU lives until shutdown or destroy
  void watchControl(platform);
  if (boot.vcpu !== 0) return; // secondary vCPUs idle: v1 runs the program on vCPU 0
  platform.events.startAsync();
  try {
    const program = await resolveProgram(boot.kernel);
    if (!(await platform.whileRunning())) stop();
    // Once running, as a kernel prints at boot (a paused domain has printed nothing yet).
    for (const w of cmdline.warnings) post({ type: 'console', text: w });
    if (haltpoll !== undefined) post({ type: 'console', text: `cpuidle: using governor haltpoll (guest_halt_poll_ns=${haltpoll.params.maxNs})` });
    startDevices(platform);
    await program(context(platform));
  } catch (err) {
    shutdownNow(platform, 'crash', describe(err));
  }
  if (haltpoll !== undefined) post({ type: 'console', text: haltpoll.describe() });
  await closeDevices();
  shutdownNow(platform, 'poweroff');
}

void main();
