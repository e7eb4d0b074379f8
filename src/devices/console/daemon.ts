/**
 * The console daemon (xenconsoled) for dom0: serves every introduced domain's console 0, and
 * optionally the secondary consoles (`backend/console`), with one `ConsoleBack` each.
 *
 * Discovery as xenconsoled does it, through the store: `@introduceDomain` and
 * `@releaseDomain` trigger a rescan of `/local/domain` (a domain counts while xenstored has
 * it introduced); each served domain's `console` directory is watched, and the console is
 * (re)connected when `ring-ref`/`port` appear or change. The page is mapped through the
 * reserved grant GNTTAB_RESERVED_CONSOLE, as xenconsoled prefers.
 *
 * `attach(domid)` hands out the console as a duplex byte stream (`xenpv console DOM`).
 */
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { GNTTAB_RESERVED_CONSOLE } from '../../abi/grant_table.js';
import { XenpvError, toDomId, type DomId, type EvtchnPort, type GrantRef } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import type { XsClient, XsWatch } from '../../xenstore/client/index.js';
import { SPECIAL_INTRODUCE, SPECIAL_RELEASE } from '../../xenstore/protocol/index.js';
import { BackendWatcher } from '../../xenbus/backend.js';
import { errMsg } from '../../xenbus/backend-device.js';
import { readOptional } from '../../xenbus/keys.js';
import { parseDomid } from '../../xenbus/paths.js';
import { Reactor, pumpWatch } from '../../xenbus/reactor.js';
import { ConsoleBack, type ConsoleBackOptions } from './back.js';
import { consoleBackendDriver } from './back-driver.js';
import { primaryConsolePath, readPrimaryConsole, type ConsoleKeys } from './protocol.js';

export interface ConsoleDaemonOptions {
  /** dom0's platform: grant mapping and event channels. */
  readonly platform: Platform;
  /** A privileged store connection. */
  readonly client: XsClient;
  /** Write `guest-<name>.log` files here (xenconsoled --log=guest --log-dir). */
  readonly logDir?: string;
  readonly timestamps?: boolean;
  readonly overflow?: 'discard' | 'keep';
  readonly rateAllowance?: number;
  readonly ratePeriodMs?: number;
  /** Also serve secondary consoles (`backend/console/<fe>/<n>`). */
  readonly secondary?: boolean;
  /**
   * What to write to a served console 0's `console/tty` (xenconsoled writes its pty's path
   * there). libxl's domain create waits for that key (console_xswait) and fails the create
   * when it does not come, so a daemon serving real Xen's toolstack must set it.
   */
  readonly tty?: (domid: number) => string;
  readonly log?: (msg: string) => void;
}

export interface ConsoleInfo {
  readonly key: string;
  readonly domid: number;
  readonly bad?: string;
  readonly buffered: number;
  readonly discarded: number;
  readonly attached: boolean;
}

/** One served domain's console 0. */
class DomainConsole {
  back: ConsoleBack | undefined;
  private keys: ConsoleKeys | undefined;
  private readonly watch: XsWatch;
  private readonly reactor: Reactor;

  constructor(
    readonly domid: DomId,
    private readonly daemon: ConsoleDaemon,
  ) {
    this.reactor = new Reactor(() => this.step(), (err) => daemon.logMsg(`dom${domid} console: ${errMsg(err)}`));
    this.watch = daemon.client.watch(primaryConsolePath(domid), undefined, { capacity: 4 });
    pumpWatch(this.watch, () => this.reactor.kick());
  }

  ready(): Promise<void> {
    return this.watch.ready;
  }

  idle(): Promise<void> {
    return this.reactor.idle();
  }

  private async step(): Promise<void> {
    let keys: ConsoleKeys | undefined;
    try {
      keys = await readPrimaryConsole(this.daemon.client, this.domid);
    } catch (err) {
      this.daemon.logMsg(`dom${this.domid}: ${errMsg(err)}`);
      return;
    }
    if (keys === undefined) return;
    const same = this.keys !== undefined && this.keys.port === keys.port && this.keys.ringRef === keys.ringRef;
    if (same && this.back !== undefined && !this.back.isClosed) return;
    await this.disconnect();
    this.keys = keys;
    this.back = await this.daemon.openPrimary(this.domid, keys);
    if (this.back !== undefined) await this.daemon.publishTty(this.domid);
  }

  async disconnect(): Promise<void> {
    const b = this.back;
    this.back = undefined;
    await b?.close();
  }

  async close(): Promise<void> {
    this.watch.dispose();
    this.reactor.dispose();
    await this.reactor.idle();
    await this.disconnect();
  }
}

export class ConsoleDaemon {
  readonly client: XsClient;
  private readonly domains = new Map<number, DomainConsole>();
  private readonly secondaries = new Map<string, ConsoleBack>();
  private readonly watches: XsWatch[] = [];
  private readonly scanner: Reactor;
  private busWatcher: BackendWatcher | undefined;
  private closed = false;

  constructor(private readonly options: ConsoleDaemonOptions) {
    this.client = options.client;
    this.scanner = new Reactor(() => this.scan(), (err) => this.logMsg(`scan: ${errMsg(err)}`));
  }

  logMsg(msg: string): void {
    this.options.log?.(`xenconsoled: ${msg}`);
  }

  async start(): Promise<void> {
    for (const special of [SPECIAL_INTRODUCE, SPECIAL_RELEASE]) {
      const w = this.client.watch(special, undefined, { capacity: 4 });
      this.watches.push(w);
      pumpWatch(w, () => this.scanner.kick());
    }
    await Promise.all(this.watches.map((w) => w.ready));
    if (this.options.secondary === true) {
      this.busWatcher = new BackendWatcher(this.client, this.secondaryDriver(), {
        backDomid: this.options.platform.domid,
        backClass: 'console',
        // Console 0's backend dir (libxl writes one at devid 0) is served through `console/`.
        accept: (dev) => dev.devid !== 0,
        ...(this.options.log === undefined ? {} : { log: this.options.log }),
      });
      await this.busWatcher.start();
    }
  }

  /** Which domains are served now: introduced ones under /local/domain, not ourselves. */
  private async scan(): Promise<void> {
    const names = await this.client.directory('/local/domain').catch(() => [] as string[]);
    const live = new Set<number>();
    for (const n of names) {
      const d = parseDomid(n);
      if (d === undefined || d === this.options.platform.domid) continue;
      if (await this.client.isDomainIntroduced(d)) live.add(d);
    }
    for (const [d, rec] of [...this.domains]) {
      if (live.has(d)) continue;
      this.domains.delete(d);
      await rec.close();
    }
    for (const d of live) {
      if (this.domains.has(d) || this.closed) continue;
      const rec = new DomainConsole(d as DomId, this);
      this.domains.set(d, rec);
      await rec.ready();
    }
  }

  /** Map console 0 of `domid` (through its reserved grant) and serve it. */
  async openPrimary(domid: DomId, keys: ConsoleKeys): Promise<ConsoleBack | undefined> {
    if (this.closed) return undefined;
    const options = await this.backOptions(domid, String(domid), '');
    try {
      return ConsoleBack.connect(this.options.platform, domid, GNTTAB_RESERVED_CONSOLE as GrantRef, keys.port as EvtchnPort, {
        ...options,
        capacity: keys.limit,
      });
    } catch (err) {
      this.logMsg(`dom${domid}: cannot connect console: ${errMsg(err)}`);
      return undefined;
    }
  }

  /** `console/tty`, once the console is served (see ConsoleDaemonOptions.tty). */
  async publishTty(domid: DomId): Promise<void> {
    const tty = this.options.tty?.(domid);
    if (tty === undefined) return;
    await this.client.write(`${primaryConsolePath(domid)}/tty`, tty).catch((err) => this.logMsg(`dom${domid}: cannot write console/tty: ${errMsg(err)}`));
  }

  private async backOptions(domid: number, key: string, suffix: string): Promise<ConsoleBackOptions> {
    const base: ConsoleBackOptions = {
      name: key,
      overflow: this.options.overflow ?? 'discard',
      timestamps: this.options.timestamps === true,
      ...(this.options.rateAllowance === undefined ? {} : { rateAllowance: this.options.rateAllowance }),
      ...(this.options.ratePeriodMs === undefined ? {} : { ratePeriodMs: this.options.ratePeriodMs }),
      log: (m) => this.logMsg(m),
    };
    if (this.options.logDir === undefined) return base;
    // xenconsoled names the log after the domain's `name` key (guest-<name>.log).
    const raw = await readOptional(this.client, `/local/domain/${domid}`, 'name').catch(() => undefined);
    const name = raw !== undefined && /^[A-Za-z0-9._-]{1,64}$/.test(raw) ? raw : `dom${domid}`;
    return { ...base, logFile: join(this.options.logDir, `guest-${name}${suffix}.log`) };
  }

  private secondaryDriver(): ReturnType<typeof consoleBackendDriver> {
    const pending = new Map<string, ConsoleBackOptions>();
    const driver = consoleBackendDriver(this.options.platform, {
      options: (ctx) => pending.get(`${ctx.dev.frontDomid}/${ctx.dev.devid}`) ?? {},
      onConnect: (key, back) => this.secondaries.set(key, back),
      onDisconnect: (key) => this.secondaries.delete(key),
    });
    return {
      probe: async (ctx) => {
        const key = `${ctx.dev.frontDomid}/${ctx.dev.devid}`;
        pending.set(key, await this.backOptions(ctx.dev.frontDomid, key, `-console${ctx.dev.devid}`));
        return driver.probe(ctx);
      },
    };
  }

  /** The console being served for `domid` (console 0), or a secondary one (`devid`). */
  console(domid: number, devid?: number): ConsoleBack | undefined {
    if (devid !== undefined) return this.secondaries.get(`${domid}/${devid}`);
    return this.domains.get(domid)?.back;
  }

  /**
   * Attach to a console: read its output (buffered first), write its input. Throws
   * XenpvError ENOENT (no such console), EIO (the guest broke it), EBUSY (already attached).
   */
  attach(domid: number, devid?: number): Duplex {
    if (toDomId(domid) === undefined) throw new XenpvError('EINVAL', `bad domain id ${domid}`);
    const back = this.console(domid, devid);
    const what = devid === undefined ? `dom${domid}` : `dom${domid} console ${devid}`;
    if (back === undefined || back.isClosed) throw new XenpvError('ENOENT', `no console for ${what}`, { domid });
    if (back.bad !== undefined) throw new XenpvError('EIO', `console of ${what}: ${back.bad}`, { domid });
    return back.attach();
  }

  list(): ConsoleInfo[] {
    const out: ConsoleInfo[] = [];
    const info = (key: string, domid: number, b: ConsoleBack): ConsoleInfo => ({
      key,
      domid,
      ...(b.bad === undefined ? {} : { bad: b.bad }),
      buffered: b.buffer.size,
      discarded: b.buffer.discarded,
      attached: b.isAttached,
    });
    for (const [d, rec] of this.domains) if (rec.back !== undefined) out.push(info(String(d), d, rec.back));
    for (const [k, b] of this.secondaries) out.push(info(k, Number(k.split('/')[0]), b));
    return out;
  }

  /** Resolves when no scan or console step is pending. */
  async idle(): Promise<void> {
    await this.scanner.idle();
    await Promise.all([...this.domains.values()].map((d) => d.idle()));
    await this.busWatcher?.idle();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches) w.dispose();
    this.scanner.dispose();
    await this.scanner.idle();
    await this.busWatcher?.close();
    const all = [...this.domains.values()];
    this.domains.clear();
    await Promise.all(all.map((d) => d.close()));
  }
}
