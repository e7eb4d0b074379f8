import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dom0CpuSampler, threadIds } from './cpu.js';

// The main thread's id is the process id on Linux.
const unavailable = threadIds().includes(process.pid) ? false : 'no /proc/self/task (not Linux)';

/** Spin until this thread has spent `ms` more on a CPU (bounded in wall time). */
function work(sampler: Dom0CpuSampler, from: number, ms: number): void {
  const until = performance.now() + 5000;
  let x = 0;
  while ((sampler.between(from, performance.now()) ?? 0) < ms * 1e6 && performance.now() < until) for (let i = 0; i < 1e5; i++) x = (x + i) | 0;
  assert.ok(x !== 0.5);
}

test('cpu sampler: a window\'s busy share and sleeps are those of the sampled thread', { skip: unavailable }, () => {
  // The window's ends on samples, so that nothing is interpolated: t0 is read at or before the
  // sampler's first sample, t1 right after one (the next sample, taken by occupancy, adds none).
  const t0 = performance.now();
  const s = new Dom0CpuSampler([process.pid], true);
  try {
    work(s, t0, 3);
    // Five sleeps in the kernel, each a voluntary switch.
    for (let i = 0; i < 5; i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
    s.sample();
    const t1 = performance.now();
    const o = s.occupancy(t0, t1);
    assert.ok(o !== undefined);
    assert.ok(o.busyPercent > 0 && o.busyPercent <= 101, `busy ${o.busyPercent}`);
    assert.ok(o.runqWaitPercent >= 0, `runq ${o.runqWaitPercent}`);
    // At least the five sleeps over the window (one per wait), however busy the machine.
    assert.ok(o.sleepsPerS !== undefined && (o.sleepsPerS * (t1 - t0)) / 1000 >= 5 - 1e-6, `sleeps/s ${o.sleepsPerS} over ${t1 - t0} ms`);
  } finally {
    s.stop();
  }
});

test('cpu sampler: without counting sleeps it gives none, and a window before it began is not measured', { skip: unavailable }, () => {
  const s = new Dom0CpuSampler([process.pid]);
  try {
    const t0 = performance.now();
    work(s, t0, 1);
    const o = s.occupancy(t0, performance.now());
    assert.ok(o !== undefined && o.busyPercent > 0);
    assert.equal(o.sleepsPerS, undefined);
    assert.equal(s.occupancy(t0 - 10_000, t0), undefined);
  } finally {
    s.stop();
  }
});
