import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BurstClock } from './burst-clock.js';

test('burst clock: one reading per burst, a new one after the burst\'s microtasks', async () => {
  let t = 0;
  const reads: number[] = [];
  const clock = new BurstClock(() => {
    reads.push(++t);
    return t * 10;
  });
  let inBurst = 0;
  // Queued before the burst's first reading: it runs before the burst ends.
  queueMicrotask(() => (inBurst = clock.now()));
  assert.equal(clock.now(), 10);
  assert.equal(clock.now(), 10);
  await new Promise((r) => setImmediate(r));
  assert.equal(inBurst, 10, 'a microtask queued earlier in the burst shares its reading');
  assert.equal(clock.now(), 20, 'the next burst reads again');
  assert.equal(clock.now(), 20);
  assert.deepEqual(reads, [1, 2]);
});
