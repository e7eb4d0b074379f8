/**
 * NetBack: the dom0 end of a PV NIC (netif.h; protocols.md §2.4, §4), a port `vif<fe>.<devid>`
 * of a learning bridge.
 *
 * Handshake: publish features and go InitWait; when the frontend is Initialised or Connected,
 * read its rings and channels (back-config.ts), map and bind them, join the bridge, go
 * Connected. Frontend Closing/Closed/gone → leave the bridge, unmap, Closing/Closed; frontend
 * Initialising after Closed → InitWait again (reconnect). Watch events only kick a reactor
 * that re-reads the states (xenbus/reactor.ts), so a flapping peer costs one pending step.
 *
 * A frontend violation Linux calls fatal (tx-parse.ts) disables the vif: it leaves the bridge
 * and unmaps at once; then a reactor step records the error under error/<nodename> and goes
 * Closing (unless the frontend has gone Closed meanwhile: then Closed). The other vifs of the
 * bridge never notice.
 */
import { XenbusStateClosed, XenbusStateClosing, XenbusStateConnected, XenbusStateInitialised, XenbusStateInitialising, XenbusStateInitWait } from '../../abi/io/xenbus.js';
import { XenpvError, errorCode, type DomId, type GrantRef } from '../../base/index.js';
import { PAGE_SIZE, type Platform } from '../../hv/platform.js';
import type { XsClient, XsWatch } from '../../xenstore/client/index.js';
import { readOptional, readStr, readUint, writeKeys } from '../../xenbus/keys.js';
import { errorPath, parseBackendPath, parseFrontendPath } from '../../xenbus/paths.js';
import { Reactor, pumpWatch } from '../../xenbus/reactor.js';
import { isLeftOver } from '../../xenbus/device-machine.js';
import { deviceFatal, readState, stateValue, switchState } from '../../xenbus/state.js';
import { BackCtrl } from './back-ctrl.js';
import { readFrontConfig, type FrontConfig } from './back-config.js';
import { BackQueue, type BackCounters, type RxExtras, type VifContext } from './back-queue.js';
import { ETHERTYPE_IPV6, fillL4Checksum, isGroupMac, macKey, parseMac, validIfName, vifName, type Bridge, type BridgePort, type FrameInfo, type PortStats } from './bridge/index.js';
import { HashConfig } from './hash.js';
import { BACK_LIMITS, DEFAULT_MTU } from './protocol.js';
import { parseRateKey } from './rate-limit.js';

export interface NetBackOptions {
  readonly platform: Platform;
  readonly store: XsClient;
  readonly bridge: Bridge;
  /** `/local/domain/<be>/backend/vif/<fe>/<devid>`, created by the toolstack. */
  readonly backendPath: string;
  readonly clock?: () => number;
  /** Turn features off (tests, interop); all are on by default. */
  readonly features?: Partial<{ split: boolean; ctrlRing: boolean; multicast: boolean; maxQueues: number; gso: boolean; sg: boolean }>;
  /** Anti-spoofing: only the vif's own `mac` may send (Xen's vif-bridge + ebtables). */
  readonly lockMac?: boolean;
  readonly limits?: Partial<BackLimits>;
}

export type BackLimits = { readonly [K in keyof typeof BACK_LIMITS]: number };

export interface NetBackStats {
  readonly name: string;
  readonly connected: boolean;
  readonly queues: number;
  readonly port: Readonly<PortStats> | undefined;
  readonly back: Readonly<BackCounters>;
  readonly fatal: string | undefined;
  readonly rxStalls: number;
  readonly multicast: readonly string[];
}

const NO_EXTRAS: RxExtras = Object.freeze({});

function zeroCounters(): BackCounters {
  return { txErrors: 0, txDropReasons: {}, rxErrors: 0, rxFiltered: 0, rateDeferrals: 0, events: 0, eventsDeferred: 0, notifies: 0 };
}

export class NetBack {
  /** The bridge port's name: the toolstack's `vifname` if valid, else `vif<fe>.<devid>`. */
  name: string;
  readonly frontDomid: DomId;
  readonly devid: number;
  readonly counters: BackCounters = zeroCounters();
  private readonly limits: BackLimits;
  private readonly features: Required<NonNullable<NetBackOptions['features']>>;
  private readonly clock: () => number;
  private readonly reactor: Reactor;
  private readonly hash: HashConfig;
  private readonly mcastList = new Set<number>();
  private watch: XsWatch | undefined;
  private frontPath = '';
  private queues: BackQueue[] = [];
  private ctrl: BackCtrl | undefined;
  private port: BridgePort | undefined;
  private front: FrontConfig | undefined;
  private fatalReason: string | undefined;
  /** A fatal error's message, for the reactor to record (error node, Closing): see `fatal`. */
  private fatalReport: string | undefined;
  private stalledSince: number | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private rxStalls = 0;
  private lastPortStats: PortStats | undefined;
  /**
   * A frontend already Initialised/Connected when we start is left over from an earlier
   * backend (a restart): its rings are mid-stream. Connect only after it resets (close cycle).
   */
  private staleFront = false;
  private disposed = false;

  constructor(private readonly opts: NetBackOptions) {
    const dev = parseBackendPath(opts.backendPath);
    if (dev === undefined || dev.backClass !== 'vif') throw new XenpvError('EINVAL', `not a vif backend path: ${opts.backendPath}`, {});
    this.frontDomid = dev.frontDomid;
    this.devid = dev.devid;
    this.name = vifName(dev.frontDomid, dev.devid);
    this.clock = opts.clock ?? (() => performance.now());
    this.limits = { ...BACK_LIMITS, ...opts.limits };
    const f = opts.features ?? {};
    this.features = {
      split: f.split ?? true, ctrlRing: f.ctrlRing ?? true, multicast: f.multicast ?? true,
      maxQueues: f.maxQueues ?? this.limits.maxQueues, gso: f.gso ?? true, sg: f.sg ?? true,
    };
    this.hash = new HashConfig(this.limits.maxHashKey, this.limits.maxHashMapping);
    this.reactor = new Reactor(() => this.step(), () => undefined);
  }

  get connected(): boolean {
    return this.port !== undefined;
  }

  /** Publish features, go InitWait, and follow the frontend from now on. */
  async start(): Promise<void> {
    const s = this.opts.store;
    const be = this.opts.backendPath;
    const fe = await readStr(s, be, 'frontend', { maxLength: 256 });
    const parsed = parseFrontendPath(fe);
    if (parsed === undefined || parsed.frontDomid !== this.frontDomid || parsed.devid !== this.devid) {
      throw new XenpvError('EPROTO', `${be}/frontend does not name this device: ${fe}`, {});
    }
    this.frontPath = fe;
    const custom = await readOptional(s, be, 'vifname');
    if (custom !== undefined && validIfName(custom)) this.name = custom;
    const f = this.features;
    await writeKeys(s, be, {
      'feature-sg': f.sg, 'feature-gso-tcpv4': f.gso && f.sg, 'feature-gso-tcpv6': f.gso && f.sg,
      'feature-ipv6-csum-offload': true, 'feature-no-csum-offload': false,
      'feature-rx-copy': true, 'feature-rx-flip': false,
      'feature-multicast-control': f.multicast, 'feature-dynamic-multicast-control': f.multicast,
      'feature-split-event-channels': f.split, 'multi-queue-max-queues': f.maxQueues, 'feature-ctrl-ring': f.ctrlRing,
      // What Xen's vif-bridge hotplug script reports once the vif is set up for its bridge;
      // here netback is its own script (the port joins when the frontend connects).
      'hotplug-status': 'connected',
    });
    const front = await readState(s, fe);
    this.staleFront = front.kind === 'state' && (front.state === XenbusStateInitialised || front.state === XenbusStateConnected);
    // A state a predecessor left mid-session (InitWait .. Closing: it died, or was restarted)
    // may not change at all when we offer InitWait (it was InitWait already), and then a
    // frontend connected to the dead one never learns it has to reconnect. So such a device
    // goes through a close cycle first (Closing; the steps follow the frontend to Closed and
    // from there to InitWait), as the generic backend does (xenbus/backend-device.ts).
    // Unlike the generic backend, a Closed device starts at InitWait here (the steps follow the
    // frontend from it); garbage in the node counts as no state.
    const prior = stateValue(await readState(s, be));
    const fresh = prior === undefined || prior === XenbusStateClosed || !isLeftOver(prior);
    await switchState(s, be, fresh ? XenbusStateInitWait : XenbusStateClosing);
    this.watch = s.watchAll([{ path: `${fe}/state` }, { path: `${fe}/request-multicast-control` }, { path: `${be}/online` }]);
    pumpWatch(this.watch, () => this.reactor.kick());
  }

  /** Resolves when no handshake step is running or pending (tests). */
  idle(): Promise<void> {
    return this.reactor.idle();
  }

  private async step(): Promise<void> {
    if (this.disposed) return;
    const s = this.opts.store;
    const be = this.opts.backendPath;
    const peer = await readState(s, this.frontPath);
    const mine = await readState(s, be);
    const own = mine.kind === 'state' ? mine.state : undefined;
    if (peer.kind === 'invalid') return this.fail(`frontend state '${peer.raw}' is not a state`);
    const fs = peer.kind === 'state' ? peer.state : undefined;
    if (this.fatalReport !== undefined) {
      const message = this.fatalReport;
      this.fatalReport = undefined;
      // A frontend that has gone Closed meanwhile is followed to Closed below instead.
      if (fs !== XenbusStateClosed && fs !== undefined) return this.fail(message);
    }
    if (fs !== XenbusStateInitialised && fs !== XenbusStateConnected) this.staleFront = false;
    if (fs === XenbusStateInitialised || fs === XenbusStateConnected) {
      if (this.staleFront) return;
      if (this.connected) return this.resampleMulticast();
      if (own === XenbusStateInitWait || own === XenbusStateInitialised) await this.connect();
      return;
    }
    if (fs === XenbusStateInitialising && own === XenbusStateClosed) {
      await switchState(s, be, XenbusStateInitWait); // "prepare for reconnect"
      return;
    }
    if (fs === XenbusStateInitialising && (own === XenbusStateConnected || own === XenbusStateInitialised)) {
      // The frontend restarted (a new guest kernel's netfront): its rings are gone. Let go of
      // them and offer InitWait again, as Linux netback's set_backend_state does.
      this.disconnect();
      await switchState(s, be, XenbusStateInitWait);
      return;
    }
    if (fs === XenbusStateClosing) {
      this.disconnect();
      await switchState(s, be, XenbusStateClosing);
      return;
    }
    if (fs === XenbusStateClosed || fs === undefined) {
      this.disconnect();
      await switchState(s, be, XenbusStateClosed);
    }
  }

  /** Record a fatal error (error/<nodename>/error) and go Closing, as xenbus_dev_fatal. */
  private async fail(message: string): Promise<void> {
    this.disconnect();
    await deviceFatal(this.opts.store, this.opts.backendPath, errorPath(this.opts.backendPath, this.opts.platform.domid), message);
  }

  private async connect(): Promise<void> {
    const s = this.opts.store;
    const be = this.opts.backendPath;
    let cfg: FrontConfig;
    try {
      cfg = await readFrontConfig(s, this.frontPath, this.features);
    } catch (err) {
      if (errorCode(err) === 'EPROTO' || errorCode(err) === 'EOPNOTSUPP') return this.fail((err as Error).message);
      throw err;
    }
    const mtu = await readUint(s, be, 'mtu', { min: 68, max: 65535, default: DEFAULT_MTU }).catch(() => DEFAULT_MTU);
    const rate = parseRateKey(await readOptional(s, be, 'rate'));
    const mac = await readOptional(s, be, 'mac');
    this.fatalReason = undefined;
    this.fatalReport = undefined;
    this.hash.algorithm = 0;
    this.hash.flags = 0;
    this.hash.mapping = new Uint32Array(0);
    this.mcastList.clear();
    try {
      this.front = cfg;
      this.queues = cfg.queues.map((q, i) => new BackQueue(this.vifContext(), i, { txRef: q.txRef, rxRef: q.rxRef, ports: q.ports, ...(rate ? { rate } : {}) }));
      if (cfg.ctrl !== undefined) {
        const ctx = { hash: this.hash, numQueues: cfg.queues.length, copyIn: (g: number, d: Uint8Array, n: number) => this.copyIn(g, d, n) };
        this.ctrl = new BackCtrl(this.opts.platform, this.frontDomid, cfg.ctrl.ref, cfg.ctrl.port, ctx, this.limits.ctrlBudget, (r) => this.fatal(r));
      }
      const lockedMac = this.opts.lockMac === true && mac !== undefined ? parseMac(mac) : undefined;
      // deliver() copies the frame into the guest's posted buffers and keeps nothing (cut-through);
      // a stable frame is copied at complete(), with the rest of its burst in one grant-copy call.
      const sink = { deliver: (f: Uint8Array, i: FrameInfo, stable?: boolean) => this.deliver(f, i, stable === true), complete: () => this.completeRx(), copiesFrame: true };
      this.port = this.opts.bridge.addPort(this.name, sink, {
        mtu, gso: { tcpv4: cfg.gsoV4, tcpv6: cfg.gsoV6 }, csumOffload: !cfg.noCsumOffload, ...(lockedMac ? { lockedMac } : {}),
      });
    } catch (err) {
      this.disconnect();
      return this.fail(`connecting: ${(err as Error).message}`);
    }
    await switchState(s, be, XenbusStateConnected);
  }

  private resampleMulticast(): Promise<void> {
    // Dynamic multicast control: the watch on request-multicast-control re-samples it.
    const cfg = this.front;
    if (cfg === undefined || !this.features.multicast) return Promise.resolve();
    return readOptional(this.opts.store, this.frontPath, 'request-multicast-control').then((v) => {
      if (this.front === cfg) this.front = { ...cfg, multicastControl: v !== undefined && v !== '0' };
    }, () => undefined);
  }

  private copyIn(gref: number, dest: Uint8Array, len: number): boolean {
    if (len > PAGE_SIZE || len > dest.length) return false;
    const [st] = this.opts.platform.grants.copy([
      { source: { kind: 'grant', domid: this.frontDomid, ref: gref as GrantRef, offset: 0 }, dest: { kind: 'local', buf: dest, offset: 0 }, len },
    ]);
    return st === 0;
  }

  private vifContext(): VifContext {
    return {
      platform: this.opts.platform,
      frontDomid: this.frontDomid,
      limits: this.limits,
      clock: this.clock,
      rx: { sg: this.front?.sg ?? false, gsoV4: this.front?.gsoV4 ?? false, gsoV6: this.front?.gsoV6 ?? false },
      disabled: () => this.fatalReason !== undefined,
      counters: this.counters,
      input: (frame, info, owned, held) => {
        const port = this.port;
        if (port === undefined) return undefined;
        if (held) port.inputHeld(frame, info);
        else port.input(frame, info, owned);
        return port.backPressure;
      },
      beginBurst: () => {
        const port = this.port;
        port?.beginBurst();
        return port;
      },
      mcast: (op, addr) => this.mcast(op, addr),
      fatal: (reason) => this.fatal(reason),
      rxPosted: () => this.rxPosted(),
    };
  }

  private mcast(op: 'add' | 'del', addr: Uint8Array): boolean {
    const key = macKey(addr);
    if (op === 'del') return this.mcastList.delete(key) || true;
    if (this.mcastList.has(key)) return true;
    if (this.mcastList.size >= this.limits.maxMulticast) return false; // "Too many multicast addresses"
    this.mcastList.add(key);
    return true;
  }

  /** xenvif_fatal_tx_err: stop serving this frontend now; the rest is the reactor's. */
  private fatal(reason: string): void {
    if (this.fatalReason !== undefined) return;
    this.fatalReason = reason;
    this.disconnect();
    // Recorded by a reactor step, not from here: a Closing written outside the reactor could
    // land after the step that followed the frontend to Closed, and the device would stay
    // Closing for good (a Closed frontend writes nothing more; reconnecting needs Closed).
    this.fatalReport = `fatal error; disabling device: ${reason}`;
    this.reactor.kick();
  }

  /** The bridge hands us a frame for the guest. False = no buffers now (the bridge keeps it). */
  private deliver(frame: Uint8Array, info: FrameInfo, stable: boolean): boolean {
    const cfg = this.front;
    if (cfg === undefined || this.fatalReason !== undefined || this.queues.length === 0) return true;
    if (cfg.multicastControl && isGroupMac(frame, 0) && macKey(frame, 0) !== 0xffffffffffff && !this.mcastList.has(macKey(frame, 0))) {
      this.counters.rxFiltered++;
      return true;
    }
    let out = frame;
    let outInfo = info;
    if (info.csumBlank && !cfg.ipv6CsumOffload && frame.length > 14 && ((frame[12]! << 8) | frame[13]!) === ETHERTYPE_IPV6) {
      out = frame.slice();
      fillL4Checksum(out);
      outInfo = { ...info, csumBlank: false, dataValidated: true };
    }
    if (out.length > PAGE_SIZE && !cfg.sg) {
      this.counters.rxErrors++;
      return true;
    }
    const h = this.hash.hash(out);
    const q = this.queues[h === undefined ? 0 : this.hash.queueFor(h.value, this.queues.length)]!;
    const gsoOk = info.gso !== undefined && (info.gso.type === 'tcpv4' ? cfg.gsoV4 : cfg.gsoV6);
    const extras: RxExtras = !gsoOk && h === undefined ? NO_EXTRAS : { ...(gsoOk ? { gso: info.gso } : {}), ...(h !== undefined ? { hash: h } : {}) };
    if (!q.rxRoom(q.rxSlotsNeeded(out.length, extras))) {
      this.noteStall();
      return false;
    }
    this.stalledSince = undefined;
    // Only what the bridge handed over as stable is staged: the port completes (PortSink.complete)
    // just what it marked so, and a frame staged otherwise, the IPv6 checksum copy made here
    // included, would wait for whatever next completes this queue.
    q.rxDeliver(out, outInfo, extras, stable);
    return true;
  }

  /** The bridge's burst ended (or a delivery run outside one): copy the frames the queues took. */
  private completeRx(): void {
    for (const q of this.queues) q.completeRx();
  }

  /** R7: a receiver that keeps us waiting is counted as stalled within rxStallMs. */
  private noteStall(): void {
    if (this.stalledSince !== undefined) return;
    const since = (this.stalledSince = this.clock());
    const poll = this.front?.rxNotify === false;
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (this.stalledSince === since) this.rxStalls++;
      this.rxPosted();
    }, poll ? 30 : this.limits.rxStallMs);
  }

  private rxPosted(): void {
    this.port?.wake();
  }

  stats(): NetBackStats {
    return {
      name: this.name,
      connected: this.connected,
      queues: this.queues.length,
      port: this.port?.stats() ?? this.lastPortStats,
      back: { ...this.counters, txDropReasons: { ...this.counters.txDropReasons } },
      fatal: this.fatalReason,
      rxStalls: this.rxStalls,
      multicast: [...this.mcastList].map((k) => k.toString(16).padStart(12, '0')),
    };
  }

  /** Leave the bridge, drop the rings and channels. Idempotent. */
  private disconnect(): void {
    if (this.port !== undefined) {
      this.lastPortStats = this.port.stats();
      this.opts.bridge.removePort(this.port);
      this.port = undefined;
    }
    for (const q of this.queues) q.dispose();
    this.queues = [];
    this.ctrl?.dispose();
    this.ctrl = undefined;
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.stalledSince = undefined;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.reactor.dispose();
    this.watch?.dispose();
    await this.reactor.idle();
    this.disconnect();
  }
}
