import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assertNoLeaks, errorCode } from '../../base/index.js';
import { XsOp, splitStrings, strings, latin1Bytes, type XsMessage } from '../protocol/index.js';
import { XsClient } from './client.js';
import { ScriptedStore } from './testing.js';

afterEach(() => assertNoLeaks(['xs-watch', 'xs-transaction', 'xs-connection']));

const args = (m: XsMessage): string[] => splitStrings(m.payload).list;
const text = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

test('many requests in flight at once, answered out of order, each gets its own reply', async () => {
  const held: XsMessage[] = [];
  let maxSeen = 0;
  const store = new ScriptedStore((m, s) => {
    held.push(m);
    maxSeen = Math.max(maxSeen, held.length);
    if (held.length === 16) {
      // Answer the batch backwards: replies are matched by req_id, not by order.
      for (const r of held.splice(0).reverse()) s.reply(r, latin1Bytes(`value of ${args(r)[0]}`));
    }
  });
  const client = new XsClient(store, { maxInFlight: 16 });
  const paths = Array.from({ length: 160 }, (_, i) => `/k/${i}`);
  const values = await Promise.all(paths.map((p) => client.read(p)));
  assert.deepEqual(values.map(text), paths.map((p) => `value of ${p}`));
  assert.equal(maxSeen, 16, 'never more than maxInFlight on the wire');
  const ids = store.received.map((m) => m.reqId);
  assert.ok(ids.every((id) => id !== 0));
  client.close();
});

test('replies split at random byte boundaries are reassembled', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }), async (cuts) => {
      const store = new ScriptedStore((m, s) => s.reply(m, latin1Bytes(`v${args(m)[0]}`)));
      store.chunking = (bytes) => {
        const parts: Uint8Array[] = [];
        let off = 0;
        for (let i = 0; off < bytes.length; i++) {
          const n = cuts[i % cuts.length]!;
          parts.push(bytes.subarray(off, off + n));
          off += n;
        }
        return parts;
      };
      const client = new XsClient(store);
      const got = await Promise.all(['/a', '/b', '/c'].map((p) => client.read(p)));
      assert.deepEqual(got.map(text), ['v/a', 'v/b', 'v/c']);
      client.close();
    }),
    { numRuns: 50 },
  );
});

test('an XS_ERROR reply rejects with the Xen error name as code', async () => {
  const store = new ScriptedStore((m, s) => s.replyError(m, args(m)[0] === '/odd' ? 'EWHATEVER' : 'ENOENT'));
  const client = new XsClient(store);
  await assert.rejects(client.read('/missing'), (e: unknown) => errorCode(e) === 'ENOENT');
  // Names outside xsd_errors[] become EINVAL, as in libxenstore; the wire text is kept.
  await assert.rejects(client.read('/odd'), (e: unknown) => errorCode(e) === 'EINVAL' && (e as { context: Record<string, unknown> }).context['wireError'] === 'EWHATEVER');
  client.close();
});

test('requests are encoded as libxenstore sends them, with tx_id only where it applies', async () => {
  const store = new ScriptedStore((m, s) => {
    if (m.type === XsOp.transactionStart) s.reply(m, strings(['7']));
    else if (m.type === XsOp.getPerms) s.reply(m, strings(['n0', 'r5']));
    else s.reply(m);
  });
  const client = new XsClient(store);
  const tx = await client.transactionStart();
  await tx.write('/a', 'hello');
  assert.deepEqual(await tx.getPerms('/a'), [{ access: 'n', domid: 0 }, { access: 'r', domid: 5 }]);
  await tx.setPerms('/a', [{ access: 'b', domid: 3 }]);
  await tx.commit();
  const [start, write, getPerms, setPerms, end] = store.received;
  assert.equal(start!.txId, 0);
  assert.equal(text(start!.payload), '\0');
  assert.equal(write!.txId, 7);
  assert.equal(text(write!.payload), '/a\0hello');
  assert.equal(getPerms!.txId, 7);
  assert.equal(text(setPerms!.payload), '/a\0b3\0');
  assert.deepEqual([end!.type, end!.txId, text(end!.payload)], [XsOp.transactionEnd, 7, 'T\0']);
  await assert.rejects(tx.read('/a'), (e: unknown) => errorCode(e) === 'EINVAL', 'an ended transaction is refused locally');
  client.close();
});

test('withTransaction retries the whole body on EAGAIN, then succeeds', async () => {
  let nextTx = 1;
  let commits = 0;
  const store = new ScriptedStore((m, s) => {
    if (m.type === XsOp.transactionStart) return s.reply(m, strings([String(nextTx++)]));
    if (m.type === XsOp.transactionEnd && args(m)[0] === 'T' && ++commits <= 2) return s.replyError(m, 'EAGAIN');
    if (m.type === XsOp.read) return s.reply(m, latin1Bytes(String(m.txId)));
    s.reply(m);
  });
  const client = new XsClient(store);
  let runs = 0;
  const result = await client.withTransaction(async (tx) => {
    runs++;
    const v = text(await tx.read('/counter'));
    await tx.write('/counter', `${v}+`);
    return v;
  });
  assert.equal(runs, 3);
  assert.equal(result, '3', 'the body ran in a fresh transaction each time');
  const writes = store.received.filter((m) => m.type === XsOp.write).map((m) => m.txId);
  assert.deepEqual(writes, [1, 2, 3]);
  client.close();
});

test('withTransaction gives up after maxAttempts with EAGAIN, and aborts on other errors', async () => {
  let nextTx = 1;
  const store = new ScriptedStore((m, s) => {
    if (m.type === XsOp.transactionStart) return s.reply(m, strings([String(nextTx++)]));
    if (m.type === XsOp.transactionEnd && args(m)[0] === 'T') return s.replyError(m, 'EAGAIN');
    if (m.type === XsOp.read && args(m)[0] === '/gone') return s.replyError(m, 'ENOENT');
    s.reply(m);
  });
  const client = new XsClient(store);
  await assert.rejects(
    client.withTransaction(async (tx) => tx.write('/x', 'y'), { maxAttempts: 3 }),
    (e: unknown) => errorCode(e) === 'EAGAIN',
  );
  assert.equal(store.received.filter((m) => m.type === XsOp.transactionStart).length, 3);
  const before = store.received.length;
  await assert.rejects(client.withTransaction(async (tx) => tx.read('/gone')), (e: unknown) => errorCode(e) === 'ENOENT');
  const end = store.received.slice(before).find((m) => m.type === XsOp.transactionEnd)!;
  assert.equal(args(end)[0], 'F', 'a failed body aborts its transaction');
  client.close();
});

test('a watch is an async iterator: initial event, later events, UNWATCH on break', async () => {
  const store = new ScriptedStore((m, s) => {
    s.reply(m);
    if (m.type === XsOp.watch) s.event(args(m)[0]!, args(m)[1]!); // the initial fire, after OK
  });
  const client = new XsClient(store);
  const seen: string[] = [];
  const watch = client.watch('/local/domain/1', 'tok');
  for await (const ev of watch) {
    seen.push(`${ev.path}|${ev.token}`);
    if (seen.length === 1) {
      store.event('/local/domain/1/name', 'tok');
      store.event('/elsewhere', 'other-token'); // not ours
      store.event('/local/domain/1/x', 'tok');
    }
    if (seen.length === 3) break;
  }
  assert.deepEqual(seen, ['/local/domain/1|tok', '/local/domain/1/name|tok', '/local/domain/1/x|tok']);
  const unwatch = store.received.find((m) => m.type === XsOp.unwatch)!;
  assert.deepEqual(args(unwatch), ['/local/domain/1', 'tok']);
  store.event('/local/domain/1/late', 'tok'); // after disposal: dropped, no error
  client.close();
});

test('a refused WATCH rejects ready and ends the iterator with that error', async () => {
  const store = new ScriptedStore((m, s) => (m.type === XsOp.watch ? s.replyError(m, 'EEXIST') : s.reply(m)));
  const client = new XsClient(store);
  const watch = client.watch('/a', 't');
  await assert.rejects(watch.ready, (e: unknown) => errorCode(e) === 'EEXIST');
  await assert.rejects(watch.next(), (e: unknown) => errorCode(e) === 'EEXIST');
  assert.deepEqual(await watch.next(), { value: undefined, done: true });
  client.close();
});

test('a slow watcher keeps at most `capacity` events and is told how many it lost', async () => {
  const store = new ScriptedStore((m, s) => s.reply(m));
  const client = new XsClient(store);
  const watch = client.watch('/w', 't', { capacity: 4 });
  await watch.ready;
  for (let i = 0; i < 10; i++) store.event(`/w/${i}`, 't');
  assert.equal(watch.queued, 4);
  const got = [];
  for (let i = 0; i < 5; i++) got.push((await watch.next()).value);
  assert.deepEqual(got.slice(0, 4).map((e) => e.path), ['/w/0', '/w/1', '/w/2', '/w/3']);
  assert.deepEqual(got[4], { path: '/w', token: 't', lost: 6 });
  watch.dispose();
  client.close();
});

test('losing the connection fails every pending request, ends watches, refuses new requests', async () => {
  const store = new ScriptedStore((m, s) => {
    if (m.type === XsOp.watch) s.reply(m); // everything else is left unanswered
  });
  const client = new XsClient(store, { maxInFlight: 2 });
  const watch = client.watch('/w', 't');
  await watch.ready;
  const pending = [client.read('/a'), client.read('/b'), client.write('/c', 'v'), client.directory('/d')];
  const results = Promise.allSettled(pending);
  store.hangUp(new Error('peer went away'));
  for (const r of await results) {
    assert.equal(r.status, 'rejected');
    assert.equal(errorCode((r as PromiseRejectedResult).reason), 'ECONNRESET');
  }
  await assert.rejects(watch.next(), (e: unknown) => errorCode(e) === 'ECONNRESET');
  await assert.rejects(client.read('/later'), (e: unknown) => errorCode(e) === 'ECONNRESET');
  assert.equal(errorCode(client.closedWith), 'ECONNRESET');
});

test('a reply nobody asked for is a protocol violation: the connection is dropped (EPROTO)', async () => {
  const store = new ScriptedStore((m, s) => s.send(XsOp.read, m.reqId + 1000, 0, strings(['x'])));
  const client = new XsClient(store);
  await assert.rejects(client.read('/a'), (e: unknown) => errorCode(e) === 'EPROTO');
  assert.ok(store.closed, 'the transport was closed');
});

test('an oversized frame from the daemon drops the connection (EPROTO)', async () => {
  const store = new ScriptedStore((m, s) => s.send(m.type, m.reqId, 0, new Uint8Array(5000)));
  const client = new XsClient(store);
  await assert.rejects(client.read('/a'), (e: unknown) => errorCode(e) === 'EPROTO');
});

test('requests over XENSTORE_PAYLOAD_MAX are refused locally with E2BIG, nothing sent', async () => {
  const store = new ScriptedStore((m, s) => s.reply(m));
  const client = new XsClient(store);
  await assert.rejects(client.write('/big', new Uint8Array(4096)), (e: unknown) => errorCode(e) === 'E2BIG');
  assert.equal(store.received.length, 0);
  await client.write('/fits', new Uint8Array(4096 - 6)); // "/fits\0" + 4090 = 4096
  client.close();
});

test('DIRECTORY with E2BIG falls back to DIRECTORY_PART and restarts when the generation moves', async () => {
  const names = Array.from({ length: 30 }, (_, i) => `child-${i}`);
  const all = strings(names);
  let generation = 5;
  let parts = 0;
  const store = new ScriptedStore((m, s) => {
    if (m.type === XsOp.directory) return s.replyError(m, 'E2BIG');
    const offset = Number(args(m)[1]);
    if (++parts === 2) generation++; // the directory changed between the first two parts
    // At most ~3 names per part, cut at a name boundary, the last part ends with an empty string.
    let end = offset;
    for (let k = 0; k < 3 && end < all.length; k++) end = all.indexOf(0, end) + 1;
    const chunk = all.subarray(offset, end);
    const tail = end >= all.length ? new Uint8Array(1) : new Uint8Array(0);
    s.reply(m, new Uint8Array([...strings([String(generation)]), ...chunk, ...tail]));
  });
  const client = new XsClient(store);
  assert.deepEqual(await client.directory('/big'), names);
  const offsets = store.received.filter((m) => m.type === XsOp.directoryPart).map((m) => Number(args(m)[1]));
  assert.equal(offsets[0], 0);
  assert.equal(offsets[2], 0, 'restarted from offset 0 after the generation changed');
  client.close();
});

test('domain and daemon operations: payloads and reply decoding', async () => {
  const store = new ScriptedStore((m, s) => {
    switch (m.type) {
      case XsOp.getDomainPath:
        return s.reply(m, strings([`/local/domain/${args(m)[0]}`]));
      case XsOp.isDomainIntroduced:
        return s.reply(m, strings([args(m)[0] === '3' ? 'T' : 'F']));
      case XsOp.getFeature:
        return s.reply(m, strings(['3']));
      case XsOp.getQuota:
        return s.reply(m, strings(['8192']));
      default:
        return s.reply(m);
    }
  });
  const client = new XsClient(store);
  assert.equal(await client.getDomainPath(3), '/local/domain/3');
  assert.equal(await client.isDomainIntroduced(3), true);
  assert.equal(await client.isDomainIntroduced(4), false);
  assert.equal(await client.getFeature(), 3);
  assert.equal(await client.getQuota('nodes', 7), '8192');
  await client.introduce(3, 0x1234, 9);
  await client.setTarget(4, 3);
  await client.setQuota('nodes', 100);
  const sent = store.received.map((m) => [m.type, text(m.payload)]);
  assert.deepEqual(sent.slice(-3), [
    [XsOp.introduce, '3\x004660\x009\0'],
    [XsOp.setTarget, '4\x003\0'],
    [XsOp.setQuota, 'nodes\x00100\0'],
  ]);
  client.close();
});

test('a watch disposed while its WATCH is in flight is unwatched once xenstored accepts it', async () => {
  const held: XsMessage[] = [];
  const store = new ScriptedStore((m, s) => (m.type === XsOp.watch ? held.push(m) : s.reply(m)));
  const client = new XsClient(store);
  const watch = client.watch('/slow', 't');
  watch.dispose();
  assert.equal(store.received.filter((m) => m.type === XsOp.unwatch).length, 0, 'nothing to unwatch yet');
  store.reply(held[0]!);
  await watch.ready;
  await new Promise((r) => setImmediate(r));
  const unwatch = store.received.filter((m) => m.type === XsOp.unwatch);
  assert.deepEqual(unwatch.map(args), [['/slow', 't']]);
  client.close();
});

test('several registrations feed one iterator in arrival order; a refused one unwatches only the accepted', async () => {
  const store = new ScriptedStore((m, s) => {
    if (m.type === XsOp.watch && args(m)[0] === '/refused') return s.replyError(m, 'ENOSPC');
    s.reply(m);
    if (m.type === XsOp.watch) s.event(args(m)[0]!, args(m)[1]!);
  });
  const client = new XsClient(store);
  const both = client.watchAll([{ path: '/a', token: 'x' }, { path: '/b', token: 'y' }]);
  await both.ready;
  store.event('/b/1', 'y');
  store.event('/a/1', 'x');
  const got = [];
  for (let i = 0; i < 4; i++) got.push((await both.next()).value.path);
  assert.deepEqual(got, ['/a', '/b', '/b/1', '/a/1']);
  both.dispose();
  const before = store.received.length;
  const bad = client.watchAll([{ path: '/c', token: 'c' }, { path: '/refused', token: 'r' }, { path: '/never', token: 'n' }]);
  await assert.rejects(bad.ready, (e: unknown) => errorCode(e) === 'ENOSPC');
  const after = store.received.slice(before).map((m) => [m.type, ...args(m)]);
  assert.deepEqual(after, [
    [XsOp.watch, '/c', 'c'],
    [XsOp.watch, '/refused', 'r'],
    [XsOp.unwatch, '/c', 'c'],
  ]);
  client.close();
});

test('hostile daemon bytes never throw out of the client: requests settle with XenpvErrors', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { maxLength: 12 }), fc.boolean(), async (chunks, header) => {
      const store = new ScriptedStore((m, s) => {
        // Sometimes a plausible header for the request first, then garbage.
        if (header) s.send(m.type, m.reqId, 0, new Uint8Array(0));
        for (const c of chunks) s.sendBytes(c);
      });
      const client = new XsClient(store);
      const settled = Promise.allSettled([client.read('/a'), client.directory('/b'), client.getPerms('/c')]);
      await new Promise((r) => setImmediate(r));
      client.close(); // whatever is still waiting (a half frame) settles now
      for (const r of await settled) {
        if (r.status === 'rejected') assert.equal((r.reason as Error).name, 'XenpvError', String(r.reason));
      }
    }),
    { numRuns: 200 },
  );
});
