/**
 * The FDB's last-hit entries (learn and lookup each remember the entry they found last): a
 * move, an expiry, a sweep and a port flush are seen by the next call, as without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fdb } from './fdb.js';
import { macKey } from './mac.js';

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

test('learnAt/lookupAt read the address from a frame: the same entries as learn/lookup, every byte compared', () => {
  const { fdb, advance } = setup(1000);
  // Two addresses that differ only in their first two bytes, and one whose third byte has its top bit set.
  const x = Uint8Array.of(0x00, 0x16, 0xfe, 0x00, 0x00, 0x01);
  const y = Uint8Array.of(0x02, 0x16, 0xfe, 0x00, 0x00, 0x01);
  const z = Uint8Array.of(0x00, 0x16, 0xfe, 0x00, 0x00, 0x81);
  const frame = new Uint8Array(12);
  frame.set(x, 6);
  fdb.learnAt(frame, 6, 'p1');
  assert.equal(fdb.lookup(macKey(x)), 'p1', 'the key learn() would have made');
  assert.equal(fdb.lookupAt(x, 0), 'p1');
  assert.equal(fdb.lookupAt(y, 0), undefined, 'high bytes differ');
  assert.equal(fdb.lookupAt(z, 0), undefined, 'last byte differs');
  assert.equal(fdb.lookupAt(x, 0), 'p1');
  fdb.learnAt(frame, 6, 'p2'); // the last-learned entry, moved
  assert.equal(fdb.moves, 1);
  assert.equal(fdb.lookupAt(x, 0), 'p2');
  fdb.learnAt(y, 0, 'p3');
  assert.equal(fdb.size, 2);
  assert.equal(fdb.lookupAt(y, 0), 'p3');
  assert.equal(fdb.lookupAt(x, 0), 'p2');
  advance(1000);
  assert.equal(fdb.lookupAt(x, 0), undefined, 'the last hit still ages out');
  assert.equal(fdb.lookup(macKey(x)), undefined);
});
