/**
 * What the backend bus and the frontend bus share (backend.ts, frontend.ts): a map of device
 * records, a bounded set of rescan targets fed by watch events, one scan at a time, and an
 * orderly close. Which directories are watched and what a target means stay in each bus.
 *
 * Watch events are hints: they mark what to rescan, and one scan at a time looks at what is
 * there now. Past MAX_PENDING targets the set collapses into one full rescan, so a guest
 * writing many nodes costs one scan, never an unbounded queue.
 */
import type { XsClient, XsWatch } from '../xenstore/client/index.js';
import { errMsg } from './device-machine.js';
import { Reactor, pumpWatch } from './reactor.js';

/** The target that means "rescan everything". */
export const ALL = '*';
const MAX_PENDING = 256;

/** The part of a device record a bus drives. */
export interface BusDevice {
  kick(): void;
  idle(): Promise<void>;
  /** Release locally, no store writes (the directory went). */
  destroy(): Promise<void>;
  /** Release and write Closed (a clean stop). */
  shutdown(): Promise<void>;
}

export abstract class DeviceBus<K, T, D extends BusDevice> {
  protected readonly devices = new Map<K, D>();
  private readonly pending = new Set<T | typeof ALL>();
  private readonly scanner: Reactor;
  private readonly watches: XsWatch[] = [];
  protected readonly log: (msg: string) => void;
  protected closed = false;

  constructor(
    protected readonly client: XsClient,
    /** The directory this bus watches. */
    readonly base: string,
    log: ((msg: string) => void) | undefined,
  ) {
    this.log = log ?? (() => undefined);
    this.scanner = new Reactor(() => this.scan(), (err) => this.log(`${this.base}: scan: ${errMsg(err)}`));
  }

  /** Device records by key (finished ones included until their directory goes). */
  get instances(): ReadonlyMap<K, D> {
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

  /** Watch `path` for as long as the bus is open; the caller awaits `ready`. */
  protected follow(path: string, capacity: number, onEvent: (path: string) => void): XsWatch {
    const watch = this.client.watch(path, undefined, { capacity });
    this.watches.push(watch);
    pumpWatch(watch, onEvent);
    return watch;
  }

  /** Ask for `target` to be rescanned. */
  protected mark(target: T | typeof ALL): void {
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
      const all = this.pending.has(ALL);
      const targets = [...this.pending].filter((t): t is T => t !== ALL);
      this.pending.clear();
      if (all) await this.scanAll();
      else for (const t of targets) await this.scanTarget(t);
    }
  }

  protected abstract scanAll(): Promise<void>;
  protected abstract scanTarget(target: T): Promise<void>;

  /** The names under `path`; none when it is gone. */
  protected async listOrEmpty(path: string): Promise<string[]> {
    return this.client.directory(path).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'ENOENT') return [] as string[];
      throw err;
    });
  }

  protected async drop(key: K): Promise<void> {
    const d = this.devices.get(key);
    if (d === undefined) return;
    this.devices.delete(key);
    await d.destroy();
  }

  /** How a device is released by a close that is not graceful. */
  protected destroyOnClose(d: D): Promise<void> {
    return d.destroy();
  }

  /**
   * Stop. `graceful`: each live device disconnects and writes Closed; otherwise only local
   * resources are released, as if the process died.
   */
  async close(options: { graceful?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches) w.dispose();
    this.scanner.dispose();
    await this.scanner.idle();
    const all = [...this.devices.values()];
    this.devices.clear();
    await Promise.all(all.map((d) => (options.graceful === true ? d.shutdown() : this.destroyOnClose(d))));
  }
}
