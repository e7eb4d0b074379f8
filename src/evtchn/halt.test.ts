/**
 * The halt (halt.ts): its arming rule, that it never holds up this thread's own queued work,
 * and the delivery loop the listener runs, on a plain shared wake word that a worker raises
 * events on: while events stream it halts and catches them, yet timers and MessagePort
 * messages still get through; once they stop it falls back to waitAsync and is not woken;
 * a stopped loop's halt ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { MessageChannel, Worker } from 'node:worker_threads';
import { deliverLoop, Halt } from './halt.js';
import type { StreamJob } from './halt-test-worker.js';

const shared = (n: number): Int32Array => new Int32Array(new SharedArrayBuffer(4 * n));

/** Block this thread for `ms` (a sleep the halt's clock sees as long). */
const blockFor = (ms: number): void => void Atomics.wait(shared(1), 0, 0, ms);

async function until(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/** A worker raising an event on words[0] every `intervalMs`. */
async function stream(words: Int32Array, intervalMs: number): Promise<{ stop(): Promise<void>; raised(): number }> {
  const ctrl = shared(2);
  const job: StreamJob = { words, index: 0, ctrl, intervalMs };
  const w = new Worker(new URL('./halt-test-worker.js', import.meta.url), { workerData: job });
  await once(w, 'message');
  return {
    raised: () => Atomics.load(ctrl, 1),
    stop: async () => {
      Atomics.store(ctrl, 0, 1);
      Atomics.notify(ctrl, 0);
      await once(w, 'exit');
    },
  };
}

/** The listener's delivery loop on words[0], counting deliveries. */
function loop(words: Int32Array, halt: Halt): { done: Promise<void>; stop(): void; delivered(): number } {
  let on = true;
  let delivered = 0;
  const done = deliverLoop(words, 0, { deliver: () => void delivered++, wanted: () => on, waiting: () => undefined, halt });
  return {
    done,
    delivered: () => delivered,
    stop: () => {
      on = false;
      Atomics.notify(words, 0);
    },
  };
}

test('arming: ARM_AFTER short sleeps in a row; a long one starts the count again', () => {
  const h = new Halt(1, 3);
  for (let i = 0; i < 2; i++) {
    h.sleeping();
    h.woke();
  }
  assert.equal(h.armed, false);
  h.sleeping();
  blockFor(5);
  h.woke();
  h.sleeping();
  h.woke();
  assert.equal(h.armed, false, 'the long sleep reset the count');
  for (let i = 0; i < 2; i++) {
    h.sleeping();
    h.woke();
  }
  assert.equal(h.armed, true);
});

test('a halt ends at once if the word moved, runs out (and disarms) if nothing comes', async () => {
  const words = shared(1);
  const h = new Halt(5, 1);
  h.sleeping();
  h.woke();
  Atomics.add(words, 0, 1);
  assert.equal(await h.halt(words, 0, 0, () => true), true);
  assert.deepEqual([h.hits, h.misses, h.armed], [1, 0, true]);
  const t0 = performance.now();
  assert.equal(await h.halt(words, 0, 1, () => true), false);
  assert.ok(performance.now() - t0 >= 4, 'it blocked for its time');
  assert.deepEqual([h.hits, h.misses, h.armed], [1, 1, false]);
});

test("a halt does not block while this thread's own work is queued, nor once unwanted", async () => {
  const words = shared(1);
  const h = new Halt(200, 1);
  const t0 = performance.now();
  const p = h.halt(words, 0, 0, () => true);
  let ran = false;
  setImmediate(() => (ran = true)); // queued after the halt's own turn
  assert.equal(await p, true);
  assert.equal(await h.halt(words, 0, 0, () => false), true);
  assert.ok(performance.now() - t0 < 150, `returned without blocking (${(performance.now() - t0).toFixed(1)} ms)`);
  assert.deepEqual([h.hits, h.misses], [0, 0]);
  assert.equal(ran, true);
});

test('while events stream the loop halts, and timers and MessagePort messages still get through', async () => {
  const words = shared(1);
  const h = new Halt();
  const l = loop(words, h);
  const s = await stream(words, 0.2);
  try {
    assert.ok(await until(() => h.hits >= 200), `halts caught events (hits ${h.hits}, misses ${h.misses})`);
    // Without the event-loop turn before each halt, a timer or a message would only get in
    // once a halt ran out and disarmed it (the loop then sleeps in waitAsync a while): none of
    // them would find the halt armed.
    let armedSeen = 0;
    const h0 = h.hits;
    for (let i = 0; i < 10; i++) {
      await sleep(1);
      if (h.armed) armedSeen++;
    }
    const { port1, port2 } = new MessageChannel();
    for (let i = 0; i < 10; i++) {
      const got = once(port2, 'message');
      port1.postMessage(i);
      await got;
      if (h.armed) armedSeen++;
    }
    port1.close();
    assert.ok(h.hits > h0, 'still halting meanwhile');
    assert.ok(armedSeen >= 10, `timers and messages came in between halts (${armedSeen} of 20 with the halt armed)`);
  } finally {
    await s.stop();
    l.stop();
    await l.done;
  }
});

test('once events stop, the loop falls back to waitAsync and is not woken; an event still gets in', async () => {
  const words = shared(1);
  const h = new Halt();
  const l = loop(words, h);
  const s = await stream(words, 0.2);
  try {
    assert.ok(await until(() => h.hits >= 50), `halts caught events (hits ${h.hits})`);
  } finally {
    await s.stop();
  }
  await sleep(20);
  assert.equal(h.armed, false, 'the halt that ran out disarmed it');
  const [d0, h0, m0] = [l.delivered(), h.hits, h.misses];
  await sleep(100);
  assert.deepEqual([l.delivered(), h.hits, h.misses], [d0, h0, m0], 'idle: no wake-ups, no halts');
  Atomics.add(words, 0, 1);
  Atomics.notify(words, 0);
  assert.ok(await until(() => l.delivered() > d0, 1000), 'an event after the idle time is delivered');
  l.stop();
  await l.done;
});

test("a stopped loop's halt ends, and it delivers nothing more", async () => {
  const words = shared(1);
  const h = new Halt();
  const l = loop(words, h);
  const s = await stream(words, 0.2);
  try {
    assert.ok(await until(() => h.hits >= 50), `halts caught events (hits ${h.hits})`);
    l.stop();
    const ended = await Promise.race([l.done.then(() => true), sleep(500).then(() => false)]);
    assert.equal(ended, true, 'the loop ended while events kept coming');
    const d = l.delivered();
    const r = s.raised();
    assert.ok(await until(() => s.raised() > r + 20), 'events still raised');
    assert.equal(l.delivered(), d);
  } finally {
    await s.stop();
  }
});

test('XENPV_HALT=0 turns the halt off, read when the module loads', async () => {
  const url = new URL('./halt.js', import.meta.url).href;
  const code = `import(${JSON.stringify(url)}).then((m) => require('node:worker_threads').parentPort.postMessage(m.HALT_ENABLED))`;
  const on = async (env: Record<string, string>): Promise<unknown> => {
    const w = new Worker(code, { eval: true, env });
    const [v] = (await once(w, 'message')) as [unknown];
    await once(w, 'exit');
    return v;
  };
  assert.equal(await on({ XENPV_HALT: '0' }), false);
  assert.equal(await on({ XENPV_HALT: '1' }), true);
});
