import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assertNoLeaks } from '../../base/index.js';
import { Xenstored } from './xenstored.js';
import { TestClient } from './test-support.js';

test('writes in a transaction are invisible outside until commit; abort has no effect', () => {
  const d = new Xenstored();
  const a = new TestClient(d);
  const b = new TestClient(d);
  a.write('/t/x', '1');
  const tx = a.start();
  assert.equal(a.write('/t/x', '2', tx), 'OK');
  assert.equal(a.write('/t/new/deep', 'n', tx), 'OK');
  assert.equal(a.read('/t/x', tx), '2', 'the transaction sees its own write');
  assert.deepEqual(a.ls('/t', tx), ['x', 'new']);
  assert.equal(b.read('/t/x'), '1');
  assert.equal(b.read('/t/new/deep'), 'ENOENT');
  assert.equal(a.end(tx, false), 'OK');
  assert.equal(b.read('/t/x'), '1');
  assert.equal(a.read('/t/x', tx), 'ENOENT', 'the id is gone after the end');
  const tx2 = a.start();
  a.write('/t/x', '3', tx2);
  a.write('/t/y', '4', tx2);
  assert.equal(a.end(tx2), 'OK');
  assert.equal(b.read('/t/x'), '3');
  assert.equal(b.read('/t/y'), '4');
  assert.deepEqual(d.checkAccounting(), []);
  d.close();
  assertNoLeaks(['xs-transaction', 'xs-connection']);
});

test('EAGAIN iff a node the transaction accessed changed meanwhile (transaction.c examples)', () => {
  const d = new Xenstored();
  const a = new TestClient(d);
  const b = new TestClient(d);
  a.write('/A', '1');
  a.write('/B', '2');
  // 1. read A, write B, no interference: OK
  let tx = a.start();
  a.read('/A', tx);
  a.write('/B', 'x', tx);
  assert.equal(a.end(tx), 'OK');
  // 2. conflicting write to A: EAGAIN, nothing applied
  tx = a.start();
  a.read('/A', tx);
  b.write('/A', 'other');
  a.write('/B', 'lost', tx);
  assert.equal(a.end(tx), 'EAGAIN');
  assert.equal(b.read('/B'), 'x');
  // 3. conflicting delete
  tx = a.start();
  a.read('/A', tx);
  b.rm('/A');
  a.write('/B', 'lost', tx);
  assert.equal(a.end(tx), 'EAGAIN');
  // a node that did not exist at first access and was created meanwhile
  tx = a.start();
  assert.equal(a.read('/A', tx), 'ENOENT');
  b.write('/A', 'again');
  assert.equal(a.end(tx), 'EAGAIN');
  // an unrelated write does not conflict
  tx = a.start();
  a.read('/B', tx);
  b.write('/unrelated', 'u');
  assert.equal(a.end(tx), 'OK');
  d.close();
});

test('nested start is EBUSY; transactions quota; a failed op inside a transaction leaves it intact', () => {
  const d = new Xenstored();
  const a = new TestClient(d);
  const tx = a.start();
  assert.equal(a.request({ op: 'transactionStart' }, tx).ok ? 'OK' : 'EBUSY', 'EBUSY');
  assert.equal(a.write('/ok', 'v', tx), 'OK');
  assert.equal(a.write('/bad/', 'v', tx), 'EINVAL');
  assert.equal(a.rm('/no/such', tx), 'ENOENT');
  assert.equal(a.end(tx), 'OK', 'errors of single requests do not fail the transaction');
  assert.equal(a.read('/ok'), 'v');
  d.close();

  const q = new Xenstored();
  const dom0 = new TestClient(q);
  dom0.mkdir('/local/domain/1');
  dom0.setPerms('/local/domain/1', 'n1');
  const g = new TestClient(q, 1);
  const ids = Array.from({ length: 10 }, () => g.start());
  assert.equal(new Set(ids).size, 10);
  assert.equal(g.request({ op: 'transactionStart' }).ok ? 'OK' : 'ENOSPC', 'ENOSPC');
  for (const id of ids) g.end(id, false);
  q.close();
});

test('transaction-nodes quota fails the transaction; commit then answers ENOMEM like C', () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d);
  dom0.mkdir('/local/domain/1');
  dom0.setPerms('/local/domain/1', 'n1');
  dom0.setPerms('/', 'r0');
  dom0.request({ op: 'setQuota', domid: 1, quota: 'transaction-nodes', value: 4 });
  const g = new TestClient(d, 1);
  const tx = g.start();
  for (let i = 0; i < 4; i++) g.read(`/local/domain/1/k${i}`, tx);
  assert.equal(g.read('/local/domain/1/k9', tx), 'ENOSPC');
  assert.equal(g.end(tx), 'ENOMEM');
  d.close();
});

// ---- model-based: interleaved clients against a sequential model --------------------------

type Action =
  | { kind: 'start' | 'commit' | 'abort'; client: number }
  | { kind: 'read' | 'rm' | 'mkdir'; client: number; path: string }
  | { kind: 'write'; client: number; path: string; value: string };

const PATHS = ['/t/a', '/t/a/b', '/t/c', '/t/c/d', '/t/e'];
const arbAction: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constantFrom('start' as const, 'commit' as const, 'abort' as const), client: fc.nat(2) }),
  fc.record({ kind: fc.constantFrom('read' as const, 'rm' as const, 'mkdir' as const), client: fc.nat(2), path: fc.constantFrom(...PATHS) }),
  fc.record({ kind: fc.constant('write' as const), client: fc.nat(2), path: fc.constantFrom(...PATHS), value: fc.constantFrom('x', 'y', 'z') }),
);

/** The sequential model: path → value, with xenstore's parent rules. */
class Model {
  nodes = new Map<string, string>([['/t', '']]);
  changes = 0;

  parent(p: string): string {
    return p.slice(0, p.lastIndexOf('/')) || '/';
  }

  apply(a: Action): string {
    if (a.kind === 'read') return this.nodes.get(a.path) ?? 'ENOENT';
    if (a.kind === 'write' || a.kind === 'mkdir') {
      if (a.kind === 'mkdir' && this.nodes.has(a.path)) return 'OK';
      for (let p = this.parent(a.path); !this.nodes.has(p); p = this.parent(p)) this.nodes.set(p, '');
      this.nodes.set(a.path, a.kind === 'write' ? a.value : '');
      this.changes++;
      return 'OK';
    }
    if (a.kind === 'rm') {
      if (!this.nodes.has(a.path)) return this.nodes.has(this.parent(a.path)) ? 'OK' : 'ENOENT';
      for (const k of [...this.nodes.keys()]) if (k === a.path || k.startsWith(`${a.path}/`)) this.nodes.delete(k);
      this.changes++;
      return 'OK';
    }
    throw new Error(a.kind);
  }
}

function daemonOp(c: TestClient, a: Action, tx: number): string {
  switch (a.kind) {
    case 'read':
      return c.read(a.path, tx);
    case 'write':
      return c.write(a.path, a.value, tx);
    case 'mkdir':
      return c.mkdir(a.path, tx);
    case 'rm':
      return c.rm(a.path, tx);
    default:
      throw new Error(a.kind);
  }
}

function daemonTree(c: TestClient): Map<string, string> {
  const out = new Map<string, string>();
  const stack = ['/t'];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.set(p, c.read(p));
    const kids = c.ls(p);
    if (Array.isArray(kids)) for (const k of kids) stack.push(`${p}/${k}`);
  }
  return out;
}

test('model: interleaved transactions are serializable at their commit point', () => {
  fc.assert(
    fc.property(fc.array(arbAction, { minLength: 1, maxLength: 40 }), (actions) => {
      const d = new Xenstored();
      const clients = [0, 1, 2].map(() => new TestClient(d));
      clients[0]!.mkdir('/t');
      const model = new Model();
      const open = new Map<number, { id: number; log: [Action, string][]; startChanges: number }>();
      for (const a of actions) {
        const c = clients[a.client]!;
        const tx = open.get(a.client);
        if (a.kind === 'start') {
          if (tx === undefined) open.set(a.client, { id: c.start(), log: [], startChanges: model.changes });
        } else if (a.kind === 'commit' || a.kind === 'abort') {
          if (tx === undefined) continue;
          open.delete(a.client);
          const res = c.end(tx.id, a.kind === 'commit');
          if (a.kind === 'abort') assert.equal(res, 'OK');
          else if (res === 'EAGAIN') assert.ok(model.changes > tx.startChanges, 'EAGAIN without any intervening change');
          else {
            assert.equal(res, 'OK');
            // Serializable: replayed now, the transaction sees exactly what it saw.
            for (const [op, seen] of tx.log) assert.equal(model.apply(op), seen, `replay of ${JSON.stringify(op)}`);
          }
        } else if (tx !== undefined) {
          tx.log.push([a, daemonOp(c, a, tx.id)]);
        } else {
          assert.equal(daemonOp(c, a, 0), model.apply(a), JSON.stringify(a));
        }
        assert.deepEqual(daemonTree(clients[0]!), model.nodes);
        assert.deepEqual(d.checkAccounting(), []);
        assert.equal(d.stats.internalErrors, 0);
      }
      d.close();
    }),
    { numRuns: 150 },
  );
  assertNoLeaks(['xs-transaction', 'xs-connection']);
});
