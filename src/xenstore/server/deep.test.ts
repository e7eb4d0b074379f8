import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Xenstored } from './xenstored.js';
import { JournalPersistence } from './persist.js';
import { TestClient } from './test-support.js';

const LEVELS = 1000;

test('a 1000-level deep path: write, read, directory, watch, snapshot, restore, rm (no recursion)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xs-deep-'));
  const state = join(dir, 'state');
  const d = new Xenstored();
  JournalPersistence.open(state, d);
  const c = new TestClient(d);
  const deep = '/d' + '/a'.repeat(LEVELS - 1);
  assert.equal(c.write(deep, 'bottom'), 'OK');
  assert.equal(c.read(deep), 'bottom');
  assert.deepEqual(c.ls(deep.slice(0, -2)), ['a']);
  assert.equal(d.db.usageOf(0).nodes, 5 + LEVELS);
  d.close(); // closes the journal after a final sync

  const d2 = new Xenstored();
  JournalPersistence.open(state, d2); // replays the journal and compacts the deep tree to a snapshot
  const c2 = new TestClient(d2);
  assert.equal(c2.read(deep), 'bottom', 'restored');
  c2.watch(deep, 'w');
  c2.drainEvents();
  const tx = c2.start();
  assert.equal(c2.rm('/d', tx), 'OK');
  assert.equal(c2.read(deep, tx), 'ENOENT');
  assert.equal(c2.read(deep), 'bottom', 'still there outside the transaction');
  assert.equal(c2.end(tx), 'OK');
  assert.equal(c2.read('/d'), 'ENOENT');
  assert.deepEqual(c2.drainEvents(), [[deep, 'w']]);
  assert.equal(d2.db.usageOf(0).nodes, 5);
  assert.deepEqual(d2.checkAccounting(), []);
  d2.close();

  const d3 = new Xenstored();
  JournalPersistence.open(state, d3);
  assert.equal(new TestClient(d3).read('/d'), 'ENOENT', 'the removal was persisted too');
  d3.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a guest can build a deep relative path within path-max and remove it', () => {
  const d = new Xenstored();
  const dom0 = new TestClient(d);
  dom0.mkdir('/local/domain/1');
  dom0.setPerms('/local/domain/1', 'n1');
  dom0.request({ op: 'setQuota', domid: 1, quota: 'nodes', value: 2000 });
  const g = new TestClient(d, 1);
  const rel = Array.from({ length: LEVELS }, () => 'b').join('/');
  assert.equal(rel.length, 1999);
  assert.equal(g.write(rel, 'x'), 'OK');
  assert.equal(g.write(`${rel}/${'c'.repeat(60)}`, 'x'), 'EINVAL', 'past path-max 2048');
  assert.equal(g.rm('b'), 'OK');
  assert.equal(d.db.usageOf(1).nodes, 1);
  d.close();
});
