import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xorshift32, xorshiftBelow } from './xorshift.js';

test('xorshift32: Marsaglia\'s 13/17/5 stream (from 1: 270369 first), u32s, seeded, seed 0 not stuck', () => {
  const r = xorshift32(1);
  assert.equal(r(), 270369);
  const a = xorshift32(7);
  const b = xorshift32(7);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const v = a();
    assert.equal(v, b(), 'same seed, same stream');
    assert.ok(Number.isInteger(v) && v > 0 && v <= 0xffffffff);
    seen.add(v);
  }
  assert.equal(seen.size, 1000, 'no repeats this early');
  const z = xorshift32(0);
  assert.notEqual(z(), 0);
});

test('xorshiftBelow: the same stream, each number below n', () => {
  const a = xorshift32(7);
  const b = xorshiftBelow(7);
  for (const n of [1, 2, 10, 1000]) assert.equal(b(n), a() % n);
});
