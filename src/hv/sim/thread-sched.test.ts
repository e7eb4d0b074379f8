import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSched, schedSince, threadSched } from './thread-sched.js';

const STATUS = 'Name:\tnode\nState:\tR (running)\nvoluntary_ctxt_switches:\t42\nnonvoluntary_ctxt_switches:\t7\n';

test('cpu: the scheduler account is read from schedstat and the status file', () => {
  assert.deepEqual(parseSched('748315 1200 9\n', STATUS), { cpuNs: 748315, runqNs: 1200, sleeps: 42, preempted: 7 });
});

test('cpu: an account with a field missing or not a count is no account', () => {
  assert.equal(parseSched('748315\n', STATUS), undefined);
  assert.equal(parseSched('x 1 1\n', STATUS), undefined);
  assert.equal(parseSched('-5 1 1\n', STATUS), undefined);
  assert.equal(parseSched('1 1 1\n', 'voluntary_ctxt_switches:\t3\n'), undefined);
  // One name is a suffix of the other: each must be matched whole.
  assert.equal(parseSched('1 1 1\n', 'nonvoluntary_ctxt_switches:\t3\n'), undefined);
});

const unavailable = threadSched() === undefined ? 'no /proc/thread-self (not Linux)' : false;

test('cpu: this thread\'s account grows with its work and its sleeps', { skip: unavailable }, () => {
  const from = threadSched();
  // Work until the CPU counter has moved 2 ms (bounded in wall time), then sleep in the kernel.
  const until = performance.now() + 5000;
  let x = 0;
  while ((threadSched()?.cpuNs ?? 0) - from!.cpuNs < 2e6 && performance.now() < until) for (let i = 0; i < 1e5; i++) x = (x + i) | 0;
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  const d = schedSince(from);
  assert.ok(d.cpuMs !== undefined && d.cpuMs >= 2, `cpuMs ${d.cpuMs} (${x})`);
  assert.ok(d.sleeps !== undefined && d.sleeps >= 1, `sleeps ${d.sleeps}`);
  assert.ok(d.runqMs !== undefined && d.runqMs >= 0);
  assert.ok(d.preempted !== undefined && d.preempted >= 0);
});

test('cpu: with no starting account there is nothing to report', () => {
  assert.deepEqual(schedSince(undefined), {});
});
