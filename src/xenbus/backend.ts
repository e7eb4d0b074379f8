/**
 * The backend bus for one device class (Linux xenbus_probe_backend): watches
 * `/local/domain/<be>/backend/<class>` and `@releaseDomain`, creates a `BackendDevice` for
 * each `<fe>/<devid>` directory that appears and destroys it when the directory goes.
 *
 * A rescan target is a device (`<fe>/<devid>`), a frontend domain (`<fe>`), or all
 * (device-bus.ts bounds and coalesces them).
 */
import { type DomId } from '../base/index.js';
import type { XsClient } from '../xenstore/client/index.js';
import { SPECIAL_RELEASE } from '../xenstore/protocol/index.js';
import { BackendDevice, errMsg, type BackendDeviceOptions, type BackendDriver } from './backend-device.js';
import { ALL, DeviceBus } from './device-bus.js';
import { readState } from './state.js';
import { backendPath, componentsBelow, domainHome, errorPath, frontendPath, parseDevid, parseDomid, type DeviceId } from './paths.js';

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

/** Devices are keyed `<fe>/<devid>`; a target is such a key or a bare `<fe>`. */
export class BackendWatcher extends DeviceBus<string, string, BackendDevice> {
  private readonly frontClass: string;

  constructor(
    client: XsClient,
    private readonly driver: BackendDriver,
    private readonly options: BackendWatcherOptions,
  ) {
    super(client, `${domainHome(options.backDomid)}/backend/${options.backClass}`, options.log);
    this.frontClass = options.frontClass ?? options.backClass;
  }

  /** Register the watches (their first events trigger the initial scan). */
  async start(): Promise<void> {
    const tree = this.follow(this.base, 64, (path) => this.onTreeEvent(path));
    const release = this.follow(SPECIAL_RELEASE, 4, () => {
      // A domain died: its nodes are gone; every device re-reads its frontend's state.
      for (const d of this.devices.values()) d.kick();
    });
    await Promise.all([tree.ready, release.ready]);
  }

  private onTreeEvent(path: string): void {
    const c = componentsBelow(this.base, path);
    if (c === undefined) return;
    if (c.length === 0) this.mark(ALL);
    else if (c.length === 1) this.mark(c[0]!);
    else if (c.length === 2 || (c.length === 3 && (c[2] === 'state' || c[2] === 'online'))) this.mark(`${c[0]}/${c[1]}`);
  }

  protected scanTarget(target: string): Promise<void> {
    return target.includes('/') ? this.check(target) : this.scanFront(target);
  }

  protected async scanAll(): Promise<void> {
    const fronts = await this.listOrEmpty(this.base);
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
    const ids = await this.listOrEmpty(`${this.base}/${fe}`);
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
}
