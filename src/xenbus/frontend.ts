/**
 * The frontend bus for one device class in a guest (Linux xenbus_probe_frontend): watches
 * `/local/domain/<self>/device/<class>`, creates a `FrontendDevice` for each `<devid>` that
 * appears, removes it when its directory goes.
 *
 * The device's `backend` and `backend-id` keys are in the guest's own directory; they are
 * still checked for shape (the backend path must be `/local/domain/<backend-id>/backend/
 * <class>/<self>/<devid>`) since they decide which domain we grant pages to.
 */
import { XenbusStateUnknown, type XenbusStateValue } from '../abi/io/xenbus.js';
import type { DomId } from '../base/index.js';
import type { XsClient } from '../xenstore/client/index.js';
import { ALL, DeviceBus } from './device-bus.js';
import { errMsg } from './device-machine.js';
import { FrontendDevice, type FrontendDeviceOptions, type FrontendDriver } from './frontend-device.js';
import { readOptional } from './keys.js';
import { componentsBelow, domainHome, errorPath, parseBackendPath, parseDevid, parseDomid } from './paths.js';
import { deviceFatal, readState, stateValue } from './state.js';

export interface FrontendWatcherOptions extends FrontendDeviceOptions {
  readonly selfDomid: DomId;
  readonly frontClass: string;
  readonly log?: (msg: string) => void;
}

/** Devices and rescan targets are keyed by devid. */
export class FrontendWatcher extends DeviceBus<number, number, FrontendDevice> {
  constructor(
    client: XsClient,
    private readonly driver: FrontendDriver,
    private readonly options: FrontendWatcherOptions,
  ) {
    super(client, `${domainHome(options.selfDomid)}/device/${options.frontClass}`, options.log);
  }

  async start(): Promise<void> {
    await this.follow(this.base, 64, (path) => this.onEvent(path)).ready;
  }

  private onEvent(path: string): void {
    const c = componentsBelow(this.base, path);
    if (c === undefined) return;
    if (c.length === 0) return this.mark(ALL);
    const devid = parseDevid(c[0]!);
    if (devid !== undefined && (c.length === 1 || (c.length === 2 && ['state', 'backend', 'backend-id'].includes(c[1]!)))) {
      this.mark(devid);
    }
  }

  protected scanTarget(devid: number): Promise<void> {
    return this.check(devid);
  }

  protected async scanAll(): Promise<void> {
    const names = await this.listOrEmpty(this.base);
    const ids = new Set(names.map(parseDevid).filter((d): d is number => d !== undefined));
    for (const d of [...this.devices.keys()]) if (!ids.has(d)) await this.drop(d);
    for (const d of ids) await this.check(d);
  }

  private async check(devid: number): Promise<void> {
    if (this.closed) return;
    const frontPath = `${this.base}/${devid}`;
    const own = await readState(this.client, frontPath);
    if (own.kind === 'missing') return this.drop(devid);
    const existing = this.devices.get(devid);
    if (existing !== undefined) return existing.kick();
    await this.create(devid, frontPath, stateValue(own) ?? XenbusStateUnknown);
  }

  private async create(devid: number, frontPath: string, prior: XenbusStateValue): Promise<void> {
    const err = errorPath(frontPath, this.options.selfDomid);
    const backend = await this.backendOf(devid, frontPath);
    if (typeof backend === 'string') {
      this.log(`${frontPath}: ${backend}`);
      await deviceFatal(this.client, frontPath, err, backend, 22);
      return;
    }
    const device = new FrontendDevice(
      { client: this.client, selfDomid: this.options.selfDomid, frontClass: this.options.frontClass, devid, frontPath, ...backend, errorPath: err, log: this.log },
      this.driver,
      this.options,
    );
    this.devices.set(devid, device);
    await device.start(prior).catch((e: unknown) => this.log(`${frontPath}: start: ${errMsg(e)}`));
  }

  /** The backend named by our keys, or why it cannot be used. */
  private async backendOf(devid: number, frontPath: string): Promise<{ backPath: string; backDomid: DomId } | string> {
    const backPath = await readOptional(this.client, frontPath, 'backend');
    const idRaw = await readOptional(this.client, frontPath, 'backend-id');
    if (backPath === undefined || idRaw === undefined) return 'no backend/backend-id keys';
    const backDomid = parseDomid(idRaw);
    const parsed = parseBackendPath(backPath);
    if (backDomid === undefined || parsed === undefined) return `bad backend '${backPath.slice(0, 80)}' (id '${idRaw.slice(0, 8)}')`;
    if (parsed.backDomid !== backDomid || parsed.frontDomid !== this.options.selfDomid || parsed.devid !== devid) {
      return `backend '${backPath}' does not match backend-id ${backDomid}, domain ${this.options.selfDomid}, device ${devid}`;
    }
    return { backPath, backDomid };
  }

  /** A close that is not graceful tells the driver why (it is not a removal). */
  protected override destroyOnClose(d: FrontendDevice): Promise<void> {
    return d.destroy('shutdown');
  }
}
