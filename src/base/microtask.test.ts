import { test } from 'node:test';
import assert from 'node:assert/strict';
import { microtask } from './microtask.js';

test('microtask: runs after the current job, in order with queueMicrotask and promise reactions', async () => {
  const order: string[] = [];
  microtask(() => order.push('a'));
  queueMicrotask(() => order.push('b'));
  void Promise.resolve().then(() => order.push('c'));
  microtask(() => {
    order.push('d');
    // Queued from a task: after everything queued before it.
    microtask(() => order.push('f'));
  });
  queueMicrotask(() => order.push('e'));
  order.push('sync');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['sync', 'a', 'b', 'c', 'd', 'e', 'f']);
});
