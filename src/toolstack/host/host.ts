/**
 * The host: the hypervisor model and dom0's services in one process — xenstored (its socket
 * in the run dir, guest rings through INTRODUCE), the console daemon, the bridges, the
 * block and network backends — and the toolstack operations on top (what libxl offers xl).
 *
 * In-process use (`xenpv demo`, tests): `const host = await Host.start({ runDir })`, then
 * `create`, `list`, `destroy`, ...; `await host.close()` destroys every guest and stops.
 * The daemon (`xenpv host start`) is this class behind a control socket (rpc-server.ts).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_watchdog } from '../../abi/sched.js';
import { XenpvError, errorCode, type DomId } from '../../base/index.js';
import { ConsoleDaemon } from '../../devices/console/index.js';
import { BridgeSet } from '../../devices/net/bridge/index.js';
import { frameMemoryOf } from '../../devices/net/index.js';
import { Hypervisor } from '../../hv/sim/hypervisor.js';
import { GUEST_KERNEL_URL } from '../../guest/entry.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { connectInProcess, startXenstored, type RunningXenstored } from '../../xenstore/server/index.js';
import type { DomainConfig, ShutdownAction } from '../config/index.js';
import { createDomain, destroyDomain, type CreateOptions, type Domain, type DomainEnv } from '../domain/domain.js';
import type { BackendThreads, BlkBackFeatureOptions } from '../domain/disk-thread.js';
import { connectLocal, ringMapperFor } from './store.js';
import { HostDevices } from './host-devices.js';
import { HostUplinks, type UplinkSpec } from './uplinks.js';
import { domainRow, hostInfo, type DomainRow, type HostInfo } from './views.js';
import { vcpuPin, vcpuRows, type VcpuRow } from './vcpus.js';

export interface HostOptions {
  /** Where the xenstored socket, console logs (and, for the daemon, pid/log/control) live. */
  readonly runDir: string;
  /** Listen on `<runDir>/xenstored.sock` (default true). */
  readonly storeSocket?: boolean;
  /** Upper bound of guest + dom0 memory (bytes, at most 4 GiB; default 2 GiB). */
  readonly maxMachineBytes?: number;
  /**
   * What every disk backend offers its frontend, host-wide, the way Linux blkback's module
   * parameters (`xen_blkback.max_queues`, `max_ring_page_order`, `feature_persistent`) are:
   * default BlkBack's own (everything on). `xenpv bench block` uses it for its "plain" PV figures.
   */
  readonly blkBack?: BlkBackFeatureOptions;
  /** Bridge uplinks to Linux TAP interfaces (`xenpv host start --uplink xenbr0=tap:xpv0`). */
  readonly uplinks?: readonly UplinkSpec[];
  readonly log?: (line: string) => void;
}

export type ShutdownRequest = 'poweroff' | 'reboot';

/** xl's names for dom0. */
function isDom0(ref: string | number): boolean {
  return String(ref) === '0' || ref === 'Domain-0';
}

const MAX_QUICK_RESTARTS = 5;

export class Host {
  readonly domains = new Map<number, Domain>();
  readonly devices: HostDevices;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly busy = new Set<number>();
  private readonly destroying = new Map<number, Promise<void>>();
  private readonly lastUsage = new Map<number, { activeMs: number; idleMs: number }>();
  private readonly quickRestarts = new Map<string, number>();
  private closed = false;

  private constructor(
    readonly options: HostOptions,
    readonly hv: Hypervisor,
    readonly xs: RunningXenstored,
    readonly store: XsClient,
    readonly consoles: ConsoleDaemon,
    readonly bridges: BridgeSet,
    readonly uplinks: HostUplinks,
  ) {
    this.devices = new HostDevices(this);
    this.hv.on('shutdown', (domid: number) => void this.onShutdown(domid));
    this.sweepTimer = setInterval(() => this.sweep(), 100);
    this.sweepTimer.unref();
  }

  static async start(options: HostOptions): Promise<Host> {
    await mkdir(options.runDir, { recursive: true });
    const hv = new Hypervisor({ vcpuEntry: GUEST_KERNEL_URL, maxMachineBytes: options.maxMachineBytes ?? 2 ** 31, maxDomains: 64 });
    hv.dom0.events.startAsync();
    const log = options.log ?? (() => undefined);
    const xs = await startXenstored({
      socketPath: options.storeSocket === false ? null : join(options.runDir, 'xenstored.sock'),
      ringMapper: ringMapperFor(hv.dom0),
      domainExists: (d) => hv.info(d) !== undefined,
      log: (m) => log(`xenstored: ${m}`),
    });
    const store = connectLocal(xs.daemon, 0);
    await store.write('/local/domain/0/name', 'Domain-0');
    await store.write('/local/domain/0/domid', '0');
    const consoles = new ConsoleDaemon({ platform: hv.dom0, client: connectLocal(xs.daemon, 0), logDir: options.runDir, log });
    await consoles.start();
    // Every bridge's queued frames in dom0's pages (each bridge gives its pages back when disposed).
    const frameMemory = frameMemoryOf(hv.dom0);
    const bridges = new BridgeSet(frameMemory === undefined ? {} : { frameMemory });
    const uplinks = await HostUplinks.start(bridges, options.uplinks ?? [], log);
    return new Host(options, hv, xs, store, consoles, bridges, uplinks);
  }

  get env(): DomainEnv {
    return { hv: this.hv, platform: this.hv.dom0, store: this.store, bridges: this.bridges, kernelFallback: 'builtin:idle', threads: this.threads };
  }

  /** Disk backends run in dom0 worker threads, one per guest disk (DESIGN.md §3). */
  private get threads(): BackendThreads {
    return {
      hv: this.hv,
      connectStore: () => connectInProcess(this.xs.daemon, 0),
      log: (line) => this.options.log?.(line),
      ...(this.options.blkBack === undefined ? {} : { backOptions: this.options.blkBack }),
    };
  }

  /** A domain by numeric id or by name (xl's domain-id argument). Throws ESRCH. */
  lookup(ref: string | number): Domain {
    const s = String(ref);
    const byId = /^\d+$/.test(s) ? this.domains.get(Number(s)) : undefined;
    const d = byId ?? [...this.domains.values()].find((x) => x.config.name === s);
    if (d === undefined) throw new XenpvError('ESRCH', `domain ${s} not found`, { domain: s });
    return d;
  }

  async create(config: DomainConfig, opts: CreateOptions = {}): Promise<Domain> {
    this.checkOpen();
    if (config.name === 'Domain-0' || [...this.domains.values()].some((d) => d.config.name === config.name)) {
      throw new XenpvError('EEXIST', `domain with name "${config.name}" already exists`, { name: config.name });
    }
    const d = await createDomain(this.env, config, opts);
    this.domains.set(d.domid, d);
    return d;
  }

  /** Destroy a domain; resolves once everything it held is released (concurrent calls share one). */
  async destroy(ref: string | number): Promise<void> {
    const d = this.lookup(ref);
    let p = this.destroying.get(d.domid);
    if (p === undefined) {
      p = (async () => {
        await destroyDomain(this.env, d);
        await this.consoles.idle();
      })().finally(() => {
        // Only now: `shutdown -w` and `list` see the domain until it is really gone.
        if (this.domains.get(d.domid) === d) this.domains.delete(d.domid);
        this.lastUsage.delete(d.domid);
        this.destroying.delete(d.domid);
      });
      this.destroying.set(d.domid, p);
    }
    await p;
  }

  pause(ref: string | number): void {
    this.hv.pause(this.lookup(ref).domid);
  }

  unpause(ref: string | number): void {
    this.hv.unpause(this.lookup(ref).domid);
  }

  /**
   * xl shutdown/reboot: write the request to `control/shutdown` (the guest watches it). With
   * `waitMs`, resolve once the domain is gone (or has shut down and is preserved).
   */
  async shutdown(ref: string | number, request: ShutdownRequest, waitMs?: number): Promise<void> {
    const d = this.lookup(ref);
    await this.store.write(`/local/domain/${d.domid}/control/shutdown`, request);
    if (waitMs === undefined) return;
    const end = Date.now() + waitMs;
    while (Date.now() < end) {
      const cur = this.domains.get(d.domid);
      if (cur !== d) return;
      // Shut down and its action taken, but kept (on_poweroff=preserve): done too.
      if (d.handled && !this.busy.has(d.domid) && this.hv.info(d.domid)?.state === 'shutdown') return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new XenpvError('ETIMEDOUT', `domain ${d.config.name} did not shut down within ${waitMs} ms`);
  }

  /** No shutdown action (destroy, restart) in progress. */
  get quiescent(): boolean {
    return this.busy.size === 0 && this.destroying.size === 0;
  }

  /**
   * xl list's rows. CPU time: dom0's is the host process's; a guest's is the time its vCPU
   * threads were not idle. A guest counts as blocked ('b') when its vCPUs were busy less
   * than half the time since the previous sample (xl samples the scheduler the same way).
   */
  list(): DomainRow[] {
    const dom0 = this.hv.info(0)!;
    const cpu = process.cpuUsage();
    return [domainRow(dom0, (cpu.user + cpu.system) / 1e6), ...[...this.domains.values()].flatMap((d) => {
      const info = this.hv.info(d.domid);
      if (info === undefined) return [];
      const now = this.hv.vcpuTime(d.domid);
      const prev = this.lastUsage.get(d.domid) ?? { activeMs: 0, idleMs: 0 };
      this.lastUsage.set(d.domid, now);
      const busy = now.activeMs - prev.activeMs;
      const total = busy + now.idleMs - prev.idleMs;
      return [domainRow(info, now.activeMs / 1000, d, total > 0 && busy / total < 0.5)];
    })];
  }

  info(): HostInfo {
    return hostInfo(this);
  }

  /** `xl vcpu-list [DOM]`: the vCPUs of one domain, or of Domain-0 and every guest. */
  vcpuList(ref?: string | number): VcpuRow[] {
    const dom0 = { domid: 0, name: 'Domain-0' };
    if (ref !== undefined && isDom0(ref)) return vcpuRows(this.hv, [dom0]);
    const guests = ref === undefined ? [...this.domains.values()] : [this.lookup(ref)];
    return vcpuRows(this.hv, [...(ref === undefined ? [dom0] : []), ...guests.map((d) => ({ domid: d.domid, name: d.config.name }))]);
  }

  /** `xl vcpu-pin DOM VCPU|all CPULIST`. */
  vcpuPin(ref: string | number, vcpu: string, cpulist: string): void {
    vcpuPin(this.hv, isDom0(ref) ? 0 : this.lookup(ref).domid, vcpu, cpulist);
  }

  /**
   * The domain's console 0 as a byte stream. Right after create the console daemon may not
   * have picked the domain up yet (it learns of it through @introduceDomain): wait for it.
   */
  async consoleAttach(ref: string | number, timeoutMs = 3000): Promise<Duplex> {
    const d = this.lookup(ref);
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        return this.consoles.attach(d.domid);
      } catch (err) {
        if (errorCode(err) !== 'ENOENT' || Date.now() > end || this.domains.get(d.domid) !== d) throw err;
      }
      await this.consoles.idle();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Check every domain for a shutdown not yet acted on (the event may come before the state). */
  private sweep(): void {
    for (const d of this.domains.values()) if (!d.handled && this.hv.info(d.domid)?.state === 'shutdown') void this.onShutdown(d.domid);
  }

  /** on_poweroff / on_reboot / on_crash / on_watchdog (xl_vmcontrol.c's handle_domain_death). */
  private async onShutdown(domid: number): Promise<void> {
    const d = this.domains.get(domid);
    if (d === undefined || d.handled || this.busy.has(domid) || this.closed) return;
    const info = this.hv.info(domid);
    if (info?.state !== 'shutdown') return;
    d.handled = true;
    this.busy.add(domid);
    try {
      const action = actionFor(d.config, info.shutdownCode ?? SHUTDOWN_poweroff);
      this.options.log?.(`dom${domid} (${d.config.name}) shut down: ${info.shutdownReason ?? '?'}${info.message ? ` (${info.message})` : ''}, action ${action}`);
      if (action === 'preserve') return;
      await this.destroy(domid);
      if (action === 'restart' || action === 'rename-restart' || action === 'coredump-restart') {
        if (this.restartLoop(d)) return;
        await this.create(d.config, { baseDir: d.baseDir });
      }
    } catch (err) {
      this.options.log?.(`dom${domid}: shutdown action failed: ${String(err)}`);
    } finally {
      this.busy.delete(domid);
    }
  }

  /**
   * A guest that dies within a second of every start (a crash loop with on_crash=restart)
   * is restarted at most MAX_QUICK_RESTARTS times in a row, then left destroyed.
   */
  private restartLoop(d: Domain): boolean {
    const name = d.config.name;
    const quick = Date.now() - d.createdAt < 1000 ? (this.quickRestarts.get(name) ?? 0) + 1 : 0;
    this.quickRestarts.set(name, quick);
    if (quick <= MAX_QUICK_RESTARTS) return false;
    this.quickRestarts.delete(name);
    this.options.log?.(`${name}: restarted ${MAX_QUICK_RESTARTS} times within a second of starting; not restarting again`);
    return true;
  }

  private checkOpen(): void {
    if (this.closed) throw new XenpvError('ESHUTDOWN', 'host is stopping');
  }

  /** Destroy every guest, stop the services, release dom0. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const d of [...this.domains.values()]) {
      await this.destroy(d.domid).catch((err: unknown) => this.options.log?.(`destroy dom${d.domid}: ${String(err)}`));
    }
    await this.consoles.close();
    this.store.close();
    await this.xs.close();
    await this.uplinks.close();
    this.bridges.dispose();
    await this.hv.dispose();
  }
}

export function actionFor(cfg: DomainConfig, code: number): ShutdownAction {
  switch (code) {
    case SHUTDOWN_reboot:
      return cfg.onReboot;
    case SHUTDOWN_crash:
      return cfg.onCrash;
    case SHUTDOWN_watchdog:
      return cfg.onWatchdog;
    default:
      return cfg.onPoweroff;
  }
}

export type { Domain, DomId };
