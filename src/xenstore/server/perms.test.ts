import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assertNoLeaks } from '../../base/index.js';
import { Xenstored } from './xenstored.js';
import { TestClient } from './test-support.js';

function setup() {
  const d = new Xenstored();
  return { d, dom0: new TestClient(d, 0), g1: new TestClient(d, 1), g2: new TestClient(d, 2) };
}

test('first entry = owner + default for others; later entries override', () => {
  const { d, dom0, g1, g2 } = setup();
  dom0.write('/p/x', 'v');
  assert.equal(dom0.setPerms('/p/x', 'n1,r2'), 'OK');
  assert.equal(g1.read('/p/x'), 'v', 'owner reads');
  assert.equal(g1.write('/p/x', 'w1'), 'OK', 'owner writes');
  assert.equal(g2.read('/p/x'), 'w1', 'r2 reads');
  assert.equal(g2.write('/p/x', 'no'), 'EACCES', 'r2 cannot write');
  const g3 = new TestClient(d, 3);
  assert.equal(g3.read('/p/x'), 'EACCES', 'default n');
  assert.equal(dom0.setPerms('/p/x', 'r1,w3'), 'OK');
  assert.equal(g3.write('/p/x', 'by3'), 'OK', 'w3 writes');
  assert.equal(g3.read('/p/x'), 'EACCES', 'w is write-only');
  assert.equal(g2.read('/p/x'), 'by3', 'default r');
  d.close();
});

test('missing nodes: ENOENT only if the nearest existing ancestor is readable, else EACCES', () => {
  const { d, dom0, g1 } = setup();
  dom0.write('/open/x', '');
  dom0.setPerms('/open', 'n0,r1');
  assert.equal(g1.read('/open/missing'), 'ENOENT');
  assert.equal(g1.read('/secret/missing'), 'EACCES', 'root is n0 to domain 1');
  assert.equal(g1.read('/open/x'), 'EACCES', 'x was created before the chmod with the root perms');
  d.close();
});

test('root node included in every check (XSA-353): a guest cannot rm or chmod /', () => {
  const { d, g1 } = setup();
  assert.equal(g1.rm('/'), 'EACCES');
  assert.equal(g1.setPerms('/', 'b1'), 'EACCES');
  assert.equal(g1.write('/x', 'y'), 'EACCES');
  assert.equal(g1.ls('/'), 'EACCES');
  d.close();
});

test('unprivileged creators own what they create; the owner cannot be changed by them (EPERM)', () => {
  const { d, dom0, g1, g2 } = setup();
  dom0.mkdir('/local/domain/1');
  dom0.setPerms('/local/domain/1', 'n1');
  assert.equal(g1.write('data/x', 'v'), 'OK', 'relative to the home');
  assert.equal(dom0.getPerms('/local/domain/1/data/x'), 'n1');
  dom0.setPerms('/local/domain/1', 'n0,b1');
  assert.equal(g1.write('/local/domain/1/y', '1'), 'OK');
  assert.equal(dom0.getPerms('/local/domain/1/y'), 'n1,b1', 'inherits the parent list, owner replaced by the creator');
  assert.equal(g1.setPerms('data/x', 'n2'), 'EPERM');
  assert.equal(g1.setPerms('data/x', 'n1,r2'), 'OK', 'same owner, new entries');
  assert.equal(g2.read('/local/domain/1/data/x'), 'v');
  assert.equal(dom0.setPerms('/local/domain/1/data/x', 'n2'), 'OK', 'dom0 may change the owner');
  assert.equal(g1.read('data/x'), 'EACCES');
  d.close();
});

test('SET_TARGET gives a stubdom the target domain\'s rights', () => {
  const { d, dom0 } = setup();
  dom0.request({ op: 'introduce', domid: 5, gfn: 1, port: 1 });
  dom0.request({ op: 'introduce', domid: 6, gfn: 2, port: 2 });
  dom0.write('/local/domain/5/x', 'v');
  dom0.setPerms('/local/domain/5/x', 'n5');
  const stub = new TestClient(d, 6);
  assert.equal(stub.read('/local/domain/5/x'), 'EACCES');
  assert.equal(dom0.request({ op: 'setTarget', domid: 6, target: 5 }).ok, true);
  assert.equal(stub.read('/local/domain/5/x'), 'v');
  assert.equal(stub.write('/local/domain/5/x', 'w'), 'OK');
  d.close();
});

test('a reused domid inherits nothing: entries for the old domain are ignored, its nodes are gone', () => {
  const { d, dom0 } = setup();
  dom0.request({ op: 'introduce', domid: 7, gfn: 1, port: 1 });
  dom0.write('/shared/x', 'secret');
  dom0.setPerms('/shared/x', 'n0,r7');
  dom0.write('/local/domain/7/own', 'o');
  dom0.setPerms('/local/domain/7/own', 'n7');
  const old7 = new TestClient(d, 7);
  assert.equal(old7.read('/shared/x'), 'secret');
  dom0.request({ op: 'release', domid: 7 });
  assert.equal(dom0.read('/local/domain/7/own'), 'ENOENT', 'nodes owned by the dead domain are deleted (XSA-419)');
  dom0.request({ op: 'introduce', domid: 7, gfn: 9, port: 1 });
  const new7 = new TestClient(d, 7);
  assert.equal(new7.read('/shared/x'), 'EACCES', 'the old r7 entry is not honoured (XSA-322)');
  assert.deepEqual(d.checkAccounting(), []);
  d.close();
});

test('SET_PERMS quota and validation', () => {
  const { d, dom0, g1 } = setup();
  dom0.mkdir('/local/domain/1');
  dom0.setPerms('/local/domain/1', 'n1');
  assert.equal(g1.setPerms('/local/domain/1', 'n1,r2,r3,r4,r5,r6'), 'ENOSPC', 'more than 5 perms');
  assert.equal(g1.setPerms('/local/domain/1', 'n1,r2,r3,r4,r5'), 'OK');
  assert.equal(dom0.setPerms('/local/domain/1', 'n1,r2,r3,r4,r5,r6'), 'OK', 'dom0 exempt');
  const never = new Xenstored({ domainExists: (id) => id < 100 });
  const c = new TestClient(never, 0);
  c.write('/z', '');
  assert.equal(c.setPerms('/z', 'n200'), 'ENOENT', 'owner domain does not exist');
  assert.equal(c.setPerms('/z', 'n0,r200'), 'OK', 'a missing domain is kept but ignored');
  never.close();
  d.close();
});

test('property: everything a guest observes is readable by it', () => {
  const paths = ['/a', '/a/b', '/a/b/c', '/d', '/d/e'];
  const perm = fc.constantFrom('n', 'r', 'w', 'b');
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...paths), perm, fc.constantFrom(0, 1, 2), perm), { maxLength: 8 }),
      (chmods) => {
        const d = new Xenstored();
        const dom0 = new TestClient(d, 0);
        for (const p of paths) dom0.write(p, `v${p}`);
        for (const [p, a, owner, b] of chmods) dom0.setPerms(p, `${a}${owner},${b}1`);
        const g = new TestClient(d, 1);
        for (const p of paths) {
          const node = d.db.store.get(p)!;
          const may = d.domains.accessFor({ domid: 1, privileged: false }, node).read;
          const got = g.read(p);
          assert.equal(got === `v${p}`, may, `${p}: ${got}`);
        }
        d.close();
      },
    ),
    { numRuns: 100 },
  );
  assertNoLeaks(['xs-connection', 'xs-transaction']);
});
