import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestartBudget } from './restart-budget.js';

test('restart budget: growing delays, a limit per window, and a fresh window later', () => {
  let now = 0;
  const b = new RestartBudget({ maxRestarts: 3, windowMs: 1000, firstDelayMs: 10, maxDelayMs: 25 }, () => now);
  const delays: (number | undefined)[] = [];
  for (const t of [0, 100, 200]) {
    now = t;
    delays.push(b.next());
  }
  assert.deepEqual(delays, [10, 20, 25], 'doubled, capped at maxDelayMs');
  now = 999;
  assert.equal(b.next(), undefined, 'a fourth death inside the window is not restarted');
  now = 1000;
  assert.equal(b.next(), 25, 'the first restart left the window: one slot again, its wait set by the two still in it (40, capped)');
  now = 5000;
  assert.equal(b.next(), 10, 'a quiet window starts over');
});

test('restart budget: maxRestarts 0 never restarts', () => {
  assert.equal(new RestartBudget({ maxRestarts: 0, windowMs: 1000, firstDelayMs: 1, maxDelayMs: 1 }).next(), undefined);
});
