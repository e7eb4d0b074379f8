/**
 * The haltpoll governor (haltpoll.ts) adjusts a vCPU's poll limit as Linux's does
 * (Documentation/virt/guest-halt-polling.rst): from 0 to grow_start, then × grow up to
 * guest_halt_poll_ns while idle periods end past the limit but within it; ÷ shrink once one
 * outlasts guest_halt_poll_ns, unless shrinking is off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HALTPOLL_DEFAULTS, HaltPollGovernor } from './haltpoll.js';

test('haltpoll: the limit starts at 0, grows from grow_start by grow to guest_halt_poll_ns, and holds while events come within it', () => {
  const g = new HaltPollGovernor();
  assert.equal(g.limitNs, 0);
  const limits: number[] = [];
  for (const blockNs of [10_000, 60_000, 150_000, 190_000, 199_000, 5_000]) {
    g.reflect(blockNs, false);
    limits.push(g.limitNs);
  }
  assert.deepEqual(limits, [50_000, 100_000, 200_000, 200_000, 200_000, 200_000]);
  g.reflect(30_000, true);
  assert.equal(g.limitNs, 200_000, 'an event within the limit changes nothing');
  assert.deepEqual([g.polled, g.halted], [1, 6]);
});

test('haltpoll: idle periods longer than guest_halt_poll_ns shrink the limit to 0; shrink 0 drops it at once; allow_shrink=n keeps it', () => {
  const g = new HaltPollGovernor();
  g.reflect(150_000, false); // 0 → 50 µs
  g.reflect(150_000, false); // → 100 µs
  const limits: number[] = [];
  for (let i = 0; i < 8; i++) {
    g.reflect(1_000_000_000, false);
    limits.push(g.limitNs);
  }
  assert.deepEqual(limits, [50_000, 25_000, 12_500, 6_250, 3_125, 1_562, 781, 390]);
  const drop = new HaltPollGovernor({ ...HALTPOLL_DEFAULTS, shrink: 0 });
  drop.reflect(100_000, false);
  drop.reflect(300_000, false);
  assert.equal(drop.limitNs, 0);
  const keep = new HaltPollGovernor({ ...HALTPOLL_DEFAULTS, allowShrink: false });
  keep.reflect(100_000, false);
  keep.reflect(5e9, false);
  assert.equal(keep.limitNs, 50_000);
});

test('haltpoll: grow 0 never starts polling; a small guest_halt_poll_ns caps grow_start', () => {
  const none = new HaltPollGovernor({ ...HALTPOLL_DEFAULTS, grow: 0 });
  none.reflect(10_000, false);
  assert.equal(none.limitNs, 0);
  const capped = new HaltPollGovernor({ ...HALTPOLL_DEFAULTS, maxNs: 20_000 });
  capped.reflect(10_000, false);
  assert.equal(capped.limitNs, 20_000);
  assert.match(capped.describe(), /state POLL usage 0, state HALT usage 1, poll limit 20000 ns/);
});
