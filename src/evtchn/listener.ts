/**
 * One thread's event channels in one domain (`EventOps` of hv/platform.ts): binds ports to
 * handlers, and delivers events to them like a guest's upcall handler, by scanning the
 * 2-level bitmaps under its own selector.
 *
 * Two ways to wait, for the two kinds of thread:
 * - on the event loop (the host, backends): an `Atomics.waitAsync` loop that runs while any
 *   port is bound, started by the first bind (unless `autoDispatch: false`), so handlers are
 *   called like a socket's callbacks. A ref'd timer keeps the thread alive meanwhile, since
 *   a pending waitAsync alone does not (performance.md 2.1).
 *   The waitAsync itself is untimed and one 50 ms watchdog interval bounds it instead: a
 *   waitAsync with a timeout posts a delayed task (a libuv timer) per wait, which made each
 *   event-channel round trip cost ~50 % more CPU and latency (33-40 vs 21-23 µs per round trip
 *   between two workers). The watchdog re-checks the wake word and, if it moved while we
 *   wait (a lost wake-up, performance.md 2.7), wakes the loop itself: the same bound as before.
 * - `poll(timeoutMs)`: blocks with a timed `Atomics.wait` (a vCPU loop, a benchmark); it
 *   delivers whatever the event loop has not, so both may be used on one thread.
 * Every wait is timed and re-checks (performance.md 2.7).
 *
 * With an `idlePoll` policy (a guest kernel's halt polling, guest/haltpoll.ts), the async loop
 * first polls the wake word for as long as the policy says, in slices between which the event
 * loop runs, and blocks only if nothing came: a sender that finds no one waiting pays no
 * wake-up, and this thread no return from sleep.
 */
import { microtask, XenpvError, toEvtchnPort, trackResource, waitWhileEqual } from '../base/index.js';
import type { Disposable, DomId, EvtchnPort } from '../base/index.js';
import { DomainState, DW, type DomainTable } from '../memory/index.js';
import { EvtchnHypercalls } from './hypercalls.js';
import { L_OWNER, L_SEL_HI, L_SEL_LO, L_WAKE, LISTENER_WORDS, MAX_LISTENERS, type EvtchnView } from './layout.js';

/** Shape of hv/platform.ts's EvtchnBinding (restated: evtchn sits below hv). */
export interface EvtchnBinding extends Disposable {
  readonly port: EvtchnPort;
  notify(): void;
  unmask(): void;
}

/** Lost-wake-up bound of the async loop (every wait re-checks within 100 ms: performance.md 2.7). */
const WATCHDOG_MS = 50;

/**
 * The longest the async loop polls without letting the event loop run (timers, messages,
 * what a handler scheduled): Linux's poll loop stops when another task wants the CPU, which
 * a thread cannot see here, so it looks between slices instead.
 */
const POLL_SLICE_MS = 0.02;
/** Wake-word loads between clock reads while polling (a clock read costs tens of loads). */
const LOADS_PER_CLOCK = 64;

/**
 * How long a thread polls for events before it blocks, adjusted by how each idle period
 * ended (a vCPU's idle governor: guest/haltpoll.ts).
 */
export interface IdlePoll {
  /** Nanoseconds to poll before blocking; 0 blocks at once. */
  readonly limitNs: number;
  /** An idle period ended `blockNs` after it began; `polled`: the event came while polling. */
  reflect(blockNs: number, polled: boolean): void;
}

export interface ListenerOptions {
  /** While this returns true, events stay pending and are not delivered (a paused domain). */
  readonly blocked?: () => boolean;
  /** Called with an error a handler threw; default: rethrown after the scan. */
  readonly onHandlerError?: (err: unknown, port: number) => void;
  /** Start event-loop delivery on the first bind (default true). */
  readonly autoDispatch?: boolean;
  /** Poll before blocking in the async loop, as this policy says (default: block at once). */
  readonly idlePoll?: IdlePoll;
}

/** Spin until `words[index]` moves past `seen` (true) or the clock reaches `untilMs` (false). */
function pollWord(words: Int32Array, index: number, seen: number, untilMs: number): boolean {
  for (;;) {
    for (let k = 0; k < LOADS_PER_CLOCK; k++) if (Atomics.load(words, index) !== seen) return true;
    if (performance.now() >= untilMs) return false;
  }
}

/**
 * The async loop, on callbacks: deliver what is pending, then wait in `Atomics.waitAsync` until
 * the wake word moves, again and again. With an idle policy each idle period first polls the
 * wake word in slices, a turn of the event loop (setImmediate) between them, and blocks only if
 * nothing came. Written with await, every 20 µs slice made a promise, its resolving functions
 * and a closure besides the Immediate: a fio guest at QD32 idles ~45 000 times a second, and its
 * polling loop made a fifth of all the guest allocated (V8's sampling heap profiler). One per
 * start of the loop; `mine` says whether it is still the running one.
 */
class AsyncLoop {
  private readonly words: Int32Array;
  private readonly index: number;
  /** The current idle period: the wake word's value when it began, when it began (ms) and its poll limit (ms). */
  private seen = 0;
  private since = 0;
  private limitMs = 0;

  constructor(
    private readonly ops: SimEventOps,
    private readonly policy: IdlePoll | undefined,
    private readonly mine: () => boolean,
  ) {
    const { words, index } = ops.wakeWord;
    this.words = words;
    this.index = index;
  }

  /** Begin after the current job: never call handlers from inside the bind that started the loop. */
  run(): void {
    microtask(this.step);
  }

  /**
   * Deliver what is pending, then begin an idle period. Without a policy, when the wake word
   * already moved (events came while the last ones were delivered), deliver again at once, in
   * this turn: a hop through a microtask per busy round read lower in 4 of 5 pairs of a UDP
   * stream (medians 11.0 k against 11.6 k Mbit/s).
   */
  private readonly step = (): void => {
    for (;;) {
      if (!this.mine()) return;
      this.seen = Atomics.load(this.words, this.index);
      this.ops.deliver();
      if (!this.mine()) return;
      if (this.policy === undefined) {
        if (this.waited()) return;
        continue;
      }
      this.since = performance.now();
      this.limitMs = this.policy.limitNs / 1e6;
      if (this.limitMs > 0) setImmediate(this.slice);
      else this.block();
      return;
    }
  };

  /** One poll slice, after the event loop had its turn (what the handlers scheduled runs first). */
  private readonly slice = (): void => {
    if (!this.mine()) return;
    const { words, index, seen, since: start, limitMs } = this;
    const now = performance.now();
    let polled = Atomics.load(words, index) !== seen;
    if (!polled && now - start < limitMs) polled = pollWord(words, index, seen, Math.min(start + limitMs, now + POLL_SLICE_MS));
    if (polled) this.end(true);
    else if (now - start >= limitMs) this.block();
    else setImmediate(this.slice);
  };

  /** Nothing came while polling: wait, then end the idle period. */
  private block(): void {
    if (!this.waited()) microtask(this.woke);
  }

  /**
   * Wait past `seen`, untimed (the watchdog bounds it, see the header): true when waiting (woke
   * follows), false when the wake word had already moved.
   */
  private waited(): boolean {
    this.ops.blockedPast = this.seen;
    const r = Atomics.waitAsync(this.words, this.index, this.seen);
    if (r.async) {
      void r.value.then(this.woke);
      return true;
    }
    this.ops.blockedPast = undefined;
    return false;
  }

  private readonly woke = (): void => {
    // A loop stopped while it waited must not unguard the wait of the loop started after it.
    if (this.mine()) this.ops.blockedPast = undefined;
    this.end(false);
  };

  private end(polled: boolean): void {
    this.policy?.reflect((performance.now() - this.since) * 1e6, polled);
    this.step();
  }
}

export class SimEventOps {
  readonly hc: EvtchnHypercalls;
  readonly listener: number;
  private readonly v: EvtchnView;
  private readonly handlers = new Map<number, () => void>();
  private readonly untrack = new Map<number, () => void>();
  private asyncRunning = false;
  /** Bumped by every start, so a stopped loop that wakes late never runs beside a new one. */
  private asyncGen = 0;
  private keepAlive: NodeJS.Timeout | undefined;
  /** The async loop's lost-wake-up watchdog. */
  private watchdog: NodeJS.Timeout | undefined;
  /** The wake-word value the async loop blocks past (the watchdog's), or undefined while it does not block; set by AsyncLoop. */
  blockedPast: number | undefined;
  private closed = false;
  /** Our domain's generation: once it changes, our regions belong to someone else. */
  private readonly ownGen: number;

  constructor(
    readonly table: DomainTable,
    readonly self: DomId,
    readonly tid: number,
    private readonly options: ListenerOptions = {},
  ) {
    this.hc = new EvtchnHypercalls(table, tid);
    this.v = this.hc.view(self);
    this.ownGen = this.v.gen;
    this.listener = this.claimListener();
  }

  private claimListener(): number {
    for (let l = 0; l < MAX_LISTENERS; l++) {
      const at = l * LISTENER_WORDS;
      if (Atomics.compareExchange(this.v.listeners, at + L_OWNER, 0, this.tid) === 0) {
        Atomics.store(this.v.listeners, at + L_SEL_LO, 0);
        Atomics.store(this.v.listeners, at + L_SEL_HI, 0);
        return l;
      }
    }
    throw new XenpvError('ENOSPC', `domain ${this.self}: too many event listeners`, { max: MAX_LISTENERS });
  }

  allocUnbound(remote: DomId, handler: () => void): EvtchnBinding {
    return this.bind(this.hc.allocUnbound(this.self, remote, this.listener), handler);
  }

  bindInterdomain(remote: DomId, remotePort: EvtchnPort, handler: () => void): EvtchnBinding {
    return this.bind(this.hc.bindInterdomain(this.self, remote, remotePort, this.listener), handler);
  }

  bindVirq(virq: number, handler: () => void): EvtchnBinding {
    return this.bind(this.hc.bindVirq(this.self, virq, this.listener), handler);
  }

  /**
   * Take over a port the toolstack allocated for this domain (the xenstore and console
   * ports of start_info), as a guest kernel binds them to its handlers at boot.
   */
  adopt(port: EvtchnPort, handler: () => void): EvtchnBinding {
    this.checkPort(port);
    if (this.handlers.has(port)) throw new XenpvError('EEXIST', `port ${port} already bound here`, { port });
    const s = this.hc.status(this.self, port);
    if (s.state === 0) throw new XenpvError('EINVAL', `port ${port} is not open`, { port });
    this.v.setListener(port, this.listener);
    const b = this.bind(port, handler);
    if (this.v.isPending(port) && !this.v.isMasked(port)) this.v.raise(port);
    return b;
  }

  private bind(port: number, handler: () => void): EvtchnBinding {
    this.handlers.set(port, handler);
    this.untrack.set(port, trackResource('evtchn-port', `dom${this.self} port ${port}`));
    this.startKeepAlive();
    if (this.options.autoDispatch !== false) this.startAsync();
    const p = toEvtchnPort(port) as EvtchnPort;
    let done = false;
    return {
      port: p,
      notify: () => this.hc.sendFrom(this.v, port),
      unmask: () => this.hc.unmask(this.self, port),
      dispose: () => {
        if (done) return;
        done = true;
        this.release(port);
      },
    };
  }

  /** Mask a port (events stay pending until unmask). */
  mask(port: EvtchnPort): void {
    this.checkPort(port);
    this.v.setMask(port);
  }

  private checkPort(port: number): void {
    if (!Number.isInteger(port) || port <= 0 || port >= this.v.maxPorts) {
      throw new XenpvError('EINVAL', `bad port ${port}`, { port });
    }
  }

  private release(port: number): void {
    this.handlers.delete(port);
    this.untrack.get(port)?.();
    this.untrack.delete(port);
    try {
      if (this.alive()) this.hc.close(this.self, port);
    } catch (err) {
      // Already closed underneath us (the domain was torn down): nothing left to release.
      if (!(err instanceof XenpvError && err.code === 'EINVAL')) throw err;
    }
    if (this.handlers.size === 0) {
      this.stopKeepAlive();
      this.stopAsync();
    }
  }

  get boundPorts(): number[] {
    return [...this.handlers.keys()];
  }

  /**
   * The upcall: take our selector, scan the selected words for pending, unmasked ports we
   * bound, clear each pending bit and call its handler. Returns how many handlers ran.
   */
  dispatch(): number {
    const lw = this.v.listeners;
    const base = this.listener * LISTENER_WORDS;
    // Nothing selected for us: the common case of a poll, without touching anything shared.
    if (Atomics.load(lw, base + L_SEL_LO) === 0 && Atomics.load(lw, base + L_SEL_HI) === 0) return 0;
    if (this.options.blocked?.() === true) return 0;
    let ran = 0;
    this.firstError = undefined;
    for (;;) {
      const lo = Atomics.exchange(lw, base + L_SEL_LO, 0);
      const hi = Atomics.exchange(lw, base + L_SEL_HI, 0);
      if (lo === 0 && hi === 0) break;
      for (let w = 0; w < 64; w++) {
        const selected = w < 32 ? lo & (1 << w) : hi & (1 << (w - 32));
        if (selected === 0) continue;
        ran += this.scanWord(2 * w) + this.scanWord(2 * w + 1);
      }
    }
    const first = this.takeError();
    if (first !== undefined) throw first.err;
    return ran;
  }

  private firstError: { err: unknown } | undefined;

  private takeError(): { err: unknown } | undefined {
    const e = this.firstError;
    this.firstError = undefined;
    return e;
  }

  private scanWord(i: number): number {
    let bits = this.v.deliverable(i);
    let ran = 0;
    while (bits !== 0) {
      const b = 31 - Math.clz32(bits);
      bits &= ~(1 << b);
      const port = i * 32 + b;
      const h = this.handlers.get(port);
      if (h === undefined || !this.v.testAndClearPending(port)) continue;
      ran++;
      try {
        h();
      } catch (err) {
        if (this.options.onHandlerError !== undefined) this.options.onHandlerError(err, port);
        else this.firstError ??= { err };
      }
    }
    return ran;
  }

  /** Block up to `timeoutMs` for events and deliver them. Returns handlers run. */
  poll(timeoutMs: number): number {
    const idx = this.listener * LISTENER_WORDS + L_WAKE;
    const seen = Atomics.load(this.v.listeners, idx);
    const n = this.dispatch();
    if (n > 0) return n;
    waitWhileEqual(this.v.listeners, idx, seen, timeoutMs);
    return this.dispatch();
  }

  /** The wake word, for callers that wait on it themselves. */
  get wakeWord(): { words: Int32Array; index: number } {
    return { words: this.v.listeners, index: this.listener * LISTENER_WORDS + L_WAKE };
  }

  /** Deliver events from the event loop until `stopAsync` or `dispose`. */
  startAsync(): void {
    if (this.asyncRunning || this.closed) return;
    this.asyncRunning = true;
    this.startWatchdog();
    const gen = ++this.asyncGen;
    new AsyncLoop(this, this.options.idlePoll, () => this.asyncRunning && this.asyncGen === gen).run();
  }

  stopAsync(): void {
    this.asyncRunning = false;
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
    // Release the untimed wait of the loop being stopped (it then sees it is no longer wanted).
    // Even after our domain is gone: a spurious notify only makes a waiter re-check.
    const { words, index } = this.wakeWord;
    Atomics.notify(words, index);
  }

  /** `dispatch` on the event loop: a handler's throw has no caller here, so it is reported as an uncaught error would be. */
  deliver(): void {
    try {
      this.dispatch();
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  /** Every 50 ms: if the wake word moved past what the loop waits on, wake the loop. */
  private startWatchdog(): void {
    const { words, index } = this.wakeWord;
    this.watchdog ??= setInterval(() => {
      const past = this.blockedPast;
      if (past !== undefined && Atomics.load(words, index) !== past) Atomics.notify(words, index);
    }, WATCHDOG_MS);
    // The keep-alive timer holds the thread while ports are bound; this one must not on its own.
    this.watchdog.unref();
  }

  /**
   * A ref'd timer while ports are bound; it also notices when our domain was destroyed
   * underneath us (its ports are gone) and lets go, so a leftover listener cannot hold a
   * process open.
   */
  private startKeepAlive(): void {
    this.keepAlive ??= setInterval(() => {
      if (!this.alive()) this.dispose();
    }, 250);
  }

  private stopKeepAlive(): void {
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }

  /** Close every port this listener bound and give its slot back. */
  dispose(): void {
    if (this.closed) return;
    for (const port of [...this.handlers.keys()]) this.release(port);
    this.closed = true;
    this.stopAsync();
    this.stopKeepAlive();
    if (this.alive()) Atomics.store(this.v.listeners, this.listener * LISTENER_WORDS + L_OWNER, 0);
  }

  /** Our domain has not been destroyed (destroy closes its ports and frees its regions). */
  alive(): boolean {
    const s = this.table.get(this.self, DW.STATE);
    return this.table.get(this.self, DW.GEN) === this.ownGen && (s === DomainState.ALIVE || s === DomainState.SHUTDOWN);
  }
}
