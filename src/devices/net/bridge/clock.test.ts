import { test } from 'node:test';
import assert from 'node:assert/strict';
import { taskClock } from './clock.js';

test('taskClock: one reading per task, a fresh one in the next task', async () => {
  const t0 = taskClock();
  const spin = performance.now() + 2;
  while (performance.now() < spin); // 2 ms pass inside this task
  assert.equal(taskClock(), t0, 'the same task sees the time it first read');
  await new Promise((r) => setImmediate(r));
  const t1 = taskClock();
  assert.ok(t1 >= t0 + 2, `read again after the task (${t1 - t0} ms later)`);
});
