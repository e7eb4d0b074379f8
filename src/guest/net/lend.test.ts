/**
 * Datagrams built straight into netfront's lent tx page (NetStack `txBuffer`, NetFront.txBuffer):
 * the bytes that arrive are the ones sent, a frame that must wait for ARP is copied out of the
 * lent page first, a misplaced payload takes the copying path, and a lent page is not in flight
 * (a backend answering for it breaks the device, R5).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NETIF_RSP_OKAY } from '../../abi/io/netif.js';
import { pattern, until, withNet, type NetEnv, type NetGuest } from '../pvnet/test-support.js';
import { NetStack, udpPayloadBuffer, udpPayloadIn } from './stack.js';
import type { Frame, GrantRef } from '../../base/index.js';
import { GNTST_permission_denied, GTF_permit_access, GTF_writing } from '../../abi/grant_table.js';
import { parseIpv4 } from './addr.js';

/** A sending stack on `a`'s NetFront that builds in its lent pages; `lent`/`sent` record the frames. */
function lendingStack(a: NetGuest, kernelCopy = false): { s: NetStack; lent: Uint8Array[]; sent: Uint8Array[] } {
  const lent: Uint8Array[] = [];
  const sent: Uint8Array[] = [];
  const s = new NetStack({
    ...(kernelCopy ? { copy: (dst: Uint8Array, at: number, src: Uint8Array) => a.platform.memory.copy(dst, at, src) } : {}),
    mac: a.front.mac, address: a.ip, prefix: 24, clock: () => performance.now(),
    send: (f, info) => {
      sent.push(f);
      a.front.transmit(f, info);
    },
    sendCopies: true,
    txBuffer: (len) => {
      const b = a.front.txBuffer(len);
      if (b !== undefined) lent.push(b);
      return b;
    },
  });
  return { s, lent, sent };
}

/**
 * Guest `a` sending through lendingStack to guest `b`, which listens on port 5001; `neighbour`:
 * `a` already knows `b`'s MAC (no ARP first).
 */
function lendingPair(env: Pick<NetEnv, 'guests'>, neighbour: boolean, kernelCopy = false): { a: NetGuest; b: NetGuest } & ReturnType<typeof lendingStack> {
  const [a, b] = env.guests as [NetGuest, NetGuest];
  const sender = lendingStack(a, kernelCopy);
  if (neighbour) sender.s.arp.update(parseIpv4(b.ip), b.front.mac, true);
  b.stack.udpBind(5001);
  return { a, b, ...sender };
}

function payloads(b: NetGuest, port: number): Uint8Array[] {
  const sock = b.stack.sockets.get(port)!;
  const out: Uint8Array[] = [];
  for (let d = sock.recv(); d !== undefined; d = sock.recv()) out.push(d.payload);
  return out;
}

for (const where of ['private', 'guest page'] as const) test(`datagrams built in the lent tx page arrive exact (full checksum verified), in bursts; payload in a ${where}`, () =>
  withNet(async (env) => {
    // In a guest page with the kernel's copy (DomainMemory.copy): a memmove into the lent page.
    const kernel = where === 'guest page';
    const { a, b, s, lent, sent } = lendingPair(env, true, kernel);
    const [frame] = a.platform.memory.allocPages(1) as [Frame];
    const p = kernel ? udpPayloadIn(a.platform.memory.page(frame), 1000)! : udpPayloadBuffer(1000);
    const want: Uint8Array[] = [];
    for (let burst = 0; burst < 5; burst++) {
      a.front.txBurst(() => {
        for (let i = 0; i < 20; i++) {
          p.set(pattern(1000, burst * 20 + i));
          want.push(p.slice());
          assert.equal(s.udpSend(4000, b.ip, 5001, p), 'sent');
        }
      });
      await until(env, () => b.stack.sockets.get(5001)!.queued === want.length, 2000);
    }
    assert.equal(sent.length, 100);
    assert.ok(sent.every((f, i) => f === lent[i]), 'each frame was the lent view itself (no copy in netfront)');
    assert.deepEqual(payloads(b, 5001), want);
    assert.equal(b.stack.counters.udpBadChecksum, 0);
    a.platform.memory.freePages([frame]);
  }));

test('a payload placed otherwise mod 8 is built in the scratch (copied), and still arrives exact', () =>
  withNet(async (env) => {
    const { b, s, lent, sent } = lendingPair(env, true);
    const p = new Uint8Array(new ArrayBuffer(1200), 1, 1000);
    p.set(pattern(1000, 9));
    assert.equal(s.udpSend(4000, b.ip, 5001, p), 'sent');
    assert.ok(await until(env, () => b.stack.sockets.get(5001)!.queued === 1, 2000));
    assert.equal(lent.length, 0);
    assert.equal(sent.length, 1);
    assert.deepEqual(payloads(b, 5001), [pattern(1000, 9)]);
  }));

test('a datagram built in the lent page that waits for ARP is copied out: the next one does not overwrite it', () =>
  withNet(async (env) => {
    const { b, s } = lendingPair(env, false);
    const p = udpPayloadBuffer(500);
    p.set(pattern(500, 1));
    assert.equal(s.udpSend(4000, b.ip, 5001, p), 'queued'); // no neighbour yet: an ARP request goes out
    p.set(pattern(500, 2));
    assert.equal(s.udpSend(4000, b.ip, 5001, p), 'queued');
    s.arp.update(parseIpv4(b.ip), b.front.mac, true); // the answer: both are flushed
    p.set(pattern(500, 3));
    assert.equal(s.udpSend(4000, b.ip, 5001, p), 'sent');
    assert.ok(await until(env, () => b.stack.sockets.get(5001)!.queued === 3, 2000));
    assert.deepEqual(payloads(b, 5001), [pattern(500, 1), pattern(500, 2), pattern(500, 3)]);
  }));

test('a lent page whose frame must wait in the backlog goes back to the free pages: one tx buffer still drains', () =>
  withNet(async (env) => {
    const [a, b] = env.guests as [NetGuest, NetGuest];
    const got: number[] = [];
    b.front.onReceive = (f) => void got.push(f.length);
    const page = a.front.txBuffer(300);
    assert.ok(page !== undefined, 'the only tx page is lent');
    page.set(pattern(300, 1));
    page.set(b.front.mac, 0);
    page.set(a.front.mac, 6);
    const other = pattern(200, 2);
    other.set(b.front.mac, 0);
    other.set(a.front.mac, 6);
    assert.equal(a.front.transmit(other), true, 'no free page: backlogged');
    assert.equal(a.front.transmit(page), true, 'behind the backlog: copied into it');
    assert.ok(await until(env, () => got.length === 2, 2000), `both frames arrive (got ${got.length})`);
    assert.deepEqual(got, [200, 300]);
  }, [{ front: { buffers: { tx: 1 } } }, {}]));

test('hostile backend: a tx response naming the lent (not in flight) page breaks the device', () =>
  withNet(async (env) => {
    const [a] = env.guests as [NetGuest];
    await a.back.dispose(); // this test is the backend now, writing the shared page directly
    const q = a.front.queue(0)!;
    assert.ok(q.txBuffer(100) !== undefined);
    const lentId = (q as unknown as { lentId: number }).lentId;
    assert.ok(lentId >= 0);
    assert.equal(a.front.transmit(pattern(100)), true); // one real request, on another page
    const tx = new DataView(q.txPage.bytes.buffer, q.txPage.bytes.byteOffset, 4096);
    tx.setUint16(64, lentId, true);
    tx.setInt16(64 + 2, NETIF_RSP_OKAY, true);
    Atomics.store(new Int32Array(q.txPage.bytes.buffer, q.txPage.bytes.byteOffset, 16), 2, 1); // rsp_prod = 1
    (q as unknown as { serve(): void }).serve();
    assert.match(a.front.broken ?? '', new RegExp(`inactive request ${lentId}`));
  }, [{}]));

type Internals = { rxBufs: { bytes: Uint8Array }[]; rxRefs: Uint32Array; rxQueue: { suspendAccess: unknown }; serve(): void };

/**
 * Play netback on guest `a`'s queue 0: write `frames` (with `pattern(61, i + 1)` at each offset)
 * into the buffers posted at slots 0.., answer them, and serve the queue. `onFrame` runs inside
 * each receive callback.
 */
function answerRx(a: NetGuest, offsets: readonly number[], onFrame: (f: Uint8Array, i: number, gref: number) => void = () => undefined): number[][] {
  const q = a.front.queue(0)!;
  const int = q as unknown as Internals;
  const got: number[][] = [];
  const grefs: number[] = [];
  a.front.onReceive = (f) => {
    got.push([...f]);
    onFrame(f, got.length - 1, grefs[got.length - 1]!);
  };
  a.front.rxTransient = true;
  const words = new Int32Array(q.rxPage.bytes.buffer, q.rxPage.bytes.byteOffset, 16);
  const rx = new DataView(q.rxPage.bytes.buffer, q.rxPage.bytes.byteOffset, 4096);
  offsets.forEach((offset, i) => {
    // Slot i holds the buffer posted there: its request's id is the slot, its gref names the page.
    const gref = rx.getUint32(64 + i * 8 + 4, true);
    grefs.push(gref);
    const page = int.rxBufs.find((_, k) => int.rxRefs[k] === gref)!;
    page.bytes.set(pattern(61, i + 1), offset);
    rx.setUint16(64 + i * 8, i, true); // id
    rx.setUint16(64 + i * 8 + 2, offset, true);
    rx.setUint16(64 + i * 8 + 4, 0, true); // flags
    rx.setInt16(64 + i * 8 + 6, 61, true); // status: the size
  });
  Atomics.store(words, 2, offsets.length); // rsp_prod
  int.serve();
  return got;
}

const OFFSETS = [0, 3, 5, 8, 4096 - 61];

test('a one-slot rx frame at any offset in its page is read in place, with the backend\'s access suspended meanwhile', () =>
  withNet(async (env) => {
    const [a] = env.guests as [NetGuest];
    await a.back.dispose(); // this test is the backend now, writing the shared pages directly
    const shared = a.platform.grants.view(a.domid).shared;
    const flagsDuring: number[] = [];
    const got = answerRx(a, OFFSETS, (_, __, gref) => flagsDuring.push(Atomics.load(shared, gref * 2) & 0xffff));
    assert.deepEqual(got, OFFSETS.map((_, i) => [...pattern(61, i + 1)]));
    assert.deepEqual(flagsDuring, OFFSETS.map(() => 0), 'no access granted while the receiver reads');
    // Posted again at the end of the batch: granted again, writable.
    const q = a.front.queue(0)! as unknown as Internals;
    for (const ref of q.rxRefs) assert.equal(Atomics.load(shared, ref * 2) & 0xffff, GTF_permit_access, `ref ${ref}`);
    assert.equal(a.front.counters.rxErrors, 0);
  }, [{ stack: false }]));

test('a backend writing into a buffer it has answered for cannot change the frame the receiver reads', () =>
  withNet(async (env) => {
    const [a] = env.guests as [NetGuest];
    await a.back.dispose();
    const statuses: number[] = [];
    const got = answerRx(a, [0, 100], (f, i, gref) => {
      // While the receiver holds frame i, "netback" copies over it, as a hostile one would.
      const src = new Uint8Array(61).fill(0xee);
      statuses.push(...env.hv.dom0.grants.copy([{ source: { kind: 'local', buf: src, offset: 0 }, dest: { kind: 'grant', domid: a.domid, ref: gref as GrantRef, offset: i * 100 }, len: 61 }]));
      assert.deepEqual([...f], [...pattern(61, i + 1)], 'the frame as answered');
    });
    assert.deepEqual(got, [[...pattern(61, 1)], [...pattern(61, 2)]]);
    assert.deepEqual(statuses, [GNTST_permission_denied, GNTST_permission_denied]);
  }, [{ stack: false }]));

test('a frame whose buffer the backend is still writing (GTF_writing) is dropped and counted, and its buffer posted again', () =>
  withNet(async (env) => {
    const [a] = env.guests as [NetGuest];
    await a.back.dispose();
    const shared = a.platform.grants.view(a.domid).shared;
    const rx = new DataView(a.front.queue(0)!.rxPage.bytes.buffer, a.front.queue(0)!.rxPage.bytes.byteOffset, 4096);
    const busy = rx.getUint32(64 + 1 * 8 + 4, true); // the buffer at slot 1
    Atomics.or(shared, busy * 2, GTF_writing); // a copy into it still in progress
    const got = answerRx(a, [0, 0, 0]);
    assert.deepEqual(got, [[...pattern(61, 1)], [...pattern(61, 3)]], 'frame 2 dropped');
    assert.equal(a.front.counters.rxErrors, 1);
    Atomics.and(shared, busy * 2, ~GTF_writing);
    assert.equal(Atomics.load(shared, busy * 2) & 0xffff, GTF_permit_access, 'its grant never ended');
  }, [{ stack: false }]));

test('where the platform cannot suspend a grant, a one-slot rx frame is copied exact into the reused buffer (placed at its offset mod 8)', () =>
  withNet(async (env) => {
    const [a] = env.guests as [NetGuest];
    await a.back.dispose();
    (a.front.queue(0)! as unknown as Internals).rxQueue.suspendAccess = undefined; // as on xen (gntalloc)
    const shared = a.platform.grants.view(a.domid).shared;
    const flagsDuring: number[] = [];
    const got = answerRx(a, OFFSETS, (_, __, gref) => flagsDuring.push(Atomics.load(shared, gref * 2) & 0xffff));
    assert.deepEqual(got, OFFSETS.map((_, i) => [...pattern(61, i + 1)]));
    assert.deepEqual(flagsDuring, OFFSETS.map(() => GTF_permit_access), 'the grants stay live: the frame is a private copy');
    assert.equal(a.front.counters.rxErrors, 0);
  }, [{ stack: false }]));
