import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Xenstored } from './xenstored.js';
import { makeLimits } from './limits.js';
import { TestClient } from './test-support.js';

function guestStore(limits = makeLimits()) {
  const d = new Xenstored({ limits });
  const dom0 = new TestClient(d);
  for (const id of [1, 2]) {
    dom0.mkdir(`/local/domain/${id}`);
    dom0.setPerms(`/local/domain/${id}`, `n${id}`);
  }
  return { d, dom0, g1: new TestClient(d, 1), g2: new TestClient(d, 2) };
}

test('nodes quota: ENOSPC at the limit, nothing half-created, dom0 exempt', () => {
  const { d, dom0, g1 } = guestStore(makeLimits({ nodes: 5 }));
  assert.equal(d.db.usageOf(1).nodes, 1);
  assert.equal(g1.write('a/b/c', 'v'), 'OK');
  assert.equal(d.db.usageOf(1).nodes, 4);
  assert.equal(g1.write('x/y', 'v'), 'ENOSPC', 'needs 2, has room for 1');
  assert.equal(g1.read('x'), 'ENOENT', 'the failed write left nothing behind');
  assert.equal(d.db.usageOf(1).nodes, 4);
  assert.equal(g1.write('x', 'v'), 'OK');
  assert.equal(g1.write('y', 'v'), 'ENOSPC');
  assert.equal(g1.write('a/b/c', 'rewrite'), 'OK', 'rewriting needs no new node');
  for (let i = 0; i < 20; i++) assert.equal(dom0.write(`/d0/n${i}`, ''), 'OK');
  assert.equal(g1.rm('a'), 'OK', 'removal never fails on quota');
  assert.equal(d.db.usageOf(1).nodes, 2);
  assert.deepEqual(d.checkAccounting(), []);
  d.close();
});

test('node-size quota counts value, perms and child names', () => {
  const { d, g1 } = guestStore(makeLimits({ nodeSize: 100 }));
  assert.equal(g1.write('v', 'x'.repeat(60)), 'OK');
  assert.equal(g1.write('v', 'x'.repeat(100)), 'ENOSPC');
  assert.equal(g1.read('v'), 'x'.repeat(60));
  // 16 header + 8 per perm + child names: a directory stops growing before 100 bytes.
  let made = 0;
  while (g1.write(`dir/child-${made}`, '') === 'OK') made++;
  assert.ok(made > 3 && made < 10, `made ${made}`);
  assert.deepEqual(d.checkAccounting(), []);
  d.close();
});

test('watches quota and memory quota', () => {
  const { d, g1 } = guestStore(makeLimits({ watches: 3, memory: 1500 }));
  for (let i = 0; i < 3; i++) assert.equal(g1.watch(`w${i}`, 't'), 'OK');
  assert.equal(g1.watch('w9', 't'), 'ENOSPC');
  assert.equal(g1.watch('w0', 't'), 'EEXIST');
  let n = 0;
  while (g1.write(`m${n}`, 'x'.repeat(200)) === 'OK') n++;
  assert.ok(d.memoryOf(1) <= 1500, `memory ${d.memoryOf(1)}`);
  assert.equal(g1.write(`m${n}`, 'x'.repeat(200)), 'ENOSPC');
  assert.deepEqual(d.checkAccounting(), []);
  d.close();
});

test('per-domain SET_QUOTA applies to that domain only, and a released domain forgets it', () => {
  const { d, dom0, g1, g2 } = guestStore();
  dom0.request({ op: 'setQuota', domid: 1, quota: 'nodes', value: 2 });
  assert.equal(g1.write('a', ''), 'OK');
  assert.equal(g1.write('b', ''), 'ENOSPC');
  assert.equal(g2.write('a', ''), 'OK');
  assert.equal(g2.write('b', ''), 'OK');
  dom0.request({ op: 'introduce', domid: 1, gfn: 1, port: 1 });
  dom0.request({ op: 'release', domid: 1 });
  assert.equal(d.quota(1, 'nodes'), 1000);
  d.close();
});

test('the write rate limit pauses a flooding guest, not dom0', async () => {
  const now = 5_000_000; // a frozen clock: no credit refills while the test writes
  const d = new Xenstored({ now: () => now, limits: makeLimits({ writeRate: 50, writeBurst: 5 }) });
  const dom0 = new TestClient(d);
  dom0.mkdir('/local/domain/1');
  dom0.setPerms('/local/domain/1', 'n1');
  const g1 = new TestClient(d, 1);
  for (let i = 0; i < 5; i++) g1.write(`k${i}`, 'v');
  assert.equal(g1.conn.isInputPaused, false);
  g1.write('k5', 'v');
  assert.equal(g1.conn.isInputPaused, true, 'credit exhausted');
  for (let i = 0; i < 50; i++) dom0.write(`/x${i}`, 'v');
  assert.equal(dom0.conn.isInputPaused, false);
  await new Promise((r) => setTimeout(r, 60)); // 1 write at 50/s: resumes after 20 ms
  assert.equal(g1.conn.isInputPaused, false, 'credit refilled');
  d.close();
});

type Cmd = { who: 0 | 1 | 2; op: 'write' | 'mkdir' | 'rm' | 'chmod' | 'watch' | 'unwatch' | 'txwrite'; path: string; arg: number };

test('property: accounting recomputed from the tree equals the counters after every command', () => {
  const paths = ['a', 'a/b', 'a/b/c', 'd', '/local/domain/1/x', '/local/domain/2/y', '/shared', '/shared/z'];
  const cmd: fc.Arbitrary<Cmd> = fc.record({
    who: fc.constantFrom(0 as const, 1 as const, 2 as const),
    op: fc.constantFrom('write' as const, 'mkdir' as const, 'rm' as const, 'chmod' as const, 'watch' as const, 'unwatch' as const, 'txwrite' as const),
    path: fc.constantFrom(...paths),
    arg: fc.nat(400),
  });
  fc.assert(
    fc.property(fc.array(cmd, { maxLength: 40 }), (cmds) => {
      const { d, dom0, g1, g2 } = guestStore(makeLimits({ nodes: 6, nodeSize: 300, memory: 2000, watches: 2 }));
      dom0.write('/shared', '');
      dom0.setPerms('/shared', 'n0,b1,b2');
      const who = [dom0, g1, g2];
      // dom0 is exempt from quotas, and a node it creates under a guest's home inherits the
      // guest as owner (as in C xenstored), so once dom0 has created there the guest's count
      // may pass its quota without any guest request having been let through.
      const chargedByDom0 = new Set<number>();
      for (const c of cmds) {
        const cl = who[c.who]!;
        const home = /^\/local\/domain\/([12])\//.exec(c.path);
        if (c.who === 0 && home !== null && c.op !== 'rm') chargedByDom0.add(Number(home[1]));
        if (c.op === 'write') cl.write(c.path, 'v'.repeat(c.arg));
        else if (c.op === 'mkdir') cl.mkdir(c.path);
        else if (c.op === 'rm') cl.rm(c.path);
        else if (c.op === 'chmod') cl.setPerms(c.path, `n${c.who},r${c.arg % 3}`);
        else if (c.op === 'watch') cl.watch(c.path, `t${c.arg % 3}`);
        else if (c.op === 'unwatch') cl.request({ op: 'unwatch', path: c.path, token: `t${c.arg % 3}` });
        else {
          const tx = cl.start();
          cl.write(c.path, 'v'.repeat(c.arg), tx);
          cl.write(`${c.path}-2`, 'w', tx);
          cl.end(tx, c.arg % 2 === 0);
        }
        assert.deepEqual(d.checkAccounting(), [], JSON.stringify(c));
        assert.equal(d.stats.internalErrors, 0);
        for (const id of [1, 2]) {
          if (chargedByDom0.has(id)) continue;
          assert.ok(d.db.usageOf(id).nodes <= 6, `d${id} nodes ${d.db.usageOf(id).nodes}`);
          assert.ok(d.memoryOf(id) <= 2000, `d${id} memory ${d.memoryOf(id)}`);
        }
      }
      d.close();
    }),
    { numRuns: 150 },
  );
});
