/**
 * Watches as async iterators:
 *
 *   for await (const ev of client.watch('/local/domain/1/device', 'tok')) { ... }
 *
 * The first event is the one xenstored fires at registration ("the first event is sent
 * immediately", protocols.md §1.6). Leaving the loop (break/return/throw) disposes the watch:
 * UNWATCH is sent and events stop.
 *
 * Each watch has a bounded queue: a consumer that falls behind loses events, never memory.
 * Lost events are reported as ONE extra event on the watched path with `lost` = how many were
 * dropped. That is a valid xenstore event ("spurious events are allowed"), and it tells the
 * reader what every watcher must do anyway: re-read the watched subtree.
 */
import { BoundedQueue, trackResource, type Disposable } from '../../base/index.js';
import { decodeWatchEvent, isPathPrefix, type XsMessage } from '../protocol/index.js';

export interface WatchSpec {
  readonly path: string;
  /** Defaults to a token unique to this client. */
  readonly token?: string;
  /** Watch depth (needs the server's WATCHDEPTH feature). */
  readonly depth?: number;
}

export interface XsWatchEvent {
  /** The modified path (relative if the watch was registered relative). */
  readonly path: string;
  readonly token: string;
  /** Set on the synthetic event that stands for `lost` dropped events (queue overflow). */
  readonly lost?: number;
}

export interface WatchOptions {
  /** Events held for a slow consumer; default 1024. */
  readonly capacity?: number;
}

export interface Registration {
  readonly path: string;
  readonly token: string;
  readonly depth?: number;
  readonly owner: XsWatch;
  lost: number;
  /** xenstored accepted it (so leaving must UNWATCH it). */
  registered: boolean;
}

/** Routes XS_WATCH_EVENT messages to the watch that registered (path, token). */
export class WatchRouter {
  private readonly byToken = new Map<string, Registration[]>();

  add(reg: Registration): void {
    const list = this.byToken.get(reg.token);
    if (list === undefined) this.byToken.set(reg.token, [reg]);
    else list.push(reg);
  }

  remove(reg: Registration): void {
    const list = this.byToken.get(reg.token);
    if (list === undefined) return;
    const i = list.indexOf(reg);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byToken.delete(reg.token);
  }

  get size(): number {
    let n = 0;
    for (const list of this.byToken.values()) n += list.length;
    return n;
  }

  /**
   * Deliver one event. Several registrations may share a token; the event goes to those whose
   * path covers the event path, or to all of them when none does (an event xenstored chose to
   * send is never silently dropped). Malformed events are ignored.
   */
  route(msg: XsMessage): void {
    const ev = decodeWatchEvent(msg.payload);
    if (ev === undefined) return;
    const list = this.byToken.get(ev.token);
    if (list === undefined) return; // late event of a watch already removed
    const covering = list.filter((r) => isPathPrefix(r.path, ev.path));
    const targets = covering.length > 0 ? covering : list;
    for (const owner of new Set(targets.map((r) => r.owner))) {
      owner.deliver(targets.find((r) => r.owner === owner)!, ev);
    }
  }

  /** Every watch ends: with `err` thrown to its reader, or quietly. */
  endAll(err?: Error): void {
    const owners = new Set<XsWatch>();
    for (const list of this.byToken.values()) for (const r of list) owners.add(r.owner);
    for (const w of owners) w.terminate(err);
  }
}

interface Waiter {
  resolve(r: IteratorResult<XsWatchEvent>): void;
  reject(e: unknown): void;
}

export interface WatchHooks {
  readonly router: WatchRouter;
  /** Send UNWATCH for one registration; failures are the hook's to swallow. */
  unwatch(path: string, token: string): void;
}

export class XsWatch implements AsyncIterableIterator<XsWatchEvent>, Disposable {
  /** Resolves once xenstored accepted every registration; rejects with its error otherwise. */
  readonly ready: Promise<void>;
  readonly registrations: readonly Registration[];
  private readonly queue: BoundedQueue<XsWatchEvent>;
  private readonly waiters: Waiter[] = [];
  private ended = false;
  private endError: Error | undefined;
  private readonly untrack: () => void;

  constructor(
    specs: readonly { path: string; token: string; depth?: number }[],
    register: (reg: Registration) => Promise<void>,
    private readonly hooks: WatchHooks,
    options: WatchOptions = {},
  ) {
    this.queue = new BoundedQueue(options.capacity ?? 1024);
    this.untrack = trackResource('xs-watch', specs.map((s) => `${s.path} [${s.token}]`).join(', '));
    const regs = specs.map((s) => ({ path: s.path, token: s.token, depth: s.depth, owner: this, lost: 0, registered: false }));
    this.registrations = regs;
    for (const reg of regs) hooks.router.add(reg);
    // One at a time, as libxenstore's callers do: a refused registration stops the rest.
    this.ready = (async () => {
      for (const reg of regs) {
        if (this.ended) return;
        await register(reg);
        reg.registered = true;
        if (this.ended) hooks.unwatch(reg.path, reg.token); // disposed while WATCH was in flight
      }
    })();
    // A failed registration ends the watch (the others are unwatched); the error reaches
    // whoever awaits `ready` or `next()`.
    this.ready.catch((err: unknown) => this.stop(err instanceof Error ? err : new Error(String(err))));
  }

  /** Called by the router. */
  deliver(reg: Registration, ev: { path: string; token: string }): void {
    if (this.ended) return;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter.resolve({ value: ev, done: false });
    else if (!this.queue.push(ev)) reg.lost++;
  }

  async next(): Promise<IteratorResult<XsWatchEvent>> {
    const ev = this.queue.shift() ?? this.takeLost();
    if (ev !== undefined) return { value: ev, done: false };
    if (this.ended) return this.finish();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  async return(): Promise<IteratorResult<XsWatchEvent>> {
    this.dispose();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Events waiting to be read (for tests and back-pressure decisions). */
  get queued(): number {
    return this.queue.length;
  }

  /** Stop watching: UNWATCH each registration, end the iterator. Idempotent. */
  dispose(): void {
    this.stop();
  }

  private stop(err?: Error): void {
    if (this.ended) return;
    for (const reg of this.registrations) {
      this.hooks.router.remove(reg);
      if (reg.registered) this.hooks.unwatch(reg.path, reg.token);
      reg.lost = 0;
    }
    this.queue.clear();
    this.terminate(err);
  }

  /**
   * End without UNWATCH (the connection is gone, or RESET_WATCHES dropped them). Events
   * already queued can still be read; then `err`, if any, is thrown once.
   */
  terminate(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    for (const reg of this.registrations) this.hooks.router.remove(reg);
    this.untrack();
    const waiters = this.waiters.splice(0);
    if (err !== undefined && waiters.length > 0) {
      for (const w of waiters) w.reject(err);
    } else {
      this.endError = err;
      for (const w of waiters) w.resolve({ value: undefined, done: true });
    }
  }

  private takeLost(): XsWatchEvent | undefined {
    const reg = this.registrations.find((r) => r.lost > 0);
    if (reg === undefined) return undefined;
    const ev = { path: reg.path, token: reg.token, lost: reg.lost };
    reg.lost = 0;
    return ev;
  }

  private finish(): IteratorResult<XsWatchEvent> {
    const err = this.endError;
    this.endError = undefined; // thrown once, then the iterator is simply done
    if (err !== undefined) throw err;
    return { value: undefined, done: true };
  }
}
