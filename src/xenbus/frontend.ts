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
import type { XsClient, XsWatch } from '../xenstore/client/index.js';
import { errMsg } from './backend-device.js';
import { FrontendDevice, type FrontendDeviceOptions, type FrontendDriver } from './frontend-device.js';
import { readOptional } from './keys.js';
import { componentsBelow, domainHome, errorPath, parseBackendPath, parseDevid, parseDomid } from './paths.js';
import { Reactor, pumpWatch } from './reactor.js';
import { deviceFatal, readState, stateValue } from './state.js';

export interface FrontendWatcherOptions extends FrontendDeviceOptions {
  readonly selfDomid: DomId;
  readonly frontClass: string;
  readonly log?: (msg: string) => void;
}

const MAX_PENDING = 256;

export class FrontendWatcher {
  readonly base: string;
  private readonly devices = new Map<number, FrontendDevice>();
  private readonly pending = new Set<number | 'all'>();
  private readonly scanner: Reactor;
  private watch: XsWatch | undefined;
  private readonly log: (msg: string) => void;
  private closed = false;

  constructor(
    private readonly client: XsClient,
    private readonly driver: FrontendDriver,
    private readonly options: FrontendWatcherOptions,
  ) {
    this.base = `${domainHome(options.selfDomid)}/device/${options.frontClass}`;
    this.log = options.log ?? (() => undefined);
    this.scanner = new Reactor(() => this.scan(), (err) => this.log(`${this.base}: scan: ${errMsg(err)}`));
  }

  async start(): Promise<void> {
    this.watch = this.client.watch(this.base, undefined, { capacity: 64 });
    pumpWatch(this.watch, (path) => this.onEvent(path));
    await this.watch.ready;
  }

  get instances(): ReadonlyMap<number, FrontendDevice> {
    return this.devices;
  }

  async idle(): Promise<void> {
    for (let i = 0; i < 8; i++) {
      await this.scanner.idle();
      await Promise.all([...this.devices.values()].map((d) => d.idle()));
      if (this.pending.size === 0) return;
    }
  }

  private onEvent(path: string): void {
    const c = componentsBelow(this.base, path);
    if (c === undefined || this.closed) return;
    const devid = c.length === 0 ? undefined : parseDevid(c[0]!);
    if (c.length === 0 || this.pending.size >= MAX_PENDING) this.pending.add('all');
    else if (devid !== undefined && (c.length === 1 || (c.length === 2 && ['state', 'backend', 'backend-id'].includes(c[1]!)))) {
      this.pending.add(devid);
    } else return;
    this.scanner.kick();
  }

  private async scan(): Promise<void> {
    while (this.pending.size > 0 && !this.closed) {
      const all = this.pending.has('all');
      const targets = [...this.pending].filter((t): t is number => t !== 'all');
      this.pending.clear();
      if (all) await this.scanAll();
      else for (const d of targets) await this.check(d);
    }
  }

  private async scanAll(): Promise<void> {
    const names = await this.client.directory(this.base).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'ENOENT') return [] as string[];
      throw err;
    });
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

  private async drop(devid: number): Promise<void> {
    const d = this.devices.get(devid);
    if (d === undefined) return;
    this.devices.delete(devid);
    await d.destroy('removed');
  }

  /** Stop. `graceful`: each device releases its rings and writes Closed (driver unload). */
  async close(options: { graceful?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watch?.dispose();
    this.scanner.dispose();
    await this.scanner.idle();
    const all = [...this.devices.values()];
    this.devices.clear();
    await Promise.all(all.map((d) => (options.graceful === true ? d.shutdown() : d.destroy('shutdown'))));
  }
}
