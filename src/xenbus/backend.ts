/**
 * The backend bus for one device class (Linux xenbus_probe_backend): watches
 * `/local/domain/<be>/backend/<class>` and `@releaseDomain`, creates a `BackendDevice` for
 * each `<fe>/<devid>` directory that appears and destroys it when the directory goes.
 *
 * Watch events are hints: they mark what to rescan (a device, a frontend domain, or all),
 * and one scan at a time looks at what is there now. The set of pending targets is bounded;
 * past the bound it collapses into one full rescan.
 */
import { type DomId } from '../base/index.js';
import type { XsClient, XsWatch } from '../xenstore/client/index.js';
import { SPECIAL_RELEASE } from '../xenstore/protocol/index.js';
import { BackendDevice, errMsg, type BackendDeviceOptions, type BackendDriver } from './backend-device.js';
import { readState } from './state.js';
import { backendPath, componentsBelow, domainHome, errorPath, frontendPath, parseDevid, parseDomid, type DeviceId } from './paths.js';
import { Reactor, pumpWatch } from './reactor.js';

export interface BackendWatcherOptions extends BackendDeviceOptions {
  readonly backDomid: DomId;
  /** The class under `backend/` (`vbd`, `qdisk`, `vif`, `console`). */
  readonly backClass: string;
  /** The class under the guest's `device/`; default the same as `backClass`. */
  readonly frontClass?: string;
  /**
   * Devices this bus leaves alone (default: none). The console bus skips devid 0: libxl
   * writes console 0's backend dir there, but console 0 is not a xenbus device.
   */
  readonly accept?: (dev: DeviceId) => boolean;
  readonly log?: (msg: string) => void;
}

const ALL = '*';
const MAX_PENDING = 256;
const ENOENT_OK = (err: unknown): string[] => {
  if ((err as { code?: string }).code === 'ENOENT') return [];
  throw err;
};

export class BackendWatcher {
  readonly base: string;
  private readonly frontClass: string;
  private readonly devices = new Map<string, BackendDevice>();
  private readonly pending = new Set<string>();
  private readonly scanner: Reactor;
  private readonly watches: XsWatch[] = [];
  private readonly log: (msg: string) => void;
  private closed = false;

  constructor(
    private readonly client: XsClient,
    private readonly driver: BackendDriver,
    private readonly options: BackendWatcherOptions,
  ) {
    this.base = `${domainHome(options.backDomid)}/backend/${options.backClass}`;
    this.frontClass = options.frontClass ?? options.backClass;
    this.log = options.log ?? (() => undefined);
    this.scanner = new Reactor(() => this.scan(), (err) => this.log(`${this.base}: scan: ${errMsg(err)}`));
  }

  /** Register the watches (their first events trigger the initial scan). */
  async start(): Promise<void> {
    const tree = this.client.watch(this.base, undefined, { capacity: 64 });
    const release = this.client.watch(SPECIAL_RELEASE, undefined, { capacity: 4 });
    this.watches.push(tree, release);
    pumpWatch(tree, (path) => this.onTreeEvent(path));
    pumpWatch(release, () => {
      // A domain died: its nodes are gone; every device re-reads its frontend's state.
      for (const d of this.devices.values()) d.kick();
    });
    await Promise.all([tree.ready, release.ready]);
  }

  /** Device records by backend path (finished ones included until their directory goes). */
  get instances(): ReadonlyMap<string, BackendDevice> {
    return this.devices;
  }

  /** Resolves once no scan and no device step is running or pending. */
  async idle(): Promise<void> {
    for (let i = 0; i < 8; i++) {
      await this.scanner.idle();
      await Promise.all([...this.devices.values()].map((d) => d.idle()));
      if (this.pending.size === 0) return;
    }
  }

  private onTreeEvent(path: string): void {
    const c = componentsBelow(this.base, path);
    if (c === undefined) return;
    if (c.length === 0) this.mark(ALL);
    else if (c.length === 1) this.mark(c[0]!);
    else if (c.length === 2 || (c.length === 3 && (c[2] === 'state' || c[2] === 'online'))) this.mark(`${c[0]}/${c[1]}`);
  }

  private mark(target: string): void {
    if (this.closed) return;
    if (this.pending.size >= MAX_PENDING) {
      this.pending.clear();
      target = ALL;
    }
    this.pending.add(target);
    this.scanner.kick();
  }

  private async scan(): Promise<void> {
    while (this.pending.size > 0 && !this.closed) {
      const targets = this.pending.has(ALL) ? [ALL] : [...this.pending];
      this.pending.clear();
      for (const t of targets) {
        if (t === ALL) await this.scanAll();
        else if (!t.includes('/')) await this.scanFront(t);
        else await this.check(t);
      }
    }
  }

  private async scanAll(): Promise<void> {
    const fronts = await this.client.directory(this.base).catch(ENOENT_OK);
    const seen = new Set<string>();
    for (const fe of fronts) {
      for (const key of await this.devidsOf(fe)) seen.add(key);
    }
    for (const key of [...this.devices.keys()]) if (!seen.has(key)) await this.drop(key);
    for (const key of seen) await this.check(key);
  }

  private async scanFront(fe: string): Promise<void> {
    const keys = new Set(await this.devidsOf(fe));
    for (const key of [...this.devices.keys()]) if (key.startsWith(`${fe}/`) && !keys.has(key)) await this.drop(key);
    for (const key of keys) await this.check(key);
  }

  private async devidsOf(fe: string): Promise<string[]> {
    if (parseDomid(fe) === undefined) return [];
    const ids = await this.client.directory(`${this.base}/${fe}`).catch(ENOENT_OK);
    return ids.filter((id) => parseDevid(id) !== undefined).map((id) => `${fe}/${id}`);
  }

  /** Bring the record for `<fe>/<devid>` in line with its directory. */
  private async check(key: string): Promise<void> {
    const [fe, id] = key.split('/') as [string, string];
    const frontDomid = parseDomid(fe);
    const devid = parseDevid(id);
    if (frontDomid === undefined || devid === undefined || this.closed) return;
    const dev: DeviceId = { frontClass: this.frontClass, backClass: this.options.backClass, frontDomid, backDomid: this.options.backDomid, devid };
    if (this.options.accept?.(dev) === false) return;
    const own = await readState(this.client, backendPath(dev));
    const existing = this.devices.get(key);
    if (own.kind === 'missing') return this.drop(key);
    if (existing !== undefined) {
      // The toolstack re-created a directory whose device had finished: a new device.
      const recreated = existing.phase === 'finished' && own.kind === 'state' && own.state === 1;
      if (!recreated) return existing.kick();
      await this.drop(key);
    }
    await this.create(key, dev);
  }

  private async create(key: string, dev: DeviceId): Promise<void> {
    const backPath = backendPath(dev);
    const device = new BackendDevice(
      {
        client: this.client,
        dev,
        backPath,
        frontPath: frontendPath(dev),
        errorPath: errorPath(backPath, dev.backDomid),
        log: this.log,
      },
      this.driver,
      this.options,
    );
    this.devices.set(key, device);
    await device.start().catch((err: unknown) => this.log(`${backPath}: start: ${errMsg(err)}`));
  }

  private async drop(key: string): Promise<void> {
    const d = this.devices.get(key);
    if (d === undefined) return;
    this.devices.delete(key);
    await d.destroy();
  }

  /**
   * Stop. `graceful`: each live device disconnects and writes Closed (a backend that goes
   * away cleanly); otherwise only local resources are released, as if the process died.
   */
  async close(options: { graceful?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches) w.dispose();
    this.scanner.dispose();
    await this.scanner.idle();
    const all = [...this.devices.values()];
    this.devices.clear();
    await Promise.all(all.map((d) => (options.graceful === true ? d.shutdown() : d.destroy())));
  }
}
