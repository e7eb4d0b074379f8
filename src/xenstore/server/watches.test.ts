import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoLeaks } from '../../base/index.js';
import { encodeMessage, encodeRequest } from '../protocol/index.js';
import { Xenstored } from './xenstored.js';
import { makeLimits } from './limits.js';
import { TestClient } from './test-support.js';

test('initial fire, token, children, relative paths reported relative', () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d);
  dom0.mkdir('/local/domain/1');
  dom0.setPerms('/local/domain/1', 'n1');
  const g = new TestClient(d, 1);
  assert.equal(g.watch('device', 'tok'), 'OK');
  assert.deepEqual(g.drainEvents(), [['device', 'tok']], 'fires once straight away, relative');
  dom0.write('/local/domain/1/device/vbd/0/state', '1');
  assert.deepEqual(g.drainEvents(), [['device/vbd/0/state', 'tok']]);
  dom0.write('/local/domain/1/other', 'x');
  assert.deepEqual(g.drainEvents(), [], 'not below the watch');
  assert.equal(dom0.watch('/local/domain/1', 'abs'), 'OK');
  dom0.drainEvents();
  dom0.rm('/local/domain/1/device');
  // core.c delnode_sub: the removed node fires every watch at or above it; nodes removed
  // with it fire only watches exactly on them.
  assert.deepEqual(dom0.drainEvents(), [['/local/domain/1/device', 'abs']]);
  assert.deepEqual(g.drainEvents(), [['device', 'tok']], 'the watched node itself was removed');
  g.watch('device/vbd/0/state', 'deep');
  g.drainEvents();
  dom0.write('/local/domain/1/device/vbd/0/state', '2');
  g.drainEvents();
  dom0.rm('/local/domain/1/device');
  assert.deepEqual(g.drainEvents(), [
    ['device/vbd/0/state', 'deep'],
    ['device', 'tok'],
  ], 'removal of an ancestor reports <wpath> itself');
  d.close();
});

test('transactions fire only on commit; an aborted one fires nothing', () => {
  const d = new Xenstored();
  const a = new TestClient(d);
  const w = new TestClient(d);
  w.watch('/t', 'x');
  w.drainEvents();
  const tx = a.start();
  a.write('/t/1', 'v', tx);
  assert.deepEqual(w.drainEvents(), []);
  a.end(tx, false);
  assert.deepEqual(w.drainEvents(), []);
  const tx2 = a.start();
  a.write('/t/1', 'v', tx2);
  a.write('/t/2', 'v', tx2);
  a.end(tx2);
  assert.deepEqual(w.drainEvents().map(([p]) => p).sort(), ['/t/1', '/t/2']);
  d.close();
});

test('watch depth (WATCHDEPTH): 0 = the node only, 1 = direct children', () => {
  const d = new Xenstored();
  const c = new TestClient(d);
  c.watch('/w', 'd0', 0);
  c.watch('/w', 'd1', 1);
  c.drainEvents();
  c.write('/w', 'v');
  c.write('/w/a', 'v');
  c.write('/w/a/b', 'v');
  assert.deepEqual(c.drainEvents(), [
    ['/w', 'd0'],
    ['/w', 'd1'],
    ['/w/a', 'd1'],
  ]);
  d.close();
});

test('events only to connections that can read the node (or its old perms, or its parent)', () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d);
  dom0.write('/p/secret', 's');
  dom0.setPerms('/p', 'n0,r1');
  const g1 = new TestClient(d, 1);
  const g2 = new TestClient(d, 2);
  g1.watch('/p', 'a');
  g2.watch('/p', 'b');
  g1.drainEvents();
  g2.drainEvents();
  dom0.write('/p/secret', 't');
  assert.deepEqual(g1.drainEvents(), [['/p/secret', 'a']], 'parent /p is readable by 1');
  assert.deepEqual(g2.drainEvents(), [], 'nothing readable by 2');
  dom0.setPerms('/p/secret', 'n0,r2');
  assert.deepEqual(g2.drainEvents(), [['/p/secret', 'b']], 'the new perms let 2 read it');
  dom0.setPerms('/p/secret', 'n0');
  assert.deepEqual(g2.drainEvents(), [['/p/secret', 'b']], 'a watcher losing access hears of it (old perms)');
  d.close();
});

test('@introduceDomain / @releaseDomain: privileged by default, SET_PERMS opens them, depth adds the domid', () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d);
  const g1 = new TestClient(d, 1);
  dom0.watch('@introduceDomain', 'i');
  dom0.watch('@releaseDomain', 'r1', 1);
  dom0.watch('@releaseDomain/5', 'only5');
  g1.watch('@releaseDomain', 'g');
  dom0.drainEvents();
  g1.drainEvents();
  dom0.request({ op: 'introduce', domid: 5, gfn: 1, port: 1 });
  dom0.request({ op: 'introduce', domid: 6, gfn: 1, port: 1 });
  assert.deepEqual(dom0.drainEvents(), [
    ['@introduceDomain', 'i'],
    ['@introduceDomain', 'i'],
  ]);
  dom0.request({ op: 'release', domid: 5 });
  assert.deepEqual(dom0.drainEvents(), [
    ['@releaseDomain/5', 'r1'],
    ['@releaseDomain/5', 'only5'],
  ]);
  assert.deepEqual(g1.drainEvents(), [], 'not permitted');
  dom0.setPerms('@releaseDomain', 'n0,r1');
  g1.drainEvents();
  dom0.request({ op: 'release', domid: 6 });
  assert.deepEqual(g1.drainEvents(), [['@releaseDomain', 'g']]);
  d.close();
});

test('a slow reader flooded with watch events stays bounded; others keep working', () => {
  const limits = makeLimits({ watchEventQueue: 50 });
  const d = new Xenstored({ limits });
  const writer = new TestClient(d);
  const slow = new TestClient(d);
  const other = new TestClient(d);
  slow.watch('/flood', 'x');
  other.watch('/flood', 'y');
  other.drainEvents();
  slow.transport.accepting = false; // never reads
  for (let i = 0; i < 5000; i++) writer.write(`/flood/k${i % 500}`, String(i));
  assert.ok(slow.conn.queuedEvents <= 50, `queued ${slow.conn.queuedEvents}`);
  assert.ok(slow.conn.stats.droppedEvents > 4000);
  assert.equal(other.drainEvents().length, 5000, 'a reader that keeps up misses nothing');
  assert.equal(writer.read('/flood/k1'), '4501');
  d.close();
});

test('events of an unprivileged reader expire after the timeout', () => {
  let now = 1_000_000;
  const d = new Xenstored({ now: () => now, limits: makeLimits({ watchEventTimeoutMs: 1000 }) });
  const dom0 = new TestClient(d);
  const g = new TestClient(d, 1);
  dom0.write('/e', '');
  dom0.setPerms('/e', 'n0,r1');
  g.transport.accepting = false;
  g.watch('/e', 't');
  dom0.write('/e/a', '1');
  assert.equal(g.conn.queuedEvents, 2);
  now += 2000;
  g.conn.flush(now);
  assert.equal(g.conn.queuedEvents, 0);
  assert.equal(g.conn.stats.expiredEvents, 2);
  d.close();
});

test('RESET_WATCHES drops watches and transactions; accounting follows', () => {
  const d = new Xenstored();
  const c = new TestClient(d);
  c.watch('/a', 't');
  c.start();
  c.drainEvents();
  assert.equal(d.watchUsage(0).count, 1);
  assert.equal(c.request({ op: 'resetWatches' }).ok, true);
  assert.equal(c.conn.watches.size, 0);
  assert.equal(c.conn.transactions.size, 0);
  assert.equal(d.watchUsage(0).count, 0);
  c.write('/a', 'v');
  assert.deepEqual(c.drainEvents(), []);
  d.close();
  assertNoLeaks(['xs-transaction', 'xs-connection']);
});

test('a watch event that would exceed the payload limit is dropped (XSA-324)', () => {
  const d = new Xenstored();
  const c = new TestClient(d);
  const token = 'T'.repeat(4000);
  const { type, payload } = encodeRequest({ op: 'watch', path: '/a', token });
  c.raw(encodeMessage({ type, reqId: 1, txId: 0, payload }));
  c.drainEvents();
  c.write(`/a/${'p'.repeat(200)}`, 'v');
  assert.deepEqual(c.drainEvents(), []);
  d.close();
});

test('a domain shutdown fires @releaseDomain once, again only after RESUME', () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d);
  dom0.request({ op: 'introduce', domid: 4, gfn: 1, port: 1 });
  dom0.watch('@releaseDomain', 'r');
  dom0.drainEvents();
  d.domainShutdown(4);
  d.domainShutdown(4);
  assert.deepEqual(dom0.drainEvents(), [['@releaseDomain', 'r']]);
  dom0.request({ op: 'resume', domid: 4 });
  d.domainShutdown(4);
  assert.deepEqual(dom0.drainEvents(), [['@releaseDomain', 'r']]);
  d.close();
});
