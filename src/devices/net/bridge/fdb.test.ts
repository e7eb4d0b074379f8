/**
 * The FDB's last-hit entries (learn and lookup each remember the entry they found last): a
 * move, an expiry, a sweep and a port flush are seen by the next call, as without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fdb } from './fdb.js';

const A = 0x00163e000001;
const B = 0x00163e000002;

function setup(ageingMs = 1000): { fdb: Fdb<string>; advance: (ms: number) => void } {
  let now = 0;
  const fdb = new Fdb<string>(() => now, ageingMs);
  return { fdb, advance: (ms) => void (now += ms) };
}

test('a station that moves is looked up on its new port, counted once', () => {
  const { fdb } = setup();
  fdb.learn(A, 'p1');
  fdb.learn(B, 'p2');
  assert.equal(fdb.lookup(A), 'p1');
  assert.equal(fdb.lookup(A), 'p1');
  fdb.learn(A, 'p3');
  assert.equal(fdb.lookup(A), 'p3');
  assert.equal(fdb.lookup(B), 'p2');
  assert.equal(fdb.moves, 1);
});

test('an entry found last still expires, and is learned afresh afterwards', () => {
  const { fdb, advance } = setup(1000);
  fdb.learn(A, 'p1');
  assert.equal(fdb.lookup(A), 'p1');
  advance(1000);
  assert.equal(fdb.lookup(A), undefined, 'aged out though it was the last hit');
  assert.equal(fdb.size, 0);
  fdb.learn(A, 'p2');
  assert.equal(fdb.lookup(A), 'p2');
  assert.equal(fdb.moves, 0, 'a new entry, not a move');
});

test('sweep and flushPort remove entries the last lookups had found', () => {
  const { fdb, advance } = setup(1000);
  fdb.learn(A, 'p1');
  assert.equal(fdb.lookup(A), 'p1');
  advance(1000);
  assert.equal(fdb.sweep(), 1);
  fdb.learn(B, 'p2');
  assert.equal(fdb.lookup(A), undefined);
  assert.equal(fdb.lookup(B), 'p2');
  fdb.flushPort('p2');
  assert.equal(fdb.lookup(B), undefined, 'flushed with its port');
  fdb.learn(B, 'p1');
  assert.equal(fdb.lookup(B), 'p1');
  assert.equal(fdb.size, 1);
});
