/**
 * What a PV guest kernel does at boot besides running its program (Linux's xenbus,
 * hvc_xen, blkfront/netfront probing and the `control/shutdown` watcher):
 *
 * - the store: one ring (start info's store page + port), shared by every client (store-ring.ts);
 * - console 0: a `ConsoleFront` on start info's console page and port; `ctx.log` lines go there;
 * - devices: a frontend for each `device/vbd/<devid>` (BlkFront) and `device/vif/<devid>`
 *   (NetFront) that appears, disposed when its directory goes (hot-unplug);
 * - shutdown requests: `control/feature-{poweroff,reboot}` advertised; a write of
 *   `poweroff`/`halt`/`reboot` to `control/shutdown` is acknowledged by writing "" (as Linux's
 *   `shutdown_handler` does) and answered with SCHEDOP_shutdown and that reason.
 */
import type { Disposable, EvtchnPort, Frame } from '../base/index.js';
import { errorCode } from '../base/index.js';
import { BlkFront, type BlkFrontOptions } from '../devices/blk/index.js';
import { ConsoleFront } from '../devices/console/index.js';
import { NetFront } from '../devices/net/front.js';
import type { SimPlatform } from '../hv/sim/platform.js';
import { XsClient, type XsWatch } from '../xenstore/client/index.js';
import { domainHome, parseDevid } from '../xenbus/paths.js';
import { pumpWatch, Reactor } from '../xenbus/reactor.js';
import type { ShutdownName } from './program.js';
import { StoreRing } from './store-ring.js';

export interface GuestDevicesOptions {
  /** The guest asked to stop (a `control/shutdown` request). */
  readonly onShutdownRequest: (reason: ShutdownName) => void;
  /** Kernel messages (device errors); they also go to the console. */
  readonly log: (line: string) => void;
  /** blkfront's parameters from the command line (cmdline.ts), for every disk probed. */
  readonly blkfront?: BlkFrontOptions;
}

type Front = { kind: 'vbd'; front: BlkFront } | { kind: 'vif'; front: NetFront };

/** The kernel's NICs, for network programs that want eth0 without a second frontend. */
const sharedNics = new Map<number, NetFront>();
/** The kernel's disks, for disk programs (builtin:fio): a second BlkFront on one vbd would fight this one. */
const sharedDisks = new Map<number, BlkFront>();

/** The kernel's BlkFront for `device/vbd/<devid>`, if it probed one (started, maybe not connected yet). */
export function kernelDisk(devid: number): BlkFront | undefined {
  return sharedDisks.get(devid);
}

/** Every disk the kernel probed, by devid (a shell lists them). */
export function kernelDisks(): ReadonlyMap<number, BlkFront> {
  return sharedDisks;
}

/** Every NIC the kernel probed, by devid. */
export function kernelNics(): ReadonlyMap<number, NetFront> {
  return sharedNics;
}

let sharedConsole: ConsoleFront | undefined;

/**
 * Console 0 of this guest (hvc0), for programs that read their console (a shell):
 * `kernelConsole()?.onData(bytes => ...)` for input; output goes through `ctx.log` or `write`.
 */
export function kernelConsole(): ConsoleFront | undefined {
  return sharedConsole;
}

/** The kernel's NetFront for `device/vif/<devid>`, if it started one (started, maybe not up yet). */
export function kernelNic(devid: number): NetFront | undefined {
  return sharedNics.get(devid);
}

const SHUTDOWN_REQUESTS: Readonly<Record<string, ShutdownName>> = { poweroff: 'poweroff', halt: 'poweroff', reboot: 'reboot' };

export class GuestDevices implements Disposable {
  readonly ring: StoreRing;
  readonly store: XsClient;
  readonly console: ConsoleFront;
  readonly disks = new Map<number, BlkFront>();
  private readonly fronts = new Map<string, Front>();
  private readonly watches: XsWatch[] = [];
  private readonly reactor: Reactor;
  private readonly home: string;
  private closed = false;

  constructor(
    private readonly platform: SimPlatform,
    private readonly options: GuestDevicesOptions,
  ) {
    const si = platform.startInfo!;
    this.home = domainHome(platform.domid);
    this.ring = new StoreRing(platform);
    this.store = new XsClient(this.ring.openClient());
    this.console = ConsoleFront.attach(platform.memory.page(si.consoleFrame as Frame), (h) =>
      platform.events.adopt(si.consolePort as EvtchnPort, h),
    );
    sharedConsole = this.console;
    this.reactor = new Reactor(() => this.scan(), (err) => this.options.log(`xenbus: ${String(err)}`));
  }

  /** Advertise features, start watching control and devices (returns once the watches are set). */
  async start(): Promise<void> {
    await this.store.write(`${this.home}/control/feature-poweroff`, '1').catch(() => undefined);
    await this.store.write(`${this.home}/control/feature-reboot`, '1').catch(() => undefined);
    const control = this.store.watch(`${this.home}/control/shutdown`, 'guest-shutdown', { capacity: 4 });
    pumpWatch(control, () => void this.checkShutdown());
    const devices = this.store.watch(`${this.home}/device`, 'guest-devices', { capacity: 64 });
    pumpWatch(devices, () => this.reactor.kick());
    this.watches.push(control, devices);
    await Promise.all(this.watches.map((w) => w.ready));
  }

  /** A line on console 0. */
  write(text: string): void {
    if (!this.closed) this.console.write(text);
  }

  private async checkShutdown(): Promise<void> {
    const path = `${this.home}/control/shutdown`;
    const value = await this.store.readString(path).catch(() => '');
    const reason = SHUTDOWN_REQUESTS[value];
    if (reason === undefined || this.closed) return;
    await this.store.write(path, '').catch(() => undefined);
    this.options.onShutdownRequest(reason);
  }

  private async list(kind: 'vbd' | 'vif'): Promise<number[]> {
    try {
      const names = await this.store.directory(`${this.home}/device/${kind}`);
      return names.flatMap((n) => parseDevid(n) ?? []);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return [];
      throw err;
    }
  }

  /** Probe new devices, release removed ones. */
  private async scan(): Promise<void> {
    if (this.closed) return;
    const present = new Set<string>();
    for (const kind of ['vbd', 'vif'] as const) for (const d of await this.list(kind)) present.add(`${kind}/${d}`);
    for (const [key, f] of [...this.fronts]) {
      if (present.has(key)) continue;
      this.fronts.delete(key);
      void this.release(key, f);
    }
    for (const key of present) if (!this.fronts.has(key)) this.probe(key);
  }

  private probe(key: string): void {
    const [kind, devid] = [key.split('/')[0] as 'vbd' | 'vif', Number(key.split('/')[1])];
    const path = `${this.home}/device/${key}`;
    if (kind === 'vbd') {
      const front = new BlkFront(this.platform, this.store, path, { ...this.options.blkfront, log: (m) => this.options.log(m) });
      this.fronts.set(key, { kind, front });
      this.disks.set(devid, front);
      sharedDisks.set(devid, front);
      front.start().catch((err: unknown) => this.options.log(`${path}: ${String(err)}`));
    } else {
      const front = new NetFront({ platform: this.platform, store: this.store, frontendPath: path });
      this.fronts.set(key, { kind, front });
      sharedNics.set(devid, front);
      front.start().catch((err: unknown) => this.options.log(`${path}: ${String(err)}`));
    }
  }

  private async release(key: string, f: Front): Promise<void> {
    const devid = Number(key.split('/')[1]);
    if (f.kind === 'vbd') {
      this.disks.delete(devid);
      if (sharedDisks.get(devid) === f.front) sharedDisks.delete(devid);
      await f.front.dispose(1000).catch(() => undefined);
    } else {
      sharedNics.delete(devid);
      await f.front.dispose(1000).catch(() => undefined);
    }
  }

  /** Guest shutdown: close every frontend (backends follow and unmap), then the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches) w.dispose();
    this.reactor.dispose();
    await this.reactor.idle();
    await Promise.all([...this.fronts].map(([k, f]) => this.release(k, f)));
    this.fronts.clear();
    if (sharedConsole === this.console) sharedConsole = undefined;
    this.console.dispose();
    this.store.close();
    this.ring.close();
  }

  dispose(): void {
    void this.close();
  }
}
