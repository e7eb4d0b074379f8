/**
 * Hostile frontend, randomized (issue: "A hostile frontend (bogus slot counts, zero-length and
 * oversized fragments, headers split across slots, a receiver that never posts buffers, event
 * storms) is bounded and answered with errors or disconnection; other vifs keep working").
 *
 * Each case builds a host (withNet: guests b, c and d with NetFronts and stacks on one bridge;
 * d without GSO, scatter-gather or checksum offload, with two hashed queues) and a fourth
 * domain whose "netfront" is hostile-front.ts: it connects one to three times and each time
 * throws rounds of random tx slot chains, rx requests, control requests, producer jumps and
 * event storms at netback, sometimes with a `rate` limit or lockMac on its vif. hostile-model.ts
 * says what netback must answer; the invariants:
 * - nothing escapes into the event loop (uncaughtException / unhandledRejection), and a
 *   netback bug never hides as a fatal "internal error";
 * - every consumed tx slot is answered exactly once, in ring order, with the id of its
 *   request and the status the model gives (OKAY, ERROR, NULL for extra slots); a fatal
 *   packet disables the vif: no answers from it on, off the bridge, Closing, error node;
 * - rx responses answer posted requests in their slots, claim success only for writable
 *   buffers granted to dom0, and carry bytes b, c or d sent;
 * - b and c receive from the hostile guest only frames it granted, byte for byte as the model
 *   assembles them, and get the ones addressed to them; d only frames (or segments of them)
 *   with addresses someone sent from; pages it never granted to dom0 carry a marker that never
 *   shows up anywhere and that netback never overwrites; read-only rx buffers stay untouched;
 * - packets refused are counted under the reason the model gives (txDropReasons);
 * - b keeps pinging c throughout each session (unless the hostile guest got b's or c's address
 *   into a bridge without lockMac: a learning bridge then misdelivers) and afterwards;
 * - every grant ends once the hostile frontend closes, and withNet finds no leak after teardown.
 *
 * The cases, their generators and the frames they carry are in hostile-fuzz-cases.ts; the tx
 * slots a packet spec becomes, in hostile-fuzz-slots.ts.
 *
 * In-suite runs are few; a campaign: XENPV_FUZZ_RUNS=20000 (XENPV_FUZZ_SEED to replay a run,
 * XENPV_FUZZ_VERBOSE=1 for the failing case's log and what the runs exercised).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DomId } from '../../base/index.js';
import { fuzzCampaign } from '../../base/testing.js';
import { backendPath, errorPath } from '../../xenbus/paths.js';
import { parseMac, isGroupMac, isLinkLocalMac, isZeroMac } from '../../devices/net/bridge/index.js';
import { NETIF_RSP_ERROR, NETIF_RSP_NULL } from '../../abi/io/netif.js';
import { BACK_LIMITS } from '../../devices/net/protocol.js';
import { Ping } from '../net/ping.js';
import { HostileSession, waitBackState, type RawQueue } from './hostile-front.js';
import { expectTx, type Forwarded } from './hostile-model.js';
import { until, withNet, type BackendOnly, type NetEnv, type NetGuest } from './test-support.js';
import { SlotWriter, type FuzzMacs } from './hostile-fuzz-slots.js';
import {
  Bag,
  caseSpec,
  hasMarker,
  HOSTILE_LIMITS,
  makeFrame,
  tcpV4,
  type CaseSpec,
  type CtrlSpec,
  type EndSpec,
  type HashOn,
  type RefPick,
  type RoundSpec,
  type SessionSpec,
} from './hostile-fuzz-cases.js';

// ---------------------------------------------------------------------------------------------
// One case

/** What the runs exercised, printed after a campaign (a fuzz that passes should say what it did). */
const seen = {
  sessions: 0, pings: 0, rounds: 0, txSlots: 0, okay: 0, error: 0, null: 0, forwarded: 0, delivered: 0,
  rxFrames: 0, rxSlots: 0, rxErrors: 0, rxExtras: 0, hashOn: 0, ends: {} as Record<string, number>, gsoSegmented: 0, gsoRefused: 0, csumFilled: 0, ctrl: 0, storms: 0, fatal: {} as Record<string, number>,
};

interface Ctx {
  readonly env: NetEnv;
  readonly b: NetGuest;
  readonly c: NetGuest;
  /**
   * A guest without GSO, scatter-gather or checksum offload (the bridge segments and fills
   * for it), with two queues and hash steering (its netback hashes what it gets).
   */
  readonly d: NetGuest;
  readonly h: BackendOnly;
  readonly macs: FuzzMacs;
  /** Every frame b, c and d transmitted (what the hostile guest may receive). */
  readonly legit: Bag;
  /** The Ethernet addresses (first 12 bytes) of every frame sent or forwarded: what d's segments start with. */
  readonly headers: Set<string>;
  /** Per receiving guest: frames the hostile guest had forwarded (may arrive), and must arrive. */
  readonly allowed: { readonly b: Bag; readonly c: Bag };
  readonly must: { readonly b: Bag; readonly c: Bag };
  readonly lockMac: boolean;
  /** The hostile guest sent a frame with b's or c's source address past the bridge: it may misdeliver theirs. */
  spoofed: boolean;
  /** What netback forwarded cannot be predicted (sameRing): b and c are only checked for the marker. */
  loose: boolean;
  /** Notifications the hostile guest sent, all sessions (netback cannot have handled more events). */
  notifies: number;
  pinger: Pinger | undefined;
  log: string[];
}

/** b pings c again and again while a session runs (polled by `settle`): each ping must come back whole. */
class Pinger {
  private ping: Ping | undefined;
  /** The output of pings that lost a reply. */
  readonly lost: string[] = [];
  finished = 0;

  constructor(private readonly from: NetGuest, private readonly to: NetGuest) {}

  poll(): void {
    if (this.ping?.done) {
      if (this.ping.result().received !== 2) this.lost.push(this.ping.lines.join(' | '));
      this.finished++;
      this.ping = undefined;
    }
    this.ping ??= new Ping(this.from.stack, { dst: this.to.ip, count: 2, intervalMs: 5, timeoutMs: 2000 });
    this.ping.poll();
  }

  /** Let the ping in flight (or a first one) finish, then stop. */
  async stop(x: Ctx): Promise<void> {
    const want = Math.max(1, this.finished + (this.ping === undefined ? 0 : 1));
    await until(x.env, () => (this.poll(), this.finished >= want));
    this.dispose();
  }

  dispose(): void {
    this.ping?.dispose();
    this.ping = undefined;
  }
}

/** One ping of b's to c, which must come back whole. */
async function pingOnce(x: Ctx, what: string): Promise<void> {
  const p = (x.pinger = new Pinger(x.b, x.c));
  await settle(x, () => p.finished > 0, () => what);
  p.dispose();
  x.pinger = undefined;
  assert.deepEqual(p.lost, [], what);
}

/** Poll until `cond` (the pinger polled, stacks ticked), else fail naming `what`. */
async function settle(x: Ctx, cond: () => boolean, what: () => string, timeoutMs = 3000): Promise<void> {
  const ok = await until(x.env, () => {
    x.pinger?.poll();
    return cond();
  }, timeoutMs);
  assert.ok(ok, `timed out (${timeoutMs} ms): ${what()}`);
}

function fatalOf(x: Ctx): string | undefined {
  return x.h.back.stats().fatal;
}

/** The vif was disabled: off the bridge at once, then Closing with the error node (xenbus_dev_fatal). */
async function checkFatal(x: Ctx, s: HostileSession): Promise<void> {
  await settle(x, () => fatalOf(x) !== undefined, () => 'a fatal error');
  const reason = fatalOf(x)!;
  x.log.push(`fatal: ${reason}`);
  const kind = reason.replace(/^queue \d+: /, '').replace(/[\d, ]+/g, ' ').trim().split(' ').slice(0, 3).join(' ');
  seen.fatal[kind] = (seen.fatal[kind] ?? 0) + 1;
  assert.doesNotMatch(reason, /internal error/, 'a netback exception, not a protocol verdict');
  assert.equal(x.env.bridge.port(x.h.back.name), undefined, 'a disabled vif leaves the bridge');
  await waitBackState(x.env, s.backPath, ['5'], 'Closing after a fatal error');
  const node = `${errorPath(s.backPath, 0)}/error`;
  assert.match(await x.env.dom0.readString(node), /^71 fatal error; disabling device: /);
  await x.env.dom0.rm(errorPath(s.backPath, 0));
}

/** Read and check the rx responses of queue `q` (see the file comment). */
function checkRx(x: Ctx, s: HostileSession, q: RawQueue): void {
  const taken = s.takeRxResponses(q);
  for (let i = 0; i < taken.length; ) {
    const parts: Uint8Array[] = [];
    let intact = true;
    let slots = 0;
    for (let first = true; ; first = false) {
      const t = taken[i++];
      assert.ok(t !== undefined, 'an rx packet cut short by rsp_prod');
      const v = t.raw;
      const [id, offset, flags, status] = [v.getUint16(0, true), v.getUint16(2, true), v.getUint16(4, true), v.getInt16(6, true)];
      seen.rxSlots++;
      assert.equal(id, t.req.id, 'an rx response carries the id of the request in its slot');
      assert.equal(flags & ~0xf, 0, `rx flags ${flags}`);
      assert.ok(++slots <= 18 + 2, 'an rx packet of more slots than a frame needs');
      if (status < 0) {
        assert.equal(status, NETIF_RSP_ERROR);
        seen.rxErrors++;
        intact = false;
      } else {
        assert.ok(status > 0 && offset + status <= 4096, `rx status ${status} at offset ${offset}`);
        assert.ok(t.req.buf >= 0, `netback claims ${status} bytes copied into ref ${t.req.gref}, not a writable buffer granted to it`);
        if (t.req.dup) intact = false;
        else parts.push(s.rxBufs.bytes[t.req.buf]!.slice(offset, offset + status));
      }
      if (first && (flags & 8) !== 0) {
        for (let more = true; more; ) {
          const e = taken[i++];
          assert.ok(e !== undefined, 'an rx extra cut short');
          const type = e.raw.getUint8(0);
          seen.rxExtras++;
          assert.ok(type === 1 || type === 4, `rx extra type ${type}`);
          more = (e.raw.getUint8(1) & 1) !== 0;
        }
      } else assert.ok(first || (flags & 8) === 0, 'extra_info on a follow-on rx slot');
      if ((flags & 4) === 0) break;
    }
    if (!intact) continue;
    const frame = Buffer.concat(parts);
    assert.ok(!hasMarker(frame), 'the marker reached the hostile guest');
    assert.ok(x.legit.has(frame), `an rx frame (${frame.length} bytes) b and c never sent`);
    seen.rxFrames++;
  }
  s.releaseRx(q, taken);
}

/** Post rx requests (never more than the ring's free slots). */
function postRx(x: Ctx, s: HostileSession, q: RawQueue, w: SlotWriter, count: number, ref: RefPick | 'auto', id: number | 'seq'): void {
  const n = Math.min(count, s.rxFree(q));
  for (let k = 0; k < n; k++) {
    let gref: number;
    if (ref === 'auto') {
      // A buffer with no request outstanding, while there is one (else a duplicate, flagged).
      const free = s.rxBufOwner.indexOf(undefined);
      gref = s.rxBufs.refs[free >= 0 ? free : (q.rxProd + k) % s.rxBufs.refs.length]!;
    }
    else if (ref.kind === 'page') gref = [s.rxRo.refs, s.txData.refs][ref.page % 2]![ref.page % 4]!; // read-only grants
    else gref = w.ref(ref).gref;
    s.rxPost(q, w.nextId(id), gref);
  }
  s.publishRx(q);
}

/** Frames b sends to the hostile guest (and, flooded, to c). */
function sendFromB(x: Ctx, s: HostileSession, r: RoundSpec): void {
  const f = s.features;
  for (const m of r.fromB) {
    const dst = m.dst === 'hostile' ? x.macs.self : m.dst === 'bcast' ? new Uint8Array(6).fill(0xff) : Uint8Array.from([1, 0, 0x5e, 0, 0, 1]);
    // A GSO super-frame only where it arrives as sent (no software segmentation or checksum fill).
    if (m.gso && m.dst === 'hostile' && f.sg && f.gsoV4 && !f.noCsum) {
      x.b.front.transmit(tcpV4(dst, x.macs.b, 1448 * (2 + (m.seed % 10)), m.seed), { csumBlank: false, dataValidated: false, gso: { type: 'tcpv4', size: 1448 } });
    } else {
      // IPv4 TCP half the time: what the hostile guest's hash steering (if on) hashes.
      const f = m.seed % 2 === 0 ? tcpV4(dst, x.macs.b, m.len - 54, m.seed) : makeFrame(m.len, dst, x.macs.b, 0x88b5, m.seed);
      x.b.front.transmit(f, { csumBlank: false, dataValidated: false });
    }
  }
}

/** What netback's control ring must answer, where it is fixed whatever came before. */
function checkCtrl(sent: readonly CtrlSpec[], got: readonly { id: number; type: number; status: number; data: number }[]): void {
  assert.equal(got.length, sent.length, 'one control response per request');
  got.forEach((r, i) => {
    const q = sent[i]!;
    assert.equal(r.id, q.id);
    assert.equal(r.type, q.type);
    assert.ok(r.status <= 3, `control status ${r.status}`);
    if (q.type === 0 || q.type > 7) assert.equal(r.status, 1, 'unknown and gref-mapping requests are NOT_SUPPORTED');
    if (q.type === 4) assert.deepEqual([r.status, r.data], [0, BACK_LIMITS.maxHashMapping]);
    if (q.status !== undefined) assert.equal(r.status, q.status, `control request ${i} (type ${q.type})`);
  });
}

/** SET_HASH_ALGORITHM(Toeplitz), FLAGS, KEY and MAPPING_SIZE, MAPPING from the control pages. */
function hashRequests(s: HostileSession, h: HashOn): CtrlSpec[] {
  const [keyPage, mapPage] = [s.ctrlData.bytes[0]!, s.ctrlData.bytes[1]!];
  const [keyRef, mapRef] = [s.ctrlData.refs[0]!, s.ctrlData.refs[1]!];
  keyPage.fill(0);
  keyPage.set(h.key);
  const map = new DataView(mapPage.buffer, mapPage.byteOffset, 4096);
  for (let i = 0; i < h.mapping; i++) map.setUint32(4 * i, i % s.queues.length, true);
  const reqs: CtrlSpec[] = [
    { id: 1, type: 7, data: [1, 0, 0], ref: undefined, status: 0 },
    { id: 2, type: 2, data: [h.flags, 0, 0], ref: undefined, status: 0 },
    { id: 3, type: 3, data: [keyRef, h.key.length, 0], ref: undefined, status: 0 },
    { id: 4, type: 5, data: [h.mapping, 0, 0], ref: undefined, status: 0 },
    { id: 5, type: 6, data: [mapRef, h.mapping, 0], ref: undefined, status: 0 },
  ];
  for (const r of reqs) s.ctrlPut(r.id, r.type, r.data);
  return reqs;
}

/** One round; returns false once the vif is disabled. */
async function round(x: Ctx, s: HostileSession, w: SlotWriter, r: RoundSpec, mcast: Set<string>): Promise<boolean> {
  const q = s.queues[r.queue % s.queues.length]!;
  for (const qq of s.queues) checkRx(x, s, qq);
  for (const p of r.rxPosts) postRx(x, s, q, w, p.count, p.ref, p.id);
  if (r.rxPosts.length > 0) s.notify(q.rxEvt);
  // tx: whole packets while the ring has room for them.
  const slots: Uint8Array[] = [];
  for (const p of r.packets) {
    const ps = w.packet(p);
    if (slots.length + ps.length > s.txFree(q)) break;
    slots.push(...ps);
  }
  s.txPut(q, slots);
  const snapshot = new Map(s.txData.refs.map((ref, i) => [ref as number, s.txData.bytes[i]!.slice()]));
  const exp = expectTx(slots, (ref) => snapshot.get(ref), mcast, BACK_LIMITS);
  x.log.push(`round q${q === s.queues[0] ? 0 : 1}: ${slots.length} slots, ${exp.responses.length} answers, ${exp.forwarded.length} forwarded${exp.fatal ? `, fatal (${exp.fatal})` : ''}`);
  for (const f of exp.forwarded) noteForwarded(x, f);
  const drops0 = { ...x.h.back.counters.txDropReasons };
  s.publishTx(q);
  s.notify(q.txEvt);
  for (let i = 0; i < r.storm; i++) {
    s.notify(q.txEvt);
    if (r.stormSpread && i % 16 === 0) await new Promise((res) => setImmediate(res));
  }
  s.notify(q.rxEvt, r.rxStorm);
  sendFromB(x, s, r);
  if (r.mcastToggle !== undefined) void x.h.client.write(`${s.frontPath}/request-multicast-control`, r.mcastToggle ? '1' : '0').catch(() => undefined);
  const ctrlSent: CtrlSpec[] = [];
  if (s.ctrl !== undefined) {
    for (const c of r.ctrl.slice(0, s.ctrlFree())) {
      const d: [number, number, number] = [c.data[0], c.data[1], c.data[2]];
      if (c.ref !== undefined) d[0] = w.ref(c.ref).gref;
      s.ctrlPut(c.id, c.type, d);
      ctrlSent.push({ ...c, data: d });
    }
  }
  if (s.ctrl !== undefined && r.hash !== undefined && s.ctrlFree() >= 5) ctrlSent.push(...hashRequests(s, r.hash));
  if (ctrlSent.length > 0) {
    s.publishCtrl();
    s.notify(s.ctrl!.evt);
  }
  // Wait for every answer, or for the fatal verdict the model gives.
  await settle(x, () => {
    const fatal = fatalOf(x);
    if (fatal !== undefined) return true;
    return exp.fatal === undefined && s.txResponsesWaiting(q) >= exp.responses.length && (s.ctrl === undefined || s.ctrlResponsesWaiting() >= ctrlSent.length);
  }, () => `tx answers ${s.txResponsesWaiting(q)} of ${exp.responses.length}${exp.fatal ? ` then fatal (${exp.fatal})` : ''}; ctrl ${s.ctrl ? s.ctrlResponsesWaiting() : '-'} of ${ctrlSent.length}`);
  const fatal = fatalOf(x);
  if (exp.fatal === undefined) assert.equal(fatal, undefined, `netback disabled the vif (${fatal}); the model says it must not`);
  const got = s.takeTxResponses(q);
  if (exp.fatal === undefined) assert.equal(got.length, exp.responses.length, 'one tx answer per consumed slot');
  else assert.ok(got.length <= exp.responses.length, `${got.length} tx answers, at most ${exp.responses.length} before the fatal packet`);
  seen.rounds++;
  seen.txSlots += slots.length;
  seen.forwarded += exp.forwarded.length;
  seen.ctrl += ctrlSent.length;
  if (r.hash !== undefined && s.ctrl !== undefined) seen.hashOn++;
  if (r.storm > 0) seen.storms++;
  got.forEach((g, i) => {
    const e = exp.responses[i]!;
    if (g.status === NETIF_RSP_NULL) seen.null++;
    else if (g.status === NETIF_RSP_ERROR) seen.error++;
    else seen.okay++;
    if (e.id === undefined) assert.equal(g.status, NETIF_RSP_NULL, `slot ${i}: an extra slot is answered NULL`);
    else assert.deepEqual(g, { id: e.id, status: e.status }, `slot ${i} answered`);
  });
  const drops = Object.entries(x.h.back.counters.txDropReasons).map(([k, n]) => [k, n - (drops0[k] ?? 0)] as const).filter(([, n]) => n > 0);
  assert.deepEqual(Object.fromEntries(drops), exp.drops, 'packets refused, by reason');
  if (exp.fatal !== undefined) {
    await checkFatal(x, s);
    return false;
  }
  if (s.ctrl !== undefined) checkCtrl(ctrlSent, s.takeCtrlResponses());
  for (const qq of s.queues) checkRx(x, s, qq);
  return true;
}

/** A frame the model says netback forwards: who may, and who must (unless `must` is false), receive it. */
function noteForwarded(x: Ctx, f: Forwarded, must = true): void {
  const fr = f.frame;
  x.headers.add(Bag.key(fr.subarray(0, 12)));
  x.allowed.b.add(fr);
  x.allowed.c.add(fr);
  const src = fr.subarray(6, 12);
  if (x.lockMac && Buffer.compare(src, x.macs.self) !== 0) return; // dropped at the bridge
  if (Buffer.compare(src, x.macs.b) === 0 || Buffer.compare(src, x.macs.c) === 0) x.spoofed = true;
  const deliverable = must && !isGroupMac(fr, 6) && !isZeroMac(fr, 6) && (fr.length <= 1518 || f.gso) && !isLinkLocalMac(fr, 0);
  if (!deliverable) return;
  const dst = fr.subarray(0, 6);
  if (isGroupMac(fr, 0) || Buffer.compare(dst, x.macs.b) === 0) x.must.b.add(fr);
  if (isGroupMac(fr, 0) || Buffer.compare(dst, x.macs.c) === 0) x.must.c.add(fr);
}

/** b and c got from the hostile guest only what it forwarded, and everything addressed to them. */
async function checkNeighbours(x: Ctx): Promise<void> {
  const missing = (g: NetGuest, must: Bag): string | undefined => {
    const got = new Bag();
    for (const r of g.received) got.add(r.frame);
    for (const [k, n] of must.entries()) {
      let have = 0;
      while (have < n && got.take(Buffer.from(k, 'latin1'))) have++;
      if (have < n) return `${n - have} of a ${k.length}-byte frame for dom${g.domid}`;
    }
    return undefined;
  };
  const arrived = x.spoofed || x.loose || (await until(x.env, () => {
    x.pinger?.poll();
    return missing(x.b, x.must.b) === undefined && missing(x.c, x.must.c) === undefined;
  }));
  // What did arrive first: a wrong frame explains a missing one.
  for (const [g, allowed] of [[x.b, x.allowed.b], [x.c, x.allowed.c]] as const) {
    const left = new Bag();
    for (const [k, n] of allowed.entries()) for (let i = 0; i < n; i++) left.add(Buffer.from(k, 'latin1'));
    for (const r of g.received) {
      assert.ok(!hasMarker(r.frame), `dom${g.domid} received bytes of a page never granted to dom0`);
      if (x.legit.has(r.frame) || x.loose) continue;
      seen.delivered++;
      assert.ok(left.take(r.frame), `dom${g.domid} received a ${r.frame.length}-byte frame nobody sent (or more copies than were sent)`);
    }
  }
  // d gets segments and checksum-filled copies: each starts with addresses someone sent from.
  for (const r of x.d.received) {
    assert.ok(!hasMarker(r.frame), `dom${x.d.domid} received bytes of a page never granted to dom0`);
    assert.ok(x.loose || (r.frame.length >= 14 && x.headers.has(Bag.key(r.frame.subarray(0, 12)))), `dom${x.d.domid} received a frame with addresses nobody sent from`);
  }
  assert.ok(arrived, `frames never delivered: ${missing(x.b, x.must.b) ?? missing(x.c, x.must.c)}`);
}

async function session(x: Ctx, spec: SessionSpec): Promise<void> {
  const s = await HostileSession.open(x.env, x.h, spec.features, x.b.domid as DomId);
  const pinger = (x.pinger = new Pinger(x.b, x.c));
  seen.sessions++;
  try {
    assert.equal(await x.env.dom0.readString(`${s.backPath}/state`), '4', 'netback connected');
    x.log.push(`session ${JSON.stringify(spec.features)}`);
    const w = new SlotWriter(s, x.macs);
    const mcast = new Set<string>();
    for (const q of s.queues) postRx(x, s, q, w, spec.initialRx, 'auto', 'seq');
    if (spec.features.sameRing) {
      // Both rings in one page: netback's rx responses land on tx requests, so what it reads
      // and forwards is anyone's guess. It must still contain it (no exception, no leak, no
      // byte of an ungranted page anywhere, the others unharmed).
      x.loose = true;
      if (!x.lockMac) x.spoofed = true;
      await end(x, s, { kind: 'abrupt', round: spec.rounds[0]!, flap: [] });
      await new Promise((r) => setTimeout(r, 5));
    }
    let alive = !spec.features.sameRing;
    for (const r of spec.rounds) if (!alive || !(alive = await round(x, s, w, r, mcast))) break;
    if (alive) {
      // What b sent in the last round has had a moment to arrive.
      await new Promise((r) => setTimeout(r, 5));
      for (const q of s.queues) checkRx(x, s, q);
      // Every slot was answered in its round: anything more now is a second answer.
      for (const q of s.queues) assert.equal(s.txResponsesWaiting(q), 0, 'tx answers nobody asked for');
      if (s.ctrl !== undefined) assert.equal(s.ctrlResponsesWaiting(), 0, 'control answers nobody asked for');
      await end(x, s, spec.end);
    }
    // With b's or c's address spoofed into the bridge, their frames may go astray: that is a
    // learning bridge without anti-spoofing (lockMac), not netback. Otherwise b keeps pinging c.
    if (x.spoofed) pinger.dispose();
    else {
      await pinger.stop(x);
      seen.pings += pinger.finished;
      assert.ok(pinger.finished > 0 && pinger.lost.length === 0, `b pinging c during the session: ${pinger.finished} pings, lost: ${pinger.lost.join(' / ')}`);
    }
    x.pinger = undefined;
    await checkNeighbours(x);
    for (const g of [x.b, x.c, x.d]) {
      assert.equal(g.front.broken, undefined, `dom${g.domid}'s netfront broke`);
      assert.equal(g.back.stats().port?.txErrors ?? 0, 0, `dom${g.domid}'s netback threw out of deliver`);
    }
    for (const p of x.env.bridge.ports()) assert.ok(p.queueLength <= 256, `${p.name} holds ${p.queueLength} frames`);
    await s.close();
    // Plus the event each of netback's bindings gets when it binds (Xen's bind_interdomain sets the port pending).
    x.notifies += s.notifies + s.queues.length * (spec.features.split ? 2 : 1);
  } catch (err) {
    pinger.dispose();
    x.pinger = undefined;
    await s.abandon();
    throw err;
  }
}

/** The session's end: a clean close, or a producer index no ring can hold (fatal). */
async function end(x: Ctx, s: HostileSession, e: EndSpec): Promise<void> {
  seen.ends[e.kind] = (seen.ends[e.kind] ?? 0) + 1;
  if (e.kind === 'close') return;
  x.log.push(`end ${e.kind}`);
  const q = s.queues[0]!;
  if (e.kind === 'txJump' || e.kind === 'txBack') {
    s.publishTx(q, e.kind === 'txJump' ? q.txProd + 257 + e.n : q.txProd - 1 - e.n);
    s.notify(q.txEvt);
    return checkFatal(x, s);
  }
  if (e.kind === 'ctrlJump') {
    if (s.ctrl === undefined) return;
    s.publishCtrl(s.ctrl.prod + 129 + e.n);
    s.notify(s.ctrl.evt);
    return checkFatal(x, s);
  }
  if (e.kind === 'abrupt') {
    // Slots, rx requests and frames in flight, then the frontend walks away: whatever
    // netback was doing, it stops, unmaps and answers nothing more (checked by close()).
    const w = new SlotWriter(s, x.macs);
    const slots = e.round.packets.flatMap((p) => w.packet(p)).slice(0, s.txFree(q));
    s.txPut(q, slots);
    s.publishTx(q);
    for (const p of e.round.rxPosts) postRx(x, s, q, w, p.count, p.ref, p.id);
    s.notify(q.txEvt, 1 + e.round.storm);
    s.notify(q.rxEvt);
    sendFromB(x, s, e.round);
    // What netback forwards now cannot be predicted (it may be cut off at any packet): b and c
    // may get any of it, never something else.
    const snapshot = new Map(s.txData.refs.map((ref, i) => [ref as number, s.txData.bytes[i]!.slice()]));
    const exp = expectTx(slots, (ref) => snapshot.get(ref), new Set(), BACK_LIMITS);
    for (const f of exp.forwarded) noteForwarded(x, f, false);
    if (e.round.storm % 2 === 0) await new Promise((r) => setImmediate(r));
    if (e.flap.length > 0) {
      // Initialised or Connected again may reconnect netback to these rings mid-stream: what
      // it reads and forwards then is anyone's guess (loose), contained all the same.
      x.loose = true;
      if (!x.lockMac) x.spoofed = true;
      for (const st of e.flap) void x.h.client.write(`${s.frontPath}/state`, String(st)).catch(() => undefined);
    }
    s.dropChannels();
    return;
  }
  // rx: netback reads req_prod again only when the requests it knows of run out, so the jump
  // may or may not be seen now; if it is, the vif must be disabled properly.
  for (const qq of s.queues) s.publishRx(qq, e.kind === 'rxJump' ? qq.rxProd + 257 + e.n : qq.rxCons - 1 - e.n);
  s.notify(q.rxEvt);
  x.b.front.transmit(makeFrame(100, x.macs.self, x.macs.b, 0x88b5, e.n), { csumBlank: false, dataValidated: false });
  await settle(x, () => true, () => '');
  await new Promise((r) => setTimeout(r, 20));
  if (fatalOf(x) !== undefined) await checkFatal(x, s);
}

async function runCase({ lockMac, rate, sessions }: CaseSpec, escaped: unknown[]): Promise<void> {
  await withNet(async (env) => {
    const [b, c, d] = env.guests as [NetGuest, NetGuest, NetGuest];
    const h = await env.addBackendOnly({ back: { limits: HOSTILE_LIMITS, lockMac }, ...(rate === undefined ? {} : { rate }) });
    const self = parseMac(await env.dom0.readString(`${backendPath(h.dev)}/mac`));
    const x: Ctx = {
      env, b, c, d, h, macs: { b: b.front.mac, c: c.front.mac, self }, legit: new Bag(), headers: new Set(),
      allowed: { b: new Bag(), c: new Bag() }, must: { b: new Bag(), c: new Bag() }, lockMac, spoofed: false, loose: false, notifies: 0, pinger: undefined, log: [],
    };
    for (const g of [b, c, d]) {
      const send = g.front.transmit.bind(g.front);
      g.front.transmit = (f, info) => (x.legit.add(f), x.headers.add(Bag.key(f.subarray(0, 12))), send(f, info));
    }
    // Neighbours first: ARP done and both learned by the bridge before the hostile guest speaks.
    await pingOnce(x, 'b pinging c before');
    try {
      for (const [i, spec] of sessions.entries()) {
        if (i > 0) await HostileSession.reset(env, h);
        await session(x, spec);
      }
      assert.ok(h.back.counters.events <= x.notifies, `netback handled ${h.back.counters.events} events of ${x.notifies} sent`);
      await pingOnce(x, 'b pinging c afterwards');
      assert.deepEqual(escaped, [], 'nothing thrown into the event loop');
      seen.gsoSegmented += env.bridge.counters.gsoSegmented;
      seen.gsoRefused += env.bridge.counters.gsoRefused;
      seen.csumFilled += env.bridge.counters.csumFilled;
    } catch (err) {
      if (process.env.XENPV_FUZZ_VERBOSE) console.error(x.log.join('\n'));
      throw err;
    }
  }, [{}, {}, { front: { features: { gso: false, sg: false, csumOffload: false, queues: 2 } } }]);
}

test('hostile frontend fuzz: random tx chains, rx requests, control requests, producer jumps and event storms are answered, bounded and contained', async () => {
  let runs = 0;
  const t0 = performance.now();
  await fuzzCampaign(
    15,
    process.env.XENPV_FUZZ_VERBOSE ? -1 : 50,
    (params, escaped) =>
      fc.assert(
        fc.asyncProperty(caseSpec, async (spec) => {
          if (++runs % 1000 === 0 && params.numRuns > 50) console.error(`hostile fuzz: ${runs} cases (shrinking included), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
          escaped.length = 0;
          await runCase(spec, escaped);
        }),
        params,
      ),
    (seconds) => console.error(`hostile fuzz: ${runs} cases in ${seconds.toFixed(1)} s; ${JSON.stringify(seen)}`),
  );
});
