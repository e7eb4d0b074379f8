/**
 * The client against our real daemon over a unix socket: multiplexing under load, a real
 * transaction conflict (EAGAIN) and its retry, watches, large directories, and what happens
 * when the daemon goes away.
 */
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { assertNoLeaks, errorCode } from '../../base/index.js';
import { startXenstored, type RunningXenstored } from '../server/index.js';
import { connectXenstored, type XsClient } from './index.js';

let dir: string;
let xs: RunningXenstored;
let a: XsClient;
let b: XsClient;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenpv-client-'));
  xs = await startXenstored({ socketPath: join(dir, 'socket') });
  a = await connectXenstored({ path: xs.socketPath! });
  b = await connectXenstored({ path: xs.socketPath! });
});

after(async () => {
  a.close();
  b.close();
  await xs.close();
  rmSync(dir, { recursive: true, force: true });
  assertNoLeaks(['xs-watch', 'xs-transaction', 'xs-connection', 'socket']);
});

afterEach(() => assertNoLeaks(['xs-watch', 'xs-transaction']));

const text = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

test('hundreds of concurrent requests on one connection all get their own answers', async () => {
  await Promise.all(Array.from({ length: 300 }, (_, i) => a.write(`/mux/${i}`, `value-${i}`)));
  const reads = await Promise.all(Array.from({ length: 300 }, (_, i) => a.read(`/mux/${i}`)));
  assert.deepEqual(reads.map(text), Array.from({ length: 300 }, (_, i) => `value-${i}`));
  const names = await a.directory('/mux');
  assert.equal(names.length, 300);
  await a.rm('/mux');
});

test('a conflicting write makes the commit fail with EAGAIN; withTransaction runs the body again', async () => {
  await a.write('/tx/counter', '10');
  let attempts = 0;
  await a.withTransaction(async (tx) => {
    attempts++;
    const v = Number(text(await tx.read('/tx/counter')));
    if (attempts === 1) await b.write('/tx/counter', '20'); // someone else changes what we read
    await tx.write('/tx/counter', String(v + 1));
  });
  assert.equal(attempts, 2);
  assert.equal(text(await a.read('/tx/counter')), '21', 'the retry saw the other write');
});

test('concurrent read-modify-write transactions from several clients lose no increment', async () => {
  const clients = [a, b, await connectXenstored({ path: xs.socketPath! }), await connectXenstored({ path: xs.socketPath! })];
  await a.write('/tx/n', '0');
  const increment = (c: XsClient) =>
    c.withTransaction(async (tx) => {
      const v = Number(text(await tx.read('/tx/n')));
      await tx.write('/tx/n', String(v + 1));
    }, { maxAttempts: 200 });
  await Promise.all(clients.flatMap((c) => Array.from({ length: 5 }, () => increment(c))));
  assert.equal(text(await a.read('/tx/n')), '20');
  clients[2]!.close();
  clients[3]!.close();
});

test('a watch iterator gets the initial event and every later change', async () => {
  await a.write('/w/x', '1');
  const seen: string[] = [];
  const watch = a.watch('/w', 'my-token');
  for await (const ev of watch) {
    seen.push(ev.path);
    assert.equal(ev.token, 'my-token');
    if (seen.length === 1) {
      await b.write('/w/x', '2');
      await b.write('/w/y/z', '3');
      await b.rm('/w/x');
    }
    if (seen.length === 4) break;
  }
  assert.deepEqual(seen, ['/w', '/w/x', '/w/y/z', '/w/x']);
  // Leaving the loop sent UNWATCH: the daemon accepts the same (path, token) again, no EEXIST.
  const again = a.watch('/w', 'my-token');
  await again.ready;
  again.dispose();
});

test('a directory too big for one reply is read with DIRECTORY_PART', async () => {
  const names = Array.from({ length: 400 }, (_, i) => `a-rather-long-child-name-${String(i).padStart(4, '0')}`);
  await Promise.all(names.map((n) => a.write(`/big/${n}`, '')));
  const listed = await a.directory('/big');
  assert.equal(names.join('\0').length > 4096, true);
  assert.deepEqual([...listed].sort(), names);
  await a.rm('/big');
});

test('when the daemon goes away, watches end with ECONNRESET and requests fail', async () => {
  const own = await startXenstored({ socketPath: join(dir, 'other') });
  const c = await connectXenstored({ path: own.socketPath! });
  const watch = c.watch('/gone', 't');
  assert.deepEqual((await watch.next()).value, { path: '/gone', token: 't' });
  const waiting = assert.rejects(watch.next(), (e: unknown) => errorCode(e) === 'ECONNRESET');
  await own.close();
  await waiting;
  await assert.rejects(c.read('/x'), (e: unknown) => errorCode(e) === 'ECONNRESET');
  c.close();
});

test('the tool-facing errors carry Xen names: ENOENT, EINVAL, EEXIST', async () => {
  await assert.rejects(a.read('/no/such/node'), (e: unknown) => errorCode(e) === 'ENOENT');
  await assert.rejects(a.write('/bad//path', 'v'), (e: unknown) => errorCode(e) === 'EINVAL');
  const w1 = a.watch('/dup', 'same');
  await w1.ready;
  const w2 = a.watch('/dup', 'same');
  await assert.rejects(w2.ready, (e: unknown) => errorCode(e) === 'EEXIST');
  w1.dispose();
});

test('domain and daemon operations round-trip through the daemon', async () => {
  const intro = a.watch('@introduceDomain', 'intro');
  assert.deepEqual((await intro.next()).value, { path: '@introduceDomain', token: 'intro' });
  assert.equal(await a.getDomainPath(7), '/local/domain/7');
  assert.equal(await a.isDomainIntroduced(7), false);
  await a.introduce(7, 0x1000, 3);
  assert.equal((await intro.next()).value?.path, '@introduceDomain', 'INTRODUCE fires @introduceDomain');
  intro.dispose();
  assert.equal(await a.isDomainIntroduced(7), true);
  await a.introduce(8, 0x2000, 4);
  await a.setTarget(8, 7);
  await a.resume(7);
  assert.equal(typeof (await a.getFeature()), 'number');
  assert.match(await a.getQuota(), /\w+( \w+)*/, 'GET_QUOTA without a name lists the quota names');
  const name = (await a.getQuota()).split(' ')[0]!;
  await a.setQuota(name, 4321, 7);
  assert.equal(await a.getQuota(name, 7), '4321');
  assert.match(text(await a.control(['help'])), /check/);
  assert.equal(text(await a.control(['check'])), 'OK\0');
  await a.release(8);
  await a.release(7);
  assert.equal(await a.isDomainIntroduced(7), false);
  await assert.rejects(a.release(7), (e: unknown) => errorCode(e) === 'ENOENT');
});

test('RESET_WATCHES drops this client’s watches and transactions, here and in the daemon', async () => {
  const c = await connectXenstored({ path: xs.socketPath! });
  const watch = c.watch('/reset', 'r');
  await watch.next();
  const tx = await c.transactionStart();
  await c.resetWatches();
  assert.equal(tx.open, false);
  assert.deepEqual(await watch.next(), { value: undefined, done: true });
  // The daemon forgot the watch: registering it again is not a duplicate.
  const again = c.watch('/reset', 'r');
  await again.ready;
  again.dispose();
  c.close();
});
