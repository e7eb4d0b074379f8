/**
 * The guest ring transport, driven by a fake guest on a shared page: requests, replies larger
 * than the ring, watch events, bad indices, oversized frames, reconnection, and fuzzing of the
 * ring reader with random bytes, chunk splits and index values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assertNoLeaks } from '../../base/index.js';
import {
  XENSTORE_DOMAIN_INTERFACE,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XENSTORE_RECONNECT,
} from '../../abi/io/xs_wire.js';
import { encodeHeader, encodeMessage, encodeRequest, FrameParser, latin1, latin1Bytes, type XsMessage, type XsRequest } from '../protocol/index.js';
import { Xenstored } from './xenstored.js';
import type { RingEndpoint } from './ring.js';
import { TestClient } from './test-support.js';
import { SERVER_FEATURES } from './features.js';
import { makeLimits } from './limits.js';

const F = XENSTORE_DOMAIN_INTERFACE.layouts.x86_64.fields;

/** The guest side of one xenstore page. */
class FakeGuest implements RingEndpoint {
  readonly page = new Uint8Array(new SharedArrayBuffer(4096));
  readonly words = new Uint32Array(this.page.buffer);
  private handler: (() => void) | undefined;
  readonly parser = new FrameParser();
  readonly got: XsMessage[] = [];
  notifies = 0;
  disposed = false;
  private nextId = 1;

  constructor(start = 0) {
    // Indices need not start at 0 (xenstore-ring.txt); start near the u32 wrap.
    for (const f of ['req_cons', 'req_prod', 'rsp_cons', 'rsp_prod'] as const) this.words[F[f]! / 4] = start;
  }

  notify(): void {
    this.notifies++;
  }

  onEvent(h: () => void): void {
    this.handler = h;
  }

  dispose(): void {
    this.disposed = true;
  }

  kick(): void {
    this.handler?.();
  }

  word(f: keyof typeof F): number {
    return Atomics.load(this.words, F[f]! / 4);
  }

  setWord(f: keyof typeof F, v: number): void {
    Atomics.store(this.words, F[f]! / 4, v >>> 0);
  }

  /** Put bytes on the request ring (as far as they fit) and signal. Returns bytes written. */
  send(bytes: Uint8Array): number {
    const prod = this.word('req_prod');
    const space = 1024 - ((prod - this.word('req_cons')) >>> 0);
    const n = Math.min(space, bytes.length);
    for (let i = 0; i < n; i++) this.page[F.req + ((prod + i) & 1023)] = bytes[i]!;
    this.setWord('req_prod', prod + n);
    this.kick();
    return n;
  }

  /** Consume everything on the response ring. */
  receive(): XsMessage[] {
    for (let guard = 0; guard < 100; guard++) {
      const cons = this.word('rsp_cons');
      const prod = this.word('rsp_prod');
      const n = (prod - cons) >>> 0;
      if (n === 0) break;
      const chunk = new Uint8Array(n);
      for (let i = 0; i < n; i++) chunk[i] = this.page[F.rsp + ((cons + i) & 1023)]!;
      this.setWord('rsp_cons', cons + n);
      this.got.push(...this.parser.push(chunk).messages);
      this.kick();
    }
    return this.got.splice(0);
  }

  call(req: XsRequest, txId = 0): string {
    const { type, payload } = encodeRequest(req);
    const id = this.nextId++;
    const msg = encodeMessage({ type, reqId: id, txId, payload });
    let off = 0;
    while (off < msg.length) {
      off += this.send(msg.subarray(off));
      if (off < msg.length) this.receive();
    }
    const all = this.receive();
    const m = all.find((x) => x.reqId === id && x.type !== 15);
    this.got.push(...all.filter((x) => x !== m));
    if (m === undefined) return 'NO-REPLY';
    return latin1(m.payload).replace(/\0$/, '');
  }
}

function setup(opts: { start?: number; limits?: ReturnType<typeof makeLimits> } = {}) {
  const guests = new Map<number, FakeGuest>();
  const d = new Xenstored({
    ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    ringMapper: (domid) => {
      const g = new FakeGuest(opts.start ?? 0);
      guests.set(domid, g);
      return g;
    },
  });
  const dom0 = new TestClient(d);
  const introduce = (domid: number): FakeGuest => {
    dom0.mkdir(`/local/domain/${domid}`);
    dom0.setPerms(`/local/domain/${domid}`, `n${domid}`);
    assert.equal(dom0.request({ op: 'introduce', domid, gfn: 100 + domid, port: 1 }).ok, true);
    return guests.get(domid)!;
  };
  return { d, dom0, introduce };
}

test('INTRODUCE maps the page: features offered, requests and replies over the ring, across the index wrap', () => {
  const { d, introduce } = setup({ start: 0xfffffff0 });
  const g = introduce(1);
  assert.equal(g.word('server_features'), SERVER_FEATURES);
  assert.equal(g.call({ op: 'write', path: 'name', value: new Uint8Array([103]) }), 'OK');
  assert.equal(g.call({ op: 'read', path: 'name' }), 'g');
  assert.equal(g.call({ op: 'read', path: '/local/domain/0' }), 'EACCES');
  assert.equal(g.call({ op: 'getDomainPath', domid: 1 }), '/local/domain/1');
  d.close();
});

test('a reply larger than the ring goes out in pieces as the guest consumes', () => {
  const { d, dom0, introduce } = setup();
  const g = introduce(1);
  for (let i = 0; i < 200; i++) dom0.write(`/local/domain/1/dir/entry-number-${i}`, '');
  const list = g.call({ op: 'directory', path: 'dir' }).split('\0');
  assert.equal(list.length, 200);
  assert.equal(list[199], 'entry-number-199');
  d.close();
});

test('watch events arrive over the ring with the relative path', () => {
  const { d, dom0, introduce } = setup();
  const g = introduce(1);
  assert.equal(g.call({ op: 'watch', path: 'control', token: 't' }), 'OK');
  dom0.write('/local/domain/1/control/shutdown', 'poweroff');
  const evs = [...g.got.splice(0), ...g.receive()].filter((m) => m.type === 15).map((m) => latin1(m.payload));
  assert.deepEqual(evs, ['control\0t\0', 'control/shutdown\0t\0']);
  d.close();
});

test('CONTROL connections (dom0 only) lists each connection with its queues and, for a ring, the page indices', () => {
  const { d, dom0, introduce } = setup();
  const g = introduce(1);
  assert.equal(g.call({ op: 'watch', path: 'control', token: 't' }), 'OK');
  g.receive();
  // A request the guest put on the ring without signalling: the listing shows it unconsumed.
  const msg = encodeMessage({ type: 2, reqId: 9, txId: 0, payload: latin1Bytes('name\0') });
  for (let i = 0; i < msg.length; i++) g.page[F.req + ((g.word('req_prod') + i) & 1023)] = msg[i]!;
  g.setWord('req_prod', g.word('req_prod') + msg.length);
  const r = dom0.request({ op: 'control', args: ['connections'] });
  assert.equal(r.ok, true);
  const lines = latin1(r.payload!).replace(/\0$/, '').trim().split('\n');
  const ring = lines.find((l) => / d1 ring/.test(l));
  assert.ok(ring !== undefined, lines.join(' | '));
  assert.match(ring, /1 requests, 0 replies and 0 events queued, 1 watches, 0 transactions; ring req cons (\d+) prod (\d+)/);
  const [, cons, prod] = /req cons (\d+) prod (\d+)/.exec(ring)!;
  assert.equal(Number(prod) - Number(cons), msg.length, 'the unsignalled request is seen waiting');
  // The watch's reply and its first event are the last messages written, in that order.
  assert.match(ring, /last written \(type\/req_id\/len@index\): 4\/1\/3@0 15\/0\/\d+@19$/);
  assert.ok(lines.some((l) => / d0 local/.test(l)), lines.join(' | '));
  assert.equal(g.call({ op: 'control', args: ['connections'] }), 'EACCES');
  // Past six messages the oldest go: the six newest remain, oldest first.
  for (let i = 0; i < 6; i++) g.call({ op: 'read', path: 'name' });
  const r2 = dom0.request({ op: 'control', args: ['connections'] });
  assert.equal(r2.ok, true);
  const again = latin1(r2.payload!);
  const recent = /last written \(type\/req_id\/len@index\): ([^\n]*)/.exec(again.split('\n').find((l) => / d1 ring/.test(l))!)![1]!.split(' ');
  assert.equal(recent.length, 6, recent.join(' '));
  assert.match(recent.at(-1)!, /^16\/\d+\/\d+@\d+$/, 'the newest last: an error reply to the read');
  d.close();
});

test('a bad index sets error RINGIDX and ignores the guest; the domain stays introduced', () => {
  const { d, dom0, introduce } = setup();
  const g = introduce(1);
  const other = introduce(2);
  dom0.watch('@releaseDomain', 'r');
  dom0.drainEvents();
  g.setWord('req_prod', g.word('req_cons') + 5000);
  g.kick();
  assert.equal(g.word('error'), XENSTORE_ERROR_RINGIDX);
  assert.equal(g.disposed, true);
  assert.equal(dom0.read('/local/domain/1'), '', 'daemon fine');
  assert.equal(other.call({ op: 'read', path: '/local/domain/2' }), '');
  assert.equal(str(dom0.request({ op: 'isDomainIntroduced', domid: 1 })), 'T');
  assert.deepEqual(dom0.drainEvents(), [], 'no early @releaseDomain (XSA-325)');
  d.close();
});

test('an oversized frame sets error PROTO', () => {
  const { d, introduce } = setup();
  const g = introduce(1);
  g.send(encodeHeader({ type: 2, reqId: 1, txId: 0, len: 5000 }));
  assert.equal(g.word('error'), XENSTORE_ERROR_PROTO);
  d.close();
});

test('reconnect: partial packet, watches and transactions dropped; next request parsed cleanly', () => {
  const { d, dom0, introduce } = setup();
  const g = introduce(1);
  assert.equal(g.call({ op: 'watch', path: 'x', token: 't' }), 'OK');
  const tx = Number(g.call({ op: 'transactionStart' }));
  assert.ok(tx > 0);
  g.receive();
  const partial = encodeMessage({ ...encodeRequest({ op: 'read', path: 'x' }), reqId: 99, txId: 0 });
  g.send(partial.subarray(0, 10));
  g.setWord('connection', XENSTORE_RECONNECT);
  g.kick();
  assert.equal(g.word('connection'), 0);
  assert.equal(d.watchUsage(1).count, 0);
  assert.equal(d.transactionCount(1), 0);
  assert.equal(g.word('req_cons'), g.word('req_prod'));
  assert.equal(g.call({ op: 'write', path: 'x', value: new Uint8Array([49]) }), 'OK');
  assert.deepEqual(g.receive().filter((m) => m.type === 15), [], 'the old watch is gone');
  assert.equal(dom0.read('/local/domain/1/x'), '1');
  d.close();
});

test('a guest that never reads replies is held to the outstanding quota', () => {
  const { d, introduce } = setup({ limits: makeLimits({ outstanding: 20 }) });
  const g = introduce(1);
  const one = encodeMessage({ ...encodeRequest({ op: 'read', path: '/local/domain/1' }), reqId: 1, txId: 0 });
  let sent = 0;
  for (let i = 0; i < 300; i++) sent += g.send(one) === one.length ? 1 : 0;
  const conn = [...d.connections].find((c) => c.domid === 1)!;
  assert.ok(conn.queuedReplies <= 20, `queued ${conn.queuedReplies}`);
  assert.ok(sent < 300, 'the request ring filled up: the daemon stopped reading');
  const replies = g.receive().length;
  assert.ok(replies > 20, 'reading replies lets the daemon continue');
  d.close();
});

test('fuzz: random request streams, chunk splits and index values never throw', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 6 }),
      fc.option(fc.record({ field: fc.constantFrom('req_prod' as const, 'rsp_cons' as const), value: fc.nat(0xffffffff) })),
      (chunks, poke) => {
        const { d, dom0, introduce } = setup({ start: 0xfffffe00 });
        const g = introduce(1);
        const good = introduce(2);
        for (const c of chunks) {
          g.send(c);
          g.receive();
        }
        if (poke !== null) {
          g.setWord(poke.field, poke.value);
          g.kick();
        }
        assert.equal(good.call({ op: 'read', path: '/local/domain/2' }), '');
        assert.equal(dom0.read('/'), '');
        assert.deepEqual(d.checkAccounting(), []);
        assert.equal(d.stats.internalErrors, 0);
        d.close();
      },
    ),
    { numRuns: 200 },
  );
  assertNoLeaks(['xs-connection', 'xs-transaction']);
});

function str(r: { ok: boolean; payload?: Uint8Array; error?: string }): string {
  return r.ok ? latin1(r.payload!).replace(/\0$/, '') : r.error!;
}

test('property: a reconnect at any byte offset of a request stream leaves a clean connection (R17)', () => {
  const reqs: XsRequest[] = [
    { op: 'watch', path: 'a', token: 't1' },
    { op: 'transactionStart' },
    { op: 'write', path: 'a/b', value: new Uint8Array([1, 2, 3]) },
    { op: 'watch', path: '@releaseDomain', token: 'r' },
    { op: 'read', path: 'a' },
  ];
  const stream = Buffer.concat(reqs.map((r, i) => encodeMessage({ ...encodeRequest(r), reqId: i + 1, txId: 0 })));
  fc.assert(
    fc.property(fc.nat(stream.length), (cut) => {
      const { d, dom0, introduce } = setup();
      const g = introduce(1);
      const baseline = d.db.allUsage();
      for (let off = 0; off < cut; ) {
        off += g.send(stream.subarray(off, cut));
        g.receive();
      }
      g.setWord('connection', XENSTORE_RECONNECT);
      g.kick();
      g.receive();
      assert.equal(g.word('connection'), 0);
      assert.equal(d.watchUsage(1).count, 0, 'no watch survives');
      assert.equal(d.transactionCount(1), 0, 'no transaction survives');
      assert.equal(g.call({ op: 'read', path: '/local/domain/1' }), '', 'the next request parses from a clean boundary');
      if (cut < stream.indexOf(Buffer.from('a/b'))) assert.deepEqual(d.db.allUsage().get(1), baseline.get(1), 'nothing written');
      dom0.write('/local/domain/1/a/z', 'v');
      assert.deepEqual(g.receive().filter((m) => m.type === 15), [], 'no stale watch event');
      assert.deepEqual(d.checkAccounting(), []);
      d.close();
    }),
    { numRuns: 60 },
  );
});
