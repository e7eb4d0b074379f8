import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedQueue } from './bounded-queue.js';

test('BoundedQueue refuses past capacity and keeps FIFO order across the wrap', () => {
  const q = new BoundedQueue<number>(3);
  assert.equal(q.push(1), true);
  assert.equal(q.push(2), true);
  assert.equal(q.push(3), true);
  assert.equal(q.push(4), false);
  assert.equal(q.shift(), 1);
  assert.equal(q.push(5), true);
  assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()], [2, 3, 5, undefined]);
  assert.equal(q.length, 0);
});
