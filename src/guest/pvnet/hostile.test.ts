/**
 * Hostile peers (issue 5, reliability.md R1-R7): each case is bounded and answered with errors
 * or disconnection, and the other vifs of the bridge keep working.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GNTST_permission_denied } from '../../abi/grant_table.js';
import { errorCode } from '../../base/index.js';
import { pollUntil } from '../../base/testing.js';
import { NETIF_RSP_ERROR, NETTXF_more_data } from '../../abi/io/netif.js';
import { Ping } from '../net/ping.js';
import type { TxSlotOut } from '../../devices/net/protocol.js';
import { pattern, tcpFrame, until, withNet, type NetEnv, type NetGuest } from './test-support.js';
import { HostileSession, waitBackState, type HostileFeatures } from './hostile-front.js';

async function pingOk(env: NetEnv, from: NetGuest, to: NetGuest, count = 2): Promise<number> {
  const p = new Ping(from.stack, { dst: to.ip, count, intervalMs: 5, timeoutMs: 2000 });
  await until(env, () => (p.poll(), p.done), 4000);
  return p.result().received;
}

interface RawSlot {
  /** Bytes placed at `offset` of a fresh transmit page (data slots). */
  readonly data?: Uint8Array;
  readonly offset?: number;
  /** The slot's size field (default: data length). */
  readonly size?: number;
  readonly flags?: number;
}

/** Put a raw data-slot chain on queue 0's tx ring, as a hostile frontend would. */
function rawTx(g: NetGuest, slots: readonly RawSlot[]): void {
  const q = g.front.queue(0)!;
  const out: TxSlotOut[] = slots.map((s) => {
    const b = q.borrowTxPage()!;
    b.page.bytes.fill(0);
    if (s.data !== undefined) b.page.bytes.set(s.data, s.offset ?? 0);
    const size = s.size ?? s.data?.length ?? 0;
    return { kind: 'req', req: { gref: b.page.ref, offset: s.offset ?? 0, flags: s.flags ?? 0, id: b.id, size } };
  });
  assert.equal(q.putRaw(out), true);
}

/** A chain of `n` data slots of `each` bytes carrying `frame`'s bytes in order. */
function chainOf(frame: Uint8Array, cuts: readonly number[]): RawSlot[] {
  const slots: RawSlot[] = [];
  let at = 0;
  cuts.forEach((len, i) => {
    const more = i + 1 < cuts.length ? NETTXF_more_data : 0;
    slots.push({ data: frame.subarray(at, at + len), size: i === 0 ? frame.length : len, flags: more });
    at += len;
  });
  return slots;
}

const THREE = [{}, {}, {}];

/** A plain one-queue connection of hostile-front.ts's raw frontend. */
const RAW_FEATURES: HostileFeatures = {
  queues: 1, split: false, sg: true, gsoV4: false, gsoV6: false, noCsum: false, ipv6Csum: false,
  rxNotify: true, mcastCtrl: false, ctrl: false, sameRing: false,
};

/** A 12-byte tx request slot: `size` bytes at offset 0 of `gref`, more_data if `more`. */
function txRequest(gref: number, id: number, size: number, more: boolean): Uint8Array {
  const s = new Uint8Array(12);
  const v = new DataView(s.buffer);
  v.setUint32(0, gref, true);
  v.setUint16(6, more ? NETTXF_more_data : 0, true);
  v.setUint16(8, id, true);
  v.setUint16(10, size, true);
  return s;
}

/** A node that a reactor step writes soon: read it until it exists (ENOENT until then), up to 3 s. */
async function readEventually(env: NetEnv, path: string): Promise<string> {
  let value: string | undefined;
  const read = async (): Promise<boolean> => {
    value = await env.dom0.readString(path).catch((err: unknown) => {
      if (errorCode(err) !== 'ENOENT') throw err;
      return undefined;
    });
    return value !== undefined;
  };
  if (!(await pollUntil(read, 3000))) throw new Error(`${path} was not written within 3 s`);
  return value!;
}

/**
 * For the batch tests: guests a and b, neighbours already (one ping), four TCP frames a -> b
 * of 100-400 bytes of payload, and how many frames b had received before them.
 */
async function fourFrames(env: NetEnv): Promise<{ a: NetGuest; b: NetGuest; frames: Uint8Array[]; received0: number }> {
  const [a, b] = env.guests as [NetGuest, NetGuest];
  await pingOk(env, a, b, 1);
  const frames = [1, 2, 3, 4].map((i) => tcpFrame(a, b, 7, 8, 100 * i));
  return { a, b, frames, received0: b.received.length };
}

test('hostile: a chain past 18 follow-on slots (Linux XEN_NETBK_LEGACY_SLOTS_MAX) is dropped with NETIF_RSP_ERROR; 1 + 18 pass; the vif keeps working', () =>
  withNet(async (env) => {
    const [a, b] = env.guests as [NetGuest, NetGuest];
    await pingOk(env, a, b, 1);
    const ok = tcpFrame(a, b, 1, 2, 19 * 20 - 54);
    rawTx(a, chainOf(ok, Array(19).fill(20)));
    assert.ok(await until(env, () => b.received.some((r) => r.frame.length === ok.length)));
    const bad = tcpFrame(a, b, 1, 2, 20 * 20 - 54);
    rawTx(a, chainOf(bad, Array(20).fill(20)));
    assert.ok(await until(env, () => a.back.stats().back.txErrors === 1));
    assert.ok(await until(env, () => a.front.counters.txErrors === 20), `errors ${a.front.counters.txErrors}: one per data slot`);
    assert.equal(a.back.stats().fatal, undefined);
    assert.equal(await pingOk(env, a, b), 2);
  }));

test('hostile: a chain of 22 slots is fatal: the vif is disabled and closed with an error node; other vifs work; it reconnects', () =>
  withNet(async (env) => {
    const [a, b, c] = env.guests as [NetGuest, NetGuest, NetGuest];
    await pingOk(env, a, b, 1);
    rawTx(a, chainOf(tcpFrame(a, b, 1, 2, 22 * 20 - 54), Array(22).fill(20)));
    assert.ok(await until(env, () => a.back.stats().fatal !== undefined));
    assert.match(a.back.stats().fatal!, /malicious frontend using 20 slots/);
    assert.equal(env.bridge.port(a.back.name), undefined, 'left the bridge at once');
    // The error node is written by the backend's reactor step after the verdict, not with it.
    const err = await readEventually(env, `/local/domain/0/error/backend/vif/${a.domid}/0/error`);
    assert.match(err, /^71 fatal error; disabling device/);
    assert.equal(await pingOk(env, b, c), 2, 'the other vifs keep working');
    assert.ok(await until(env, () => a.back.connected && a.front.linkUp, 5000), 'the frontend reconnected through a close cycle');
    assert.equal(await pingOk(env, a, b), 2);
  }, THREE));

test('hostile: zero-length and short first fragments are answered with errors; zero-length follow-ons are legal (XSA-448)', () =>
  withNet(async (env) => {
    const [a, b] = env.guests as [NetGuest, NetGuest];
    await pingOk(env, a, b, 1);
    rawTx(a, [{ size: 0 }]);
    rawTx(a, [{ data: pattern(10), size: 10 }]);
    assert.ok(await until(env, () => a.back.stats().back.txErrors === 2));
    assert.equal(a.back.stats().back.txDropReasons['bad packet'], 2);
    const f = tcpFrame(a, b, 3, 4, 200);
    rawTx(a, [
      { data: f.subarray(0, 100), size: f.length, flags: NETTXF_more_data },
      { size: 0, flags: NETTXF_more_data },
      { data: f.subarray(100), size: f.length - 100 },
    ]);
    assert.ok(await until(env, () => b.received.some((r) => r.frame.length === f.length)));
    assert.deepEqual(b.received.find((r) => r.frame.length === f.length)!.frame, f);
    assert.equal(a.back.stats().fatal, undefined);
  }));

test('hostile: a refused slot and a chain among one-slot packets in one batch: each answered, the good ones delivered in order', () =>
  withNet(async (env) => {
    const { a, b, frames, received0 } = await fourFrames(env);
    const errors0 = a.front.counters.txErrors;
    // One push: netback takes them in one tx batch (the one-slot packets copied by one call).
    rawTx(a, [
      { data: frames[0]! },
      { data: pattern(10), size: 10 }, // shorter than an Ethernet header: NETIF_RSP_ERROR
      { data: frames[1]! },
      ...chainOf(frames[2]!, [60, frames[2]!.length - 60]),
      { data: frames[3]! },
    ]);
    assert.ok(await until(env, () => b.received.length - received0 === 4), `${b.received.length - received0} of 4 delivered`);
    assert.deepEqual(b.received.slice(received0).map((r) => r.frame), frames, 'intact and in ring order');
    assert.equal(a.back.stats().back.txDropReasons['bad packet'], 1);
    a.front.queue(0)!.pollTx();
    assert.equal(a.front.counters.txErrors - errors0, 1, 'exactly the refused slot answered with an error');
    assert.equal(a.back.stats().fatal, undefined);
  }));

test('rx batch: a copy into one posted buffer that fails (its grant revoked) answers that slot with NETIF_RSP_ERROR; the rest of the batch arrives in order', () =>
  withNet(async (env) => {
    const { a, b, frames, received0 } = await fourFrames(env);
    const rxErrors0 = b.front.counters.rxErrors;
    // dom0's grant copies: the first call of several copies into guest buffers (b's netback's
    // rx batch of the frames below) has its second op refused, as Xen refuses a revoked grant.
    const grants = env.hv.dom0.grants;
    const copy = grants.copy.bind(grants);
    let injected = 0;
    grants.copy = (ops, count = ops.length, given) => {
      const status = copy(ops, count, given);
      const n = Math.min(count, ops.length);
      if (injected === 0 && n >= 2 && ops.slice(0, n).every((op) => op.dest.kind === 'grant')) {
        injected = n;
        status[1] = GNTST_permission_denied;
      }
      return status;
    };
    try {
      rawTx(a, frames.map((f) => ({ data: f }))); // one push: one tx batch, one burst
      assert.ok(await until(env, () => b.received.length - received0 === 3), `${b.received.length - received0} of 3 delivered`);
    } finally {
      grants.copy = copy;
    }
    assert.equal(injected, 4, 'the four frames were copied into b\'s buffers by one call');
    assert.deepEqual(b.received.slice(received0).map((r) => r.frame), [frames[0], frames[2], frames[3]], 'intact and in ring order');
    assert.equal(b.front.counters.rxErrors - rxErrors0, 1, 'the failed slot came back as an error');
    assert.equal(b.back.stats().back.rxErrors, 1);
    assert.equal(await pingOk(env, a, b, 2), 2, 'the vif keeps working');
  }));

test('hostile: an oversized fragment is answered with errors; a fragment crossing its page is fatal', () =>
  withNet(async (env) => {
    const [a, b, c] = env.guests as [NetGuest, NetGuest, NetGuest];
    await pingOk(env, b, c, 1);
    rawTx(a, [{ data: pattern(100), size: 100, flags: NETTXF_more_data }, { data: pattern(200), size: 200 }]);
    assert.ok(await until(env, () => a.back.stats().back.txDropReasons['slot size'] === 1));
    assert.ok(await until(env, () => a.front.counters.txErrors === 2));
    rawTx(a, [{ data: pattern(46), offset: 4050, size: 100 }]);
    assert.ok(await until(env, () => a.back.stats().fatal !== undefined));
    assert.match(a.back.stats().fatal!, /crosses its page/);
    assert.equal(await pingOk(env, b, c), 2);
  }, THREE));

test('hostile: headers split across slots (Ethernet alone, IP and UDP headers in 7-byte pieces) are delivered intact (XSA-423)', () =>
  withNet(async (env) => {
    const [a, b] = env.guests as [NetGuest, NetGuest];
    await pingOk(env, a, b, 1);
    const rx = b.stack.udpBind(6000);
    let frame: Uint8Array | undefined;
    const send = a.stack.udpBind(0);
    const orig = a.front.transmit.bind(a.front);
    a.front.transmit = (f) => ((frame = f.slice()), true); // capture instead of sending
    send.send(b.ip, 6000, pattern(333, 9));
    a.front.transmit = orig;
    assert.ok(frame !== undefined);
    const cuts = [14, 7, 7, 6, 7, 1, frame.length - 42];
    rawTx(a, chainOf(frame, cuts));
    assert.ok(await until(env, () => rx.queued === 1));
    assert.deepEqual(rx.recv()!.payload, pattern(333, 9));
  }));

test('hostile: a receiver that never posts buffers is bounded (queue cap, drops counted, stall reported); others keep working', () =>
  withNet(async (env) => {
    const [a, b, c] = env.guests as [NetGuest, NetGuest, NetGuest];
    await pingOk(env, a, b, 1);
    for (let i = 0; i < 600; i++) a.front.transmit(tcpFrame(a, c, 1000 + i, 80, 200));
    assert.ok(await until(env, () => (c.back.stats().port?.txQueueFull ?? 0) > 0, 3000));
    const port = env.bridge.port(c.back.name)!;
    assert.ok(port.queueLength <= 256, `queue ${port.queueLength}`);
    assert.ok(await until(env, () => c.back.stats().rxStalls >= 1, 2000), 'the stall is reported');
    assert.equal(c.received.length, 0);
    assert.equal(await pingOk(env, a, b), 2, 'other vifs keep working');
  }, [{}, {}, { front: { buffers: { rx: 0 } }, back: { limits: { rxStallMs: 50 } } }]));

test('hostile: an event storm is bounded (deferred past the allowance) and the storming vif still works', () =>
  withNet(async (env) => {
    const [a, b, c] = env.guests as [NetGuest, NetGuest, NetGuest];
    await pingOk(env, a, b, 1);
    const q = a.front.queue(0)!;
    const victim = new Ping(b.stack, { dst: c.ip, count: 5, intervalMs: 5, timeoutMs: 2000 });
    for (let i = 0; i < 400; i++) {
      q.txEvt.notify();
      victim.poll();
      await new Promise((r) => setImmediate(r));
    }
    await until(env, () => (victim.poll(), victim.done), 3000);
    assert.equal(victim.result().received, 5, 'a victim vif is unaffected');
    const s = a.back.stats().back;
    assert.ok(s.eventsDeferred > 0, JSON.stringify(s));
    assert.ok(s.events <= 400 + 10, `events ${s.events}`);
    assert.equal(await pingOk(env, a, b), 2, 'the storming vif still works afterwards');
  }, [{ back: { limits: { eventAllowance: 20, eventWindowMs: 200 } } }, {}, {}]));

test('hostile: a req_prod far ahead of the ring (R1) breaks the ring: fatal, no crash', () =>
  withNet(async (env) => {
    const [a, b, c] = env.guests as [NetGuest, NetGuest, NetGuest];
    const q = a.front.queue(0)!;
    const words = new Int32Array(q.txPage.bytes.buffer, q.txPage.bytes.byteOffset, 16);
    Atomics.store(words, 0, 100000); // req_prod
    q.txEvt.notify();
    assert.ok(await until(env, () => a.back.stats().fatal !== undefined));
    assert.match(a.back.stats().fatal!, /impossible number of requests/);
    assert.equal(await pingOk(env, b, c), 2);
  }, THREE));

test('hostile backend: a tx response for an inactive id puts the frontend in its error state; bad rx responses are dropped', () =>
  withNet(async (env) => {
    const [a] = env.guests as [NetGuest];
    await a.back.dispose(); // the "backend" is now this test, writing the shared pages directly
    const q = a.front.queue(0)!;
    const serve = (): void => (q as unknown as { serve(): void }).serve();
    // rx: a response claiming 200 bytes at offset 4000 of its page.
    const rx = new DataView(q.rxPage.bytes.buffer, q.rxPage.bytes.byteOffset, 4096);
    rx.setUint16(64 + 2, 4000, true);
    rx.setInt16(64 + 6, 200, true);
    Atomics.store(new Int32Array(q.rxPage.bytes.buffer, q.rxPage.bytes.byteOffset, 16), 2, 1); // rsp_prod = 1
    serve();
    assert.equal(a.front.counters.rxErrors, 1);
    assert.equal(a.front.broken, undefined, 'a bad packet is dropped, the device goes on');
    // tx: one real request, then an answer naming an id we never used.
    a.front.transmit(pattern(100));
    const tx = new DataView(q.txPage.bytes.buffer, q.txPage.bytes.byteOffset, 4096);
    tx.setUint16(64, 999, true);
    tx.setInt16(64 + 2, NETIF_RSP_ERROR, true);
    Atomics.store(new Int32Array(q.txPage.bytes.buffer, q.txPage.bytes.byteOffset, 16), 2, 1);
    serve();
    assert.match(a.front.broken ?? '', /inactive request 999/);
    assert.equal(a.front.transmit(pattern(100)), false, 'sticky: nothing more is sent');
  }, [{ stack: false }]));

test('hostile: garbage in the frontend keys (R10) → error node and Closing, nothing mapped; the other vifs work', () =>
  withNet(async (env) => {
    const [b, c] = env.guests as [NetGuest, NetGuest];
    const g = await env.addBackendOnly();
    const fe = `/local/domain/${g.domid}/device/vif/0`;
    for (const [k, v] of [['tx-ring-ref', '12abc'], ['rx-ring-ref', '-1'], ['event-channel', '99999999999'], ['request-rx-copy', '1']]) {
      await g.client.write(`${fe}/${k}`, v!);
    }
    await g.client.write(`${fe}/state`, '4');
    const be = `/local/domain/0/backend/vif/${g.domid}/0`;
    let state = '';
    for (let i = 0; i < 200 && state !== '5'; i++) {
      state = await env.dom0.readString(`${be}/state`);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(state, '5', 'Closing');
    assert.match(await env.dom0.readString(`/local/domain/0/error/backend/vif/${g.domid}/0/error`), /tx-ring-ref/);
    assert.equal(g.back.connected, false);
    assert.equal(await pingOk(env, b, c), 2);
    await g.client.write(`${fe}/state`, '6');
  }));

test('hostile: a frontend flapping its state node (R9, XSA-349) costs bounded steps and leaks nothing', () =>
  withNet(async (env) => {
    const [a, b, c] = env.guests as [NetGuest, NetGuest, NetGuest];
    const fe = `/local/domain/${a.domid}/device/vif/0`;
    for (let i = 0; i < 200; i++) void a.client.write(`${fe}/state`, String([1, 3, 4, 5, 6, 7, 9, 0][i % 8])).catch(() => undefined);
    await a.client.write(`${fe}/state`, '6');
    assert.ok(await until(env, () => !a.back.connected, 3000));
    await a.back.idle();
    assert.equal(await pingOk(env, b, c), 2, 'the other vifs keep working');
  }, [{}, {}, {}]));

test('hostile backend: random rx responses (fuzz) never throw; every packet is delivered or counted as an error', () =>
  withNet(async (env) => {
    const [a] = env.guests as [NetGuest];
    await a.back.dispose();
    const q = a.front.queue(0)!;
    const serve = (): void => (q as unknown as { serve(): void }).serve();
    const page = new DataView(q.rxPage.bytes.buffer, q.rxPage.bytes.byteOffset, 4096);
    const idx = new Int32Array(q.rxPage.bytes.buffer, q.rxPage.bytes.byteOffset, 16);
    let seed = 12345;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    let prod = 0;
    for (let round = 0; round < 300; round++) {
      const k = 1 + rnd(8);
      for (let i = 0; i < k; i++) {
        const at = 64 + ((prod + i) & 255) * 8;
        for (let b = 0; b < 8; b++) page.setUint8(at + b, rnd(256));
        if (rnd(2) === 0) {
          // Plausible half the time: small offset and size, no flags or one flag bit.
          page.setUint16(at + 2, rnd(100), true);
          page.setUint16(at + 4, rnd(2) === 0 ? 0 : 1 << rnd(5), true);
          page.setInt16(at + 6, rnd(1500), true);
        }
      }
      prod += k;
      Atomics.store(idx, 2, prod); // rsp_prod: never more than the 64 buffers posted
      const before = a.front.counters.rxPackets + a.front.counters.rxErrors;
      serve();
      const after = a.front.counters.rxPackets + a.front.counters.rxErrors;
      assert.ok(after - before <= k, 'at most one outcome per response');
    }
    assert.equal(a.front.broken, undefined, 'bad packets are dropped; the rx ring itself stayed sane');
    assert.ok(a.front.counters.rxErrors > 0 && a.front.counters.rxPackets > 0, JSON.stringify(a.front.counters));
    for (const r of a.received) assert.ok(r.frame.length <= 18 * 4096);
  }, [{ stack: false }]));

test('hostile: a fatal verdict racing the frontend\'s Closed leaves the backend Closed (not stuck Closing); the device reconnects', () =>
  withNet(async (env) => {
    const [b] = env.guests as [NetGuest];
    const g = await env.addBackendOnly();
    const s = await HostileSession.open(env, g, RAW_FEATURES, b.domid);
    // dom0's error-node write is held until the backend has followed the frontend to Closed
    // (or 200 ms): the order in which a fatal error's report and the frontend's Closed met.
    const write = env.dom0.write.bind(env.dom0);
    env.dom0.write = async (path, value, tx) => {
      if (path.endsWith('/error')) await waitBackState(env, s.backPath, ['6'], 'Closed', 200).catch(() => undefined);
      return write(path, value, tx);
    };
    try {
      const q = s.queues[0]!;
      // 22 slots: "malicious frontend using 20 slots" (fatal), and at once state Closed.
      const chain = Array.from({ length: 22 }, (_, i) => txRequest(s.txData.refs[i]!, i, i === 0 ? 22 * 20 : 20, i < 21));
      s.txPut(q, chain);
      s.publishTx(q);
      s.notify(q.txEvt);
      await g.client.write(`${s.frontPath}/state`, '6');
      assert.ok(await until(env, () => g.back.stats().fatal !== undefined));
      await waitBackState(env, s.backPath, ['6'], 'Closed after the frontend closed');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await env.dom0.readString(`${s.backPath}/state`), '6', 'still Closed once the fatal error was reported');
    } finally {
      env.dom0.write = write;
      await s.abandon();
    }
    await HostileSession.reset(env, g);
    const again = await HostileSession.open(env, g, RAW_FEATURES, b.domid);
    assert.equal(g.back.connected, true, 'the device connects again');
    await again.close();
  }, [{}]));
