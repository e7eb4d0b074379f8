/**
 * NetFront: the guest end of a PV NIC (netif.h; protocols.md §2.4).
 *
 * Handshake as Linux netfront: on backend InitWait, require `feature-rx-copy`, build the
 * queues (rings, channels, buffers) and control ring, write every key and `state=Connected` in
 * one transaction (netfront skips Initialised). Once the backend is Connected, the link is up;
 * with several queues and a control ring, the backend's Toeplitz steering is configured with
 * the same key and table the frontend uses to pick its transmit queue.
 *
 * Reconnect: backend Closing/Closed/gone → tear down and go Closed; backend Closed while we are
 * Closed → Initialising (a bounded number of times per window, R9), which the backend answers
 * with InitWait. A backend that re-appears in InitWait after having been Connected (a restarted
 * backend) is taken through the same close cycle first, so both ends restart their rings at 0.
 */
import {
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitialising,
  XenbusStateInitWait,
  type XenbusStateValue,
} from '../../abi/io/xenbus.js';
import { toeplitzHash } from '../../abi/io/netif-codec.js';
import { NETTXF_extra_info } from '../../abi/io/netif.js';
import { XenpvError, errorCode, type DomId } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import type { XsClient, XsWatch } from '../../xenstore/client/index.js';
import { readBool, readStr, readUint, type KeyValue } from '../../xenbus/keys.js';
import { parseBackendPath } from '../../xenbus/paths.js';
import { RateBudget, Reactor, pumpWatch } from '../../xenbus/reactor.js';
import { readState, switchState, waitForState } from '../../xenbus/state.js';
import { parseMac, type FrameInfo } from './bridge/index.js';
import { DEFAULT_HASH_FLAGS, FrontCtrl, setupHash } from './front-ctrl.js';
import { PagePool } from './front-pages.js';
import { FrontQueue } from './front-queue.js';
import type { FrontCounters, RxFrameInfo } from './front-queue-context.js';
import { hashInput } from './hash.js';
import { DEFAULT_MTU, FRONT_DEFAULTS, queueDir } from './protocol.js';

export type { RxFrameInfo } from './front-queue-context.js';

export interface NetFrontFeatures {
  queues: number;
  split: boolean;
  ctrlRing: boolean;
  sg: boolean;
  gso: boolean;
  /** false writes feature-no-csum-offload=1: we cannot take checksum-blank frames. */
  csumOffload: boolean;
  ipv6CsumOffload: boolean;
  multicastControl: boolean;
}

export interface NetFrontOptions {
  readonly platform: Platform;
  readonly store: XsClient;
  /** `/local/domain/<fe>/device/vif/<devid>`. */
  readonly frontendPath: string;
  readonly onReceive?: (frame: Uint8Array, info: RxFrameInfo) => void;
  readonly features?: Partial<NetFrontFeatures>;
  readonly hashKey?: Uint8Array;
  readonly buffers?: Partial<{ tx: number; rx: number; backlog: number }>;
}

/** Microsoft's RSS verification key, the usual default Toeplitz key. */
export const DEFAULT_HASH_KEY = Uint8Array.from([
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
  0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
]);
const MAPPING_SIZE = 64;

interface BackFeatures {
  readonly sg: boolean;
  readonly gsoV4: boolean;
  readonly gsoV6: boolean;
  readonly split: boolean;
  readonly maxQueues: number;
  readonly ctrl: boolean;
  readonly multicast: boolean;
  readonly csumOffload: boolean;
}

export class NetFront {
  readonly counters: FrontCounters = { txPackets: 0, txBytes: 0, txErrors: 0, txDropped: 0, rxPackets: 0, rxBytes: 0, rxErrors: 0, rxDropped: 0, events: 0, notifies: 0 };
  onReceive: ((frame: Uint8Array, info: RxFrameInfo) => void) | undefined;
  /**
   * `onReceive` copies whatever it keeps before it returns: a one-slot frame then comes as a
   * view of its own rx page, the backend's access to it suspended until the page is posted
   * again (Linux's way), or, where the platform cannot suspend a grant, in one reused private
   * copy; not in a fresh buffer each. Whoever sets `onReceive` sets this with it.
   */
  rxTransient = false;
  mac: Uint8Array = new Uint8Array(6);
  mtu = DEFAULT_MTU;
  private readonly features: NetFrontFeatures;
  private readonly reactor: Reactor;
  private readonly reconnects = new RateBudget(FRONT_DEFAULTS.reconnects, FRONT_DEFAULTS.reconnectWindowMs);
  private backendPath = '';
  private backendId = 0 as DomId;
  private watch: XsWatch | undefined;
  private pool: PagePool | undefined;
  /** Pools of earlier connections whose pages the backend still maps (retried until free). */
  private oldPools: PagePool[] = [];
  private queues: FrontQueue[] = [];
  private ctrl: FrontCtrl | undefined;
  private back: BackFeatures | undefined;
  private sawBackendConnected = false;
  private up = false;
  private brokenReason: string | undefined;
  private readonly upWaiters: (() => void)[] = [];
  private txWaiters: (() => void)[] = [];
  private mapping: number[] = [];
  private disposed = false;

  constructor(private readonly opts: NetFrontOptions) {
    this.onReceive = opts.onReceive;
    this.features = {
      queues: 1, split: true, ctrlRing: true, sg: true, gso: true, csumOffload: true, ipv6CsumOffload: true, multicastControl: false,
      ...opts.features,
    };
    this.reactor = new Reactor(() => this.step(), () => undefined);
  }

  /** Link up: both ends Connected (and hash steering configured when used). */
  get linkUp(): boolean {
    return this.up;
  }

  get numQueues(): number {
    return this.queues.length;
  }

  get broken(): string | undefined {
    return this.brokenReason;
  }

  /** Read our device keys and follow the backend from now on. */
  async start(): Promise<void> {
    const s = this.opts.store;
    const dir = this.opts.frontendPath;
    this.backendPath = await readStr(s, dir, 'backend', { maxLength: 256 });
    const be = parseBackendPath(this.backendPath);
    if (be === undefined || be.backClass !== 'vif') throw new XenpvError('EPROTO', `${dir}/backend is not a vif backend: ${this.backendPath}`, {});
    this.backendId = be.backDomid;
    this.mac = parseMac(await readStr(s, dir, 'mac', { maxLength: 17 }));
    this.mtu = await readUint(s, dir, 'mtu', { min: 68, max: 65535, default: DEFAULT_MTU });
    this.watch = s.watch(`${this.backendPath}/state`);
    pumpWatch(this.watch, () => this.reactor.kick());
  }

  /** Resolves once the link is up; rejects with ETIMEDOUT after `timeoutMs`. */
  waitUp(timeoutMs = 5000): Promise<void> {
    if (this.up) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new XenpvError('ETIMEDOUT', `${this.opts.frontendPath}: link not up in ${timeoutMs} ms`, {})), timeoutMs);
      this.upWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  idle(): Promise<void> {
    return this.reactor.idle();
  }

  private async step(): Promise<void> {
    if (this.disposed) return;
    const peer = await readState(this.opts.store, this.backendPath);
    const mine = await readState(this.opts.store, this.opts.frontendPath);
    const bs: XenbusStateValue = peer.kind === 'state' ? peer.state : XenbusStateClosed;
    const ms = mine.kind === 'state' ? mine.state : XenbusStateClosed;
    if (bs === XenbusStateClosing || bs === XenbusStateClosed || peer.kind !== 'state' || bs < XenbusStateInitialising) {
      return this.onBackendGone(bs, ms);
    }
    if (bs === XenbusStateInitWait || bs === XenbusStateInitialised) {
      if (this.queues.length > 0 && this.sawBackendConnected) return this.closeCycle(); // a restarted backend
      if (ms === XenbusStateInitialising && this.queues.length === 0) await this.connect();
      return;
    }
    if (bs === XenbusStateConnected && ms === XenbusStateConnected && this.queues.length > 0 && !this.sawBackendConnected) {
      this.sawBackendConnected = true;
      await this.linkUpNow();
    }
  }

  private async onBackendGone(bs: XenbusStateValue, ms: XenbusStateValue): Promise<void> {
    const s = this.opts.store;
    const dir = this.opts.frontendPath;
    if (this.queues.length > 0) this.teardown();
    if (ms !== XenbusStateClosed) {
      await switchState(s, dir, XenbusStateClosing);
      await switchState(s, dir, XenbusStateClosed);
      return;
    }
    if (bs === XenbusStateClosed && this.reconnects.take()) await switchState(s, dir, XenbusStateInitialising);
  }

  private async closeCycle(): Promise<void> {
    this.teardown();
    await switchState(this.opts.store, this.opts.frontendPath, XenbusStateClosing);
    await switchState(this.opts.store, this.opts.frontendPath, XenbusStateClosed);
  }

  private async readBackFeatures(): Promise<BackFeatures> {
    const s = this.opts.store;
    const b = this.backendPath;
    if (!(await readBool(s, b, 'feature-rx-copy'))) throw new XenpvError('EOPNOTSUPP', 'backend has no feature-rx-copy', {});
    const sg = await readBool(s, b, 'feature-sg');
    return {
      sg,
      gsoV4: sg && (await readBool(s, b, 'feature-gso-tcpv4')),
      gsoV6: sg && (await readBool(s, b, 'feature-gso-tcpv6')),
      split: await readBool(s, b, 'feature-split-event-channels'),
      maxQueues: await readUint(s, b, 'multi-queue-max-queues', { default: 1, max: 1024 }),
      ctrl: await readBool(s, b, 'feature-ctrl-ring'),
      multicast: await readBool(s, b, 'feature-multicast-control'),
      csumOffload: !(await readBool(s, b, 'feature-no-csum-offload')),
    };
  }

  private async connect(): Promise<void> {
    let back: BackFeatures;
    try {
      back = await this.readBackFeatures();
    } catch (err) {
      if (errorCode(err) === 'EPROTO' || errorCode(err) === 'EOPNOTSUPP') return this.closeCycle();
      throw err;
    }
    this.back = back;
    const f = this.features;
    const n = Math.max(1, Math.min(f.queues, back.maxQueues, FRONT_DEFAULTS.maxQueues));
    const split = f.split && back.split;
    this.brokenReason = undefined;
    this.pool = new PagePool(this.opts.platform, this.backendId);
    try {
      for (let q = 0; q < n; q++) this.queues.push(new FrontQueue(this.queueContext(back), q, split));
      if (f.ctrlRing && back.ctrl) this.ctrl = new FrontCtrl(this.opts.platform, this.backendId, this.pool, (r) => this.markBroken(r));
    } catch (err) {
      this.teardown();
      throw err;
    }
    this.mapping = Array.from({ length: MAPPING_SIZE }, (_, i) => i % n);
    await this.publish(back, n, split);
  }

  /** Every key and state=Connected in one transaction; stale keys of an earlier connection go. */
  private async publish(back: BackFeatures, n: number, split: boolean): Promise<void> {
    const f = this.features;
    const dir = this.opts.frontendPath;
    const keys: Record<string, KeyValue> = {
      'request-rx-copy': true, 'feature-rx-notify': true, 'feature-sg': f.sg,
      'feature-gso-tcpv4': f.sg && f.gso, 'feature-gso-tcpv6': f.sg && f.gso,
      'feature-no-csum-offload': !f.csumOffload, 'feature-ipv6-csum-offload': f.ipv6CsumOffload,
      'request-multicast-control': f.multicastControl && back.multicast,
    };
    if (back.maxQueues > 1) keys['multi-queue-num-queues'] = n;
    this.queues.forEach((q, i) => {
      const qd = queueDir('', i, n).replace(/^\//, '');
      const k = (name: string): string => (qd === '' ? name : `${qd}/${name}`);
      keys[k('tx-ring-ref')] = q.txPage.ref;
      keys[k('rx-ring-ref')] = q.rxPage.ref;
      if (split) {
        keys[k('event-channel-tx')] = q.ports.tx;
        keys[k('event-channel-rx')] = q.ports.rx;
      } else keys[k('event-channel')] = q.ports.tx;
    });
    if (this.ctrl !== undefined) {
      keys['ctrl-ring-ref'] = this.ctrl.page.ref;
      keys['event-channel-ctrl'] = this.ctrl.evt.port;
    }
    const stale = ['tx-ring-ref', 'rx-ring-ref', 'event-channel', 'event-channel-tx', 'event-channel-rx', 'ctrl-ring-ref', 'event-channel-ctrl',
      'multi-queue-num-queues', ...Array.from({ length: FRONT_DEFAULTS.maxQueues }, (_, i) => `queue-${i}`)];
    await this.opts.store.withTransaction(async (tx) => {
      for (const k of stale) await tx.rm(`${dir}/${k}`).catch((e: unknown) => { if (errorCode(e) !== 'ENOENT') throw e; });
      for (const [k, v] of Object.entries(keys)) await tx.write(`${dir}/${k}`, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
      await tx.write(`${dir}/state`, String(XenbusStateConnected));
    });
  }

  private async linkUpNow(): Promise<void> {
    if (this.ctrl !== undefined && this.pool !== undefined && this.queues.length > 1) {
      const key = this.opts.hashKey ?? DEFAULT_HASH_KEY;
      try {
        await setupHash(this.ctrl, this.pool, { key, flags: DEFAULT_HASH_FLAGS, mapping: this.mapping });
      } catch {
        this.mapping = []; // steering stays the backend's choice; transmit still spreads by our hash
      }
    }
    this.up = true;
    for (const w of this.upWaiters.splice(0)) w();
  }

  private queueContext(back: BackFeatures) {
    return {
      platform: this.opts.platform,
      backend: this.backendId,
      pool: this.pool!,
      txBuffers: this.opts.buffers?.tx ?? FRONT_DEFAULTS.txBuffers,
      rxBuffers: this.opts.buffers?.rx ?? FRONT_DEFAULTS.rxBuffers,
      txBacklog: this.opts.buffers?.backlog ?? FRONT_DEFAULTS.txBacklog,
      rxBudget: FRONT_DEFAULTS.rxBudget,
      maxRxSlots: FRONT_DEFAULTS.maxRxSlots,
      back: { sg: back.sg, gsoV4: back.gsoV4, gsoV6: back.gsoV6 },
      counters: this.counters,
      receive: (frame: Uint8Array, info: RxFrameInfo) => this.onReceive?.(frame, info),
      // Methods, not getters: an object literal with a getter is a dictionary-mode object, and
      // every property load from it (per packet) went through a generic LoadIC.
      rxTransient: () => this.rxTransient,
      broken: (r: string) => this.markBroken(r),
      txRoom: () => this.wakeTxWaiters(),
    };
  }

  /** R5: a misbehaving backend stops this device (sticky until the next connection). */
  private markBroken(reason: string): void {
    if (this.brokenReason !== undefined) return;
    this.brokenReason = reason;
    this.up = false;
    for (const q of this.queues) q.halt();
  }

  /** Pick the transmit queue: Toeplitz hash of the flow, through the table given to the backend. */
  private queueFor(frame: Uint8Array): FrontQueue | undefined {
    if (this.queues.length <= 1) return this.queues[0];
    const input = hashInput(frame, DEFAULT_HASH_FLAGS);
    if (input === undefined) return this.queues[0];
    const h = toeplitzHash(this.opts.hashKey ?? DEFAULT_HASH_KEY, input.data);
    const q = this.mapping.length > 0 ? this.mapping[h % this.mapping.length]! : h % this.queues.length;
    return this.queues[q];
  }

  /** Send one frame. False when it was dropped (link down, too big, backlog full). */
  transmit(frame: Uint8Array, info: FrameInfo = { csumBlank: false, dataValidated: false }): boolean {
    const q = this.up && this.brokenReason === undefined ? this.queueFor(frame) : undefined;
    if (q === undefined) {
      this.counters.txDropped++;
      return false;
    }
    // Checksum-blank frames only to a backend that takes them (feature-no-csum-offload).
    const ok = info.csumBlank && this.back?.csumOffload === false ? { ...info, csumBlank: false } : info;
    return q.transmit(frame, ok);
  }

  /** The queue objects, for tests that play a hostile frontend through raw slots. */
  queue(i: number): FrontQueue | undefined {
    return this.queues[i];
  }

  /** Add or remove a multicast filter entry: a dummy transmit with an MCAST extra (netif.h). */
  multicast(op: 'add' | 'del', addr: Uint8Array): boolean {
    const q = this.queues[0];
    const page = q?.borrowTxPage();
    if (q === undefined || page === undefined) return false;
    return q.putRaw([
      { kind: 'req', req: { gref: page.page.ref, offset: 0, flags: NETTXF_extra_info, id: page.id, size: 0 } },
      { kind: 'extra', extra: { kind: op === 'add' ? 'mcast_add' : 'mcast_del', flags: 0, addr } },
    ]);
  }

  private teardown(): void {
    this.up = false;
    this.sawBackendConnected = false;
    for (const q of this.queues) q.dispose();
    this.queues = [];
    this.ctrl?.dispose();
    this.ctrl = undefined;
    if (this.pool !== undefined) {
      this.pool.dispose();
      this.oldPools.push(this.pool);
      this.pool = undefined;
    }
    this.oldPools = this.oldPools.filter((p) => p.pending > 0);
  }

  /** Pages the backend has not unmapped yet (R8); 0 after a clean close. */
  get pendingPages(): number {
    for (const p of this.oldPools) p.retryNow();
    return this.oldPools.reduce((n, p) => n + p.pending, this.pool?.pending ?? 0);
  }

  /**
   * Back-pressure for a sender (a UDP socket's full send buffer): true while frames wait in a
   * queue's backlog for ring slots. `waitTxRoom` resolves when the backlogs empty (or after
   * `timeoutMs`), so a stream sender waits for the backend instead of filling the backlog
   * until it drops.
   */
  get txBacklogged(): boolean {
    return this.queues.some((q) => q.txBacklogged);
  }

  /**
   * One-slot frames every queue takes now without backlogging them (a socket's send room):
   * 0 while the device is down or a backlog waits. Takes the tx completions already there.
   */
  txSpace(): number {
    if (!this.up || this.brokenReason !== undefined || this.queues.length === 0) return 0;
    let n = Number.MAX_SAFE_INTEGER;
    for (const q of this.queues) n = Math.min(n, q.txSpace());
    return n;
  }

  /**
   * A buffer of `len` bytes to build the next frame in, which `transmit` then sends without
   * copying (FrontQueue.txBuffer: a free granted page), or undefined: the link is down, no page
   * or slot is free now, or there are several queues (which one a frame takes depends on its
   * bytes, known only once it is built). Valid until the next call.
   */
  txBuffer(len: number): Uint8Array | undefined {
    if (!this.up || this.brokenReason !== undefined || this.queues.length !== 1) return undefined;
    return this.queues[0]!.txBuffer(len);
  }

  /**
   * Run `send` as one burst of transmits (Linux's `xmit_more`): the frames it transmits are
   * published to the backend together when it returns (one ring push, at most one kick per
   * queue), not one by one. For a sender that sends several frames in a row.
   */
  txBurst<T>(send: () => T): T {
    const qs = this.queues;
    try {
      // Inside the try: should a begin throw, the queues already begun still publish (endBurst
      // of a queue not begun only pushes what it holds, which is nothing).
      for (const q of qs) q.beginBurst();
      return send();
    } finally {
      for (const q of qs) q.endBurst();
    }
  }

  waitTxRoom(timeoutMs: number): Promise<void> {
    if (!this.txBacklogged) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      // A timed-out waiter leaves the list: a sender that polls this while the backend takes
      // nothing would otherwise leave one behind per call.
      const timer = setTimeout(() => {
        this.txWaiters = this.txWaiters.filter((w) => w !== done);
        resolve();
      }, timeoutMs);
      this.txWaiters.push(done);
    });
  }

  private wakeTxWaiters(): void {
    if (this.txWaiters.length === 0 || this.txBacklogged) return;
    const w = this.txWaiters;
    this.txWaiters = [];
    for (const f of w) f();
  }

  /** Wait (up to `timeoutMs`) until every frame handed to `transmit` was answered by the backend. */
  async flush(timeoutMs = 1000): Promise<boolean> {
    const end = performance.now() + timeoutMs;
    // Completions raise no event unless something waits for pages (FrontQueue.armTxCompletions).
    const idle = (): boolean => this.queues.every((q) => (q.pollTx(), q.txIdle));
    while (!idle() && performance.now() < end) await new Promise((r) => setTimeout(r, 1));
    return idle();
  }

  /**
   * Close the device (guest shutdown), as Linux netfront's remove: Closing, wait (bounded) for
   * the backend to follow and unmap, tear down, Closed. Pages a backend still maps stay aside.
   */
  async dispose(timeoutMs = 2000): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.reactor.dispose();
    this.watch?.dispose();
    await this.reactor.idle();
    const s = this.opts.store;
    const dir = this.opts.frontendPath;
    await switchState(s, dir, XenbusStateClosing).catch(() => undefined);
    if (this.queues.length > 0) {
      const gone = (p: Awaited<ReturnType<typeof readState>>): boolean =>
        p.kind !== 'state' || p.state === XenbusStateClosing || p.state === XenbusStateClosed;
      await waitForState(s, this.backendPath, gone, timeoutMs).catch(() => undefined);
    }
    this.teardown();
    await switchState(s, dir, XenbusStateClosed).catch(() => undefined);
    const end = performance.now() + timeoutMs;
    while (this.pendingPages > 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 2));
  }
}
