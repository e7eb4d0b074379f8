/**
 * A hostile netfront for the fuzz test (hostile-fuzz.test.ts; not a test): it owns its shared
 * pages and writes ring slots, producer indexes and xenstore keys itself, byte by byte, so it
 * can put on the rings what no NetFront would (bogus chains, stale and foreign grant refs,
 * producer jumps, event storms), and reads netback's answers straight from the pages.
 *
 * Every page it holds is accounted for: pages granted to dom0 for data (`txData`, `rxBufs`),
 * read-only pages offered as rx buffers (`rxRo`), and pages netback must never read or write:
 * `decoys` (never granted), `revoked` (granted, then the grant ended: a stale ref) and
 * `foreign` (granted to another domain). Those three are filled with MARKER; the test asserts
 * the marker never reaches another guest and that they are unchanged when the session ends.
 */
import assert from 'node:assert/strict';
import type { DomId, Frame, GrantRef } from '../../base/index.js';
import type { EvtchnBinding } from '../../hv/platform.js';
import { backendPath, frontendPath } from '../../xenbus/paths.js';
import { until, type BackendOnly, type NetEnv } from './test-support.js';

/** 16 bytes no frame of the test ever carries by chance. */
export const MARKER = Uint8Array.from([0xd3, 0xc0, 0x7e, 0x5a, 0x91, 0x0b, 0xee, 0x42, 0x6f, 0x1d, 0xa8, 0x33, 0xc5, 0x7a, 0x09, 0xb6]);
/** The fill of read-only rx buffers: netback must never write into them. */
const RO_FILL = 0xa5;

// ring.h: req_prod, req_event, rsp_prod, rsp_event, then the entries at byte 64.
const REQ_PROD = 0;
const RSP_PROD = 8;
const ENTRIES = 64;
const TX_ENTRY = 12;
const RX_ENTRY = 8;
const CTRL_ENTRY = 16;
const TX_SIZE = 256;
const RX_SIZE = 256;
const CTRL_SIZE = 128;

export interface HostileFeatures {
  readonly queues: 1 | 2;
  readonly split: boolean;
  readonly sg: boolean;
  readonly gsoV4: boolean;
  readonly gsoV6: boolean;
  readonly noCsum: boolean;
  readonly ipv6Csum: boolean;
  readonly rxNotify: boolean;
  readonly mcastCtrl: boolean;
  readonly ctrl: boolean;
  /** Name the tx ring's page as the rx ring too: both rings in one page, overwriting each other. */
  readonly sameRing: boolean;
}

/** What a posted rx request named, kept until its response is read. */
export interface RxPosted {
  readonly id: number;
  readonly gref: number;
  /** Index in `rxBufs` when the ref is one of them, else -1 (netback's copy must fail). */
  readonly buf: number;
  /** Another request names the same buffer while this one is outstanding: content unknown. */
  dup: boolean;
}

export interface RawQueue {
  readonly tx: DataView;
  readonly rx: DataView;
  readonly txEvt: EvtchnBinding;
  readonly rxEvt: EvtchnBinding;
  /** Our private producer and the responses read so far, per ring. */
  txProd: number;
  txCons: number;
  rxProd: number;
  rxCons: number;
  readonly rxPosted: (RxPosted | undefined)[];
}

interface PageSet {
  readonly frames: Frame[];
  readonly refs: GrantRef[];
  readonly bytes: Uint8Array[];
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export class HostileSession {
  readonly queues: RawQueue[] = [];
  readonly txData: PageSet;
  readonly rxBufs: PageSet;
  readonly rxRo: PageSet;
  /** The outstanding request naming each rx buffer, on whichever queue (the pages are shared). */
  readonly rxBufOwner: ({ readonly q: RawQueue; readonly index: number } | undefined)[];
  /** Two pages the control ring's SET_HASH_KEY and SET_HASH_MAPPING copy from. */
  readonly ctrlData: PageSet;
  private readonly decoys: PageSet;
  private readonly revoked: PageSet;
  private readonly foreign: PageSet;
  private readonly rings: PageSet;
  ctrl: { readonly ring: DataView; readonly evt: EvtchnBinding; prod: number; cons: number } | undefined;
  /** Every ref granted to dom0 (a "wild" ref must not be one of them). */
  readonly grantedToDom0 = new Set<number>();
  notifies = 0;
  private readonly bindings: EvtchnBinding[] = [];
  /** Refs whose grant we ended. */
  private readonly ended = new Set<number>();
  private closed = false;
  private released = false;

  private constructor(private readonly g: BackendOnly, private readonly env: NetEnv, readonly features: HostileFeatures, other: DomId) {
    const p = g.platform;
    /** `n` pages, filled, granted to `to` (not at all when undefined). */
    const grant = (n: number, to: DomId | undefined, readonly: boolean, fill?: (b: Uint8Array) => void): PageSet => {
      const frames = p.memory.allocPages(n);
      const bytes = frames.map((f) => p.memory.page(f));
      if (fill !== undefined) bytes.forEach(fill);
      const refs = to === undefined ? [] : frames.map((f) => p.grants.grantAccess(to, f, readonly));
      if (to === 0) for (const r of refs) this.grantedToDom0.add(r);
      return { frames, refs, bytes };
    };
    const marker = (b: Uint8Array): void => {
      for (let at = 0; at < b.length; at += MARKER.length) b.set(MARKER, at);
    };
    const dom0 = 0 as DomId;
    this.rings = grant(2 * features.queues + (features.ctrl ? 1 : 0), dom0, false);
    this.txData = grant(48, dom0, true);
    this.rxBufs = grant(64, dom0, false);
    this.rxRo = grant(4, dom0, true, (b) => b.fill(RO_FILL));
    this.ctrlData = grant(2, dom0, true);
    this.rxBufOwner = new Array(this.rxBufs.refs.length).fill(undefined);
    this.foreign = grant(4, other, true, marker);
    this.decoys = grant(4, undefined, true, marker);
    // Granted last, ended at once: nothing granted after them could take their refs over.
    this.revoked = grant(4, dom0, true, marker);
    for (const r of this.revoked.refs) {
      this.grantedToDom0.delete(r);
      assert.ok(p.grants.endAccess(r));
      this.ended.add(r);
    }
    for (let q = 0; q < features.queues; q++) {
      const tx = dv(this.rings.bytes[2 * q]!);
      const rx = dv(this.rings.bytes[2 * q + 1]!);
      // SHARED_RING_INIT: producers 0, req_event = rsp_event = 1.
      for (const r of [tx, rx]) [4, 12].forEach((o) => r.setUint32(o, 1, true));
      const txEvt = this.bind(p.events.allocUnbound(dom0, () => undefined));
      const rxEvt = features.split ? this.bind(p.events.allocUnbound(dom0, () => undefined)) : txEvt;
      this.queues.push({ tx, rx, txEvt, rxEvt, txProd: 0, txCons: 0, rxProd: 0, rxCons: 0, rxPosted: new Array(RX_SIZE) });
    }
    if (features.ctrl) {
      const ring = dv(this.rings.bytes[2 * features.queues]!);
      [4, 12].forEach((o) => ring.setUint32(o, 1, true));
      this.ctrl = { ring, evt: this.bind(p.events.allocUnbound(dom0, () => undefined)), prod: 0, cons: 0 };
    }
  }

  private bind(b: EvtchnBinding): EvtchnBinding {
    this.bindings.push(b);
    return b;
  }

  get frontPath(): string {
    return frontendPath(this.g.dev);
  }

  get backPath(): string {
    return backendPath(this.g.dev);
  }

  /** Stale refs (ended grants), refs granted to another domain: copies with them must fail. */
  get badRefs(): { revoked: readonly number[]; foreign: readonly number[] } {
    return { revoked: this.revoked.refs, foreign: this.foreign.refs };
  }

  /** A new session's pages and channels, connected (or refused: the caller checks the state). */
  static async open(env: NetEnv, g: BackendOnly, features: HostileFeatures, other: DomId): Promise<HostileSession> {
    const s = new HostileSession(g, env, features, other);
    try {
      await s.connect();
    } catch (err) {
      await s.abandon();
      throw err;
    }
    return s;
  }

  /** Write the keys netback reads (an earlier session's removed first), then state Connected. */
  private async connect(): Promise<void> {
    const c = this.g.client;
    const fe = this.frontPath;
    const f = this.features;
    await waitBackState(this.env, this.backPath, ['2'], 'InitWait before connecting');
    for (const k of ['tx-ring-ref', 'rx-ring-ref', 'event-channel', 'event-channel-tx', 'event-channel-rx', 'queue-0', 'queue-1', 'ctrl-ring-ref', 'event-channel-ctrl']) {
      await c.rm(`${fe}/${k}`).catch(() => undefined);
    }
    const keys: Record<string, number> = {
      'request-rx-copy': 1, 'feature-rx-notify': +f.rxNotify, 'feature-sg': +f.sg, 'feature-gso-tcpv4': +f.gsoV4, 'feature-gso-tcpv6': +f.gsoV6,
      'feature-no-csum-offload': +f.noCsum, 'feature-ipv6-csum-offload': +f.ipv6Csum, 'request-multicast-control': +f.mcastCtrl,
      'multi-queue-num-queues': f.queues,
    };
    this.queues.forEach((q, i) => {
      const dir = f.queues === 1 ? '' : `queue-${i}/`;
      keys[`${dir}tx-ring-ref`] = this.rings.refs[2 * i]!;
      keys[`${dir}rx-ring-ref`] = this.rings.refs[2 * i + (f.sameRing ? 0 : 1)]!;
      if (f.split) {
        keys[`${dir}event-channel-tx`] = q.txEvt.port;
        keys[`${dir}event-channel-rx`] = q.rxEvt.port;
      } else keys[`${dir}event-channel`] = q.txEvt.port;
    });
    if (this.ctrl !== undefined) {
      keys['ctrl-ring-ref'] = this.rings.refs[2 * f.queues]!;
      keys['event-channel-ctrl'] = this.ctrl.evt.port;
    }
    for (const [k, v] of Object.entries(keys)) await c.write(`${fe}/${k}`, String(v));
    await c.write(`${fe}/state`, '4');
    await waitBackState(this.env, this.backPath, ['4', '5'], 'Connected (or a refusal)');
  }

  // ---- tx ring ----

  /** Write 12-byte slots at our private producer (not yet published). */
  txPut(q: RawQueue, slots: readonly Uint8Array[]): void {
    for (const s of slots) {
      const at = ENTRIES + (q.txProd % TX_SIZE) * TX_ENTRY;
      new Uint8Array(q.tx.buffer, q.tx.byteOffset + at, TX_ENTRY).set(s);
      q.txProd = (q.txProd + 1) >>> 0;
    }
  }

  /** Tx slots the ring can take now (what a well-behaved frontend may put). */
  txFree(q: RawQueue): number {
    return TX_SIZE - ((q.txProd - q.txCons) >>> 0);
  }

  publishTx(q: RawQueue, prod = q.txProd): void {
    q.tx.setUint32(REQ_PROD, prod >>> 0, true);
  }

  /** The tx responses published since the last call: [id, status] in ring order. */
  takeTxResponses(q: RawQueue): { id: number; status: number }[] {
    const prod = q.tx.getUint32(RSP_PROD, true);
    const n = (prod - q.txCons) >>> 0;
    assert.ok(n <= ((q.txProd - q.txCons) >>> 0), `tx rsp_prod ${prod} ahead of our requests (cons ${q.txCons}, prod ${q.txProd})`);
    const out: { id: number; status: number }[] = [];
    for (let i = 0; i < n; i++) {
      const at = ENTRIES + ((q.txCons + i) % TX_SIZE) * TX_ENTRY;
      out.push({ id: q.tx.getUint16(at, true), status: q.tx.getInt16(at + 2, true) });
    }
    q.txCons = prod;
    return out;
  }

  txResponsesWaiting(q: RawQueue): number {
    return (q.tx.getUint32(RSP_PROD, true) - q.txCons) >>> 0;
  }

  // ---- rx ring ----

  /** Post one rx request (published with publishRx). */
  rxPost(q: RawQueue, id: number, gref: number): void {
    const idx = q.rxProd;
    const at = ENTRIES + (idx % RX_SIZE) * RX_ENTRY;
    q.rx.setUint16(at, id & 0xffff, true);
    q.rx.setUint16(at + 2, 0, true);
    q.rx.setUint32(at + 4, gref >>> 0, true);
    const buf = this.rxBufs.refs.indexOf(gref as GrantRef);
    const posted: RxPosted = { id: id & 0xffff, gref: gref >>> 0, buf, dup: false };
    if (buf >= 0) {
      const prev = this.rxBufOwner[buf];
      if (prev !== undefined) {
        posted.dup = true;
        prev.q.rxPosted[prev.index % RX_SIZE]!.dup = true;
      }
      this.rxBufOwner[buf] = { q, index: idx };
    }
    q.rxPosted[idx % RX_SIZE] = posted;
    q.rxProd = (idx + 1) >>> 0;
  }

  rxFree(q: RawQueue): number {
    return RX_SIZE - ((q.rxProd - q.rxCons) >>> 0);
  }

  publishRx(q: RawQueue, prod = q.rxProd): void {
    q.rx.setUint32(REQ_PROD, prod >>> 0, true);
  }

  /**
   * The rx responses published since the last call, with the request each answers (the one
   * posted at the same ring index) and, for a data response, a view of the bytes it names.
   */
  takeRxResponses(q: RawQueue): { raw: DataView; req: RxPosted; index: number }[] {
    const prod = q.rx.getUint32(RSP_PROD, true);
    const n = (prod - q.rxCons) >>> 0;
    assert.ok(n <= ((q.rxProd - q.rxCons) >>> 0), `rx rsp_prod ${prod} ahead of our requests (cons ${q.rxCons}, prod ${q.rxProd})`);
    const out: { raw: DataView; req: RxPosted; index: number }[] = [];
    for (let i = 0; i < n; i++) {
      const index = (q.rxCons + i) >>> 0;
      const at = ENTRIES + (index % RX_SIZE) * RX_ENTRY;
      const req = q.rxPosted[index % RX_SIZE]!;
      // A private copy of the response: we read it as the frontend would, once.
      out.push({ raw: new DataView(q.rx.buffer.slice(q.rx.byteOffset + at, q.rx.byteOffset + at + RX_ENTRY)), req, index });
    }
    q.rxCons = prod;
    return out;
  }

  /** Done with the responses of `taken`: their buffers may be posted again without `dup`. */
  releaseRx(q: RawQueue, taken: readonly { req: RxPosted; index: number }[]): void {
    for (const t of taken) {
      const owner = t.req.buf >= 0 ? this.rxBufOwner[t.req.buf] : undefined;
      if (owner?.q === q && owner.index === t.index) this.rxBufOwner[t.req.buf] = undefined;
    }
  }

  // ---- control ring ----

  ctrlPut(id: number, type: number, data: readonly [number, number, number]): void {
    const c = this.ctrl!;
    const at = ENTRIES + (c.prod % CTRL_SIZE) * CTRL_ENTRY;
    c.ring.setUint16(at, id & 0xffff, true);
    c.ring.setUint16(at + 2, type & 0xffff, true);
    data.forEach((d, i) => c.ring.setUint32(at + 4 + 4 * i, d >>> 0, true));
    c.prod = (c.prod + 1) >>> 0;
  }

  ctrlFree(): number {
    const c = this.ctrl!;
    return CTRL_SIZE - ((c.prod - c.cons) >>> 0);
  }

  publishCtrl(prod = this.ctrl!.prod): void {
    this.ctrl!.ring.setUint32(REQ_PROD, prod >>> 0, true);
  }

  takeCtrlResponses(): { id: number; type: number; status: number; data: number }[] {
    const c = this.ctrl!;
    const prod = c.ring.getUint32(RSP_PROD, true);
    const n = (prod - c.cons) >>> 0;
    assert.ok(n <= ((c.prod - c.cons) >>> 0), `ctrl rsp_prod ${prod} ahead of our requests`);
    const out: { id: number; type: number; status: number; data: number }[] = [];
    for (let i = 0; i < n; i++) {
      const at = ENTRIES + ((c.cons + i) % CTRL_SIZE) * CTRL_ENTRY;
      out.push({ id: c.ring.getUint16(at, true), type: c.ring.getUint16(at + 2, true), status: c.ring.getUint32(at + 4, true), data: c.ring.getUint32(at + 8, true) });
    }
    c.cons = prod;
    return out;
  }

  ctrlResponsesWaiting(): number {
    const c = this.ctrl!;
    return (c.ring.getUint32(RSP_PROD, true) - c.cons) >>> 0;
  }

  /** Close our event channels now (a frontend that walks away); netback's sends must not fail. */
  dropChannels(): void {
    for (const b of this.bindings) b.dispose();
  }

  notify(evt: EvtchnBinding, times = 1): void {
    for (let i = 0; i < times; i++) evt.notify();
    this.notifies += times;
  }

  /**
   * Close: state Closed, wait for the backend to follow and unmap, then end every grant
   * (each must end: netback still mapping a page after Closed is a leak) and check that the
   * pages netback may not touch are as they were.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.g.client.write(`${this.frontPath}/state`, '6');
      await this.backendClosed();
      this.dropChannels();
      for (const set of [this.decoys, this.revoked, this.foreign]) {
        for (const b of set.bytes) for (let at = 0; at < b.length; at += MARKER.length) assert.deepEqual(b.subarray(at, at + MARKER.length), MARKER, 'a page never granted to dom0 changed');
      }
      for (const b of this.rxRo.bytes) assert.ok(b.every((x) => x === RO_FILL), 'netback wrote into a read-only rx buffer');
      const mapped = this.endGrants();
      assert.deepEqual(mapped, [], 'grants still mapped after the backend closed');
    } finally {
      await this.release();
    }
  }

  /**
   * The backend has followed our last state write to Closed: off the bridge, its handshake
   * idle, and still so a moment later (states written just before, a flap, may have taken it
   * through Connected again on the way).
   */
  private async backendClosed(): Promise<void> {
    const end = performance.now() + 3000;
    for (let stable = 0; stable < 2; ) {
      assert.ok(performance.now() < end, 'the backend did not settle in Closed after the frontend closed');
      await waitBackState(this.env, this.backPath, ['6'], 'Closed after the frontend closed');
      assert.ok(await until(this.env, () => !this.g.back.connected, 2000), 'netback left the bridge');
      await this.g.back.idle();
      await new Promise((r) => setTimeout(r, 5));
      const state = await this.env.dom0.readString(`${this.backPath}/state`).catch(() => '');
      stable = state === '6' && !this.g.back.connected ? stable + 1 : 0;
    }
  }

  /** End the grants not ended yet; the refs still mapped (not ended). */
  private endGrants(): number[] {
    const p = this.g.platform;
    const mapped: number[] = [];
    for (const set of [this.rings, this.txData, this.rxBufs, this.rxRo, this.ctrlData, this.foreign]) {
      for (const r of set.refs) {
        if (this.ended.has(r)) continue;
        if (p.grants.endAccess(r)) this.ended.add(r);
        else mapped.push(r);
      }
    }
    return mapped;
  }

  /**
   * Give everything back, whatever state the case failed in: a backend that still maps our
   * pages is disposed first (the case has failed already), so one failure does not leave
   * grants behind that every later case would report as its own leak.
   */
  private async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.dropChannels();
    if (this.endGrants().length > 0) {
      await until(this.env, () => this.endGrants().length === 0, 1000);
      if (this.endGrants().length > 0) {
        await this.g.back.dispose();
        this.endGrants();
      }
    }
    const p = this.g.platform;
    for (const set of [this.rings, this.txData, this.rxBufs, this.rxRo, this.ctrlData, this.foreign, this.decoys, this.revoked]) {
      // A page still granted (its backend would not let go) is left to the domain's teardown.
      p.memory.freePages(set.frames.filter((_, i) => set.refs[i] === undefined || this.ended.has(set.refs[i]!)));
    }
  }

  /** Free everything without checks (a failed case's cleanup); never throws. */
  async abandon(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.g.client.write(`${this.frontPath}/state`, '6').catch(() => undefined);
      await until(this.env, () => !this.g.back.connected, 1000);
    }
    await this.release().catch(() => undefined);
  }

  /** Back to Initialising after Closed, so that the next session can connect. */
  static async reset(env: NetEnv, g: BackendOnly): Promise<void> {
    await g.client.write(`${frontendPath(g.dev)}/state`, '1');
    await waitBackState(env, backendPath(g.dev), ['2'], 'InitWait after the frontend reset');
  }
}

/** Poll the backend's state node until it is one of `states`. */
export async function waitBackState(env: NetEnv, be: string, states: readonly string[], what: string, timeoutMs = 3000): Promise<string> {
  let state = '';
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    state = await env.dom0.readString(`${be}/state`).catch(() => '');
    if (states.includes(state)) return state;
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.fail(`backend state ${state}, waiting for ${what}`);
}
