/**
 * `builtin:shell`: a small shell on the guest's console (hvc0), for `xenpv console DOM` or
 * `xenpv create -c`. The logic is in guest/shell/ (line discipline, commands, formats); this
 * file boots it on the kernel's devices:
 *
 *   extra = "ip=10.0.0.2/24 [gw=10.0.0.254] [vif=0] [csum=offload]"
 *
 * At boot it waits (bounded) for the kernel's frontends to connect and prints one line per
 * disk and the NIC's address, then the prompt: so once the prompt shows, the disks answer
 * and eth0 answers pings. The network options are net-common's (the address of vif `vif=`,
 * default 10.0.0.<domid>/24); the other vifs are listed without an address. Input typed
 * during boot is held (up to 4 KiB) and read when the prompt comes.
 *
 * Keys are a tty's in canonical mode (guest/shell/line-discipline.ts); Ctrl+C cancels the
 * line or the running command; Ctrl+D on an empty line does NOT power off (this shell is
 * the guest's only program, as bash's `ignoreeof`): it says to type `poweroff`.
 */
import type { BlkFront } from '../../devices/blk/index.js';
import { formatMac } from '../../devices/net/bridge/mac.js';
import type { NetFront } from '../../devices/net/front.js';
import { formatIpv4 } from '../net/addr.js';
import { kernelConsole, kernelDisk, kernelDisks, kernelNic, kernelNics } from '../devices.js';
import type { GuestContext } from '../program.js';
import { SECTOR, humanSize, vdevName } from '../shell/format.js';
import { Shell } from '../shell/shell.js';
import type { ShellDisk, ShellNic, ShellWorld } from '../shell/world.js';
import { bringUpEth0, numberOption, options, withNetEnv, type Eth0, type NetProgramEnv } from './net-common.js';

/** How long boot waits for the frontends before showing the prompt anyway. */
const BOOT_WAIT_MS = 10_000;
const HELD_INPUT_BYTES = 4096;
/** How long the prompt waits for earlier output to reach the console ring. */
const DRAIN_MS = 2000;

type Say = (line: string) => void;

async function until<T>(get: () => T | undefined, deadline: number): Promise<T | undefined> {
  for (let v = get(); ; v = get()) {
    if (v !== undefined || performance.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function listDevids(env: NetProgramEnv, kind: 'vbd' | 'vif'): Promise<number[]> {
  const names = await env.store.directory(`/local/domain/${env.domid}/device/${kind}`).catch(() => [] as string[]);
  return names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

async function connectDisk(front: BlkFront, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - performance.now()))));
  await Promise.race([front.whenConnected().catch(() => undefined), late]).finally(() => clearTimeout(timer));
}

/** Wait for each vbd the toolstack gave us; one boot line each, as Linux's blkfront prints. */
async function bootDisks(env: NetProgramEnv, say: Say, deadline: number): Promise<void> {
  for (const devid of await listDevids(env, 'vbd')) {
    const name = vdevName(devid);
    const front = await until(() => kernelDisk(devid), deadline);
    if (front !== undefined) await connectDisk(front, deadline);
    if (front === undefined || !front.connected) {
      say(`${name}: not connected (${front?.state ?? 'not probed'})`);
      continue;
    }
    const i = front.info;
    say(`${name}: ${i.sectors} sectors (${humanSize(i.sectors * SECTOR)}), ${i.readOnly ? 'ro' : 'rw'}`);
  }
}

/** Bring up the configured vif on the kernel's NetFront with an IPv4 stack. */
async function bootNet(env: NetProgramEnv, say: Say, deadline: number): Promise<Eth0 | undefined> {
  const o = options(env.argv);
  const vif = numberOption(o, 'vif', 0, 0, 0xffff);
  if (!(await listDevids(env, 'vif')).includes(vif)) return undefined;
  const name = `eth${[...kernelNics().keys()].sort((a, b) => a - b).indexOf(vif)}`;
  // bringUpEth0 would start a second NetFront on the vif if the kernel had not probed it yet.
  if ((await until(() => kernelNic(vif), deadline)) === undefined) {
    say(`vif ${vif}: not probed by the kernel`);
    return undefined;
  }
  try {
    if (!o.has('uptimeout')) o.set('uptimeout', String(Math.max(1, Math.round(deadline - performance.now()))));
    const eth = await bringUpEth0(env, o);
    say(`${name}: ${formatMac(eth.front.mac)} ${formatIpv4(eth.stack.address)}/${eth.stack.iface.prefix}, link up`);
    return eth;
  } catch (err) {
    say(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

function diskView(devid: number, f: BlkFront): ShellDisk {
  return {
    devid,
    name: vdevName(devid),
    get state() { return f.state; },
    get info() {
      try {
        return f.info;
      } catch {
        return undefined; // before the first connect
      }
    },
    counters: f.counters,
    read: (sector, buf) => f.read(sector, buf),
    write: (sector, buf) => f.write(sector, buf),
    flush: () => f.flush(),
  };
}

function nicView(devid: number, index: number, f: NetFront, eth: Eth0 | undefined): ShellNic {
  return {
    devid,
    name: `eth${index}`,
    get mac() { return f.mac.every((b) => b === 0) ? undefined : formatMac(f.mac); },
    get mtu() { return f.mtu; },
    get state() { return f.broken !== undefined ? `broken: ${f.broken}` : f.linkUp ? 'up' : 'down'; },
    counters: f.counters,
    stack: eth?.front === f ? eth.stack : undefined,
  };
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function realWorld(ctx: GuestContext, eth: Eth0 | undefined, bootedAt: number): ShellWorld {
  const sorted = <T>(m: ReadonlyMap<number, T>): [number, T][] => [...m].sort((a, b) => a[0] - b[0]);
  return {
    hostname: ctx.name,
    domid: ctx.domid,
    bootedAt,
    now: () => performance.now(),
    wallClock: () => new Date(),
    disks: () => sorted(kernelDisks()).map(([d, f]) => diskView(d, f)),
    nics: () => sorted(kernelNics()).map(([d, f], i) => nicView(d, i, f, eth)),
    sleep: abortableSleep,
    shutdown: async (reason, message) => {
      await eth?.close();
      await ctx.shutdown(reason, message);
    },
  };
}

export default async function shell(ctx: GuestContext): Promise<void> {
  const bootedAt = performance.now();
  const hvc0 = kernelConsole();
  if (hvc0 === undefined) throw new Error('builtin:shell: no console (hvc0 comes with the start info)');
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  let sh: Shell | undefined;
  hvc0.onData((bytes) => {
    if (sh !== undefined) return sh.input(bytes);
    const take = bytes.subarray(0, Math.max(0, HELD_INPUT_BYTES - heldBytes));
    heldBytes += take.length;
    if (take.length > 0) held.push(take.slice());
  });
  const say: Say = (line) => void hvc0.write(`${line}\r\n`);
  say(`xenpv shell on ${ctx.name} (domid ${ctx.domid})`);
  await withNetEnv(ctx, async (env) => {
    const deadline = performance.now() + BOOT_WAIT_MS;
    await bootDisks(env, say, deadline);
    const eth = await bootNet(env, say, deadline);
    say(`Type 'help' for the commands.`);
    sh = new Shell(realWorld(ctx, eth, bootedAt), {
      write: (data) => void hvc0.write(data),
      drain: async () => void (await until(() => (hvc0.queued === 0 ? true : undefined), performance.now() + DRAIN_MS)),
    });
    sh.start();
    for (const b of held.splice(0)) sh.input(b);
    // The stack's timers (ARP retries and expiry); frames arrive through netfront's events.
    while (await ctx.running()) {
      eth?.stack.tick();
      await ctx.sleep(50);
    }
  });
}
