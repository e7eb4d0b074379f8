import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKernelCmdline } from './cmdline.js';
import { HALTPOLL_DEFAULTS } from './haltpoll.js';

test('cmdline: xen_blkfront parameters go to the kernel, the other words to the program', () => {
  const c = parseKernelCmdline('rw=write  xen_blkfront.max_indirect_segments=256 bs=1M xen_blkfront.max_ring_page_order=2 xen_blkfront.max_queues=2 xen_blkfront.feature_persistent=n');
  assert.deepEqual(c.blkfront, { maxIndirectSegments: 256, maxRingPageOrder: 2, maxQueues: 2, persistent: false });
  assert.deepEqual(c.argv, ['rw=write', 'bs=1M']);
  assert.equal(c.args, 'rw=write bs=1M');
  assert.deepEqual(c.warnings, []);
});

test('cmdline: without kernel parameters the program gets extra exactly as given', () => {
  const c = parseKernelCmdline('  hello   world ');
  assert.equal(c.args, '  hello   world ');
  assert.deepEqual(c.argv, ['hello', 'world']);
  assert.deepEqual(c.blkfront, {});
});

test('cmdline: fewer indirect segments than a plain request carries means no indirect requests (Linux since 4.10)', () => {
  assert.equal(parseKernelCmdline('xen_blkfront.max_indirect_segments=10').blkfront.maxIndirectSegments, 0);
  assert.equal(parseKernelCmdline('xen_blkfront.max_indirect_segments=11').blkfront.maxIndirectSegments, 11);
  assert.equal(parseKernelCmdline('xen_blkfront.feature_persistent').blkfront.persistent, true);
});

test('cmdline: a bad parameter is reported and ignored, the default staying; the program never sees it', () => {
  const bad = [
    'xen_blkfront.max_indirect_segments=99999',
    'xen_blkfront.max_indirect_segments=-1',
    'xen_blkfront.max_indirect_segments=0x20',
    'xen_blkfront.max_indirect_segments=',
    'xen_blkfront.max_ring_page_order=5',
    'xen_blkfront.max_queues=0',
    'xen_blkfront.feature_persistent=maybe',
    'xen_blkfront.no_such_thing=1',
    'xen_blkfront.max_queues',
  ];
  const c = parseKernelCmdline(`run ${bad.join(' ')}`);
  assert.deepEqual(c.blkfront, {});
  assert.deepEqual(c.argv, ['run']);
  assert.equal(c.warnings.length, bad.length);
  bad.forEach((w, i) => assert.match(c.warnings[i]!, new RegExp(`ignoring '${w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'`)));
  assert.match(c.warnings[0]!, /99999 is not from 0 to 4096/);
  assert.match(c.warnings[7]!, /unknown parameter/);
});

test('cmdline: cpuidle_haltpoll.force=1 turns halt polling on with Linux defaults; haltpoll.* parameters tune it', () => {
  assert.equal(parseKernelCmdline('rw=read').haltpoll, undefined, 'off by default');
  assert.deepEqual(parseKernelCmdline('cpuidle_haltpoll.force=1 rw=read').haltpoll, HALTPOLL_DEFAULTS);
  const c = parseKernelCmdline(
    'cpuidle_haltpoll.force haltpoll.guest_halt_poll_ns=400000 haltpoll.guest_halt_poll_grow=4 haltpoll.guest_halt_poll_shrink=0 haltpoll.guest_halt_poll_grow_start=10000 haltpoll.guest_halt_poll_allow_shrink=N run',
  );
  assert.deepEqual(c.haltpoll, { maxNs: 400_000, grow: 4, shrink: 0, growStartNs: 10_000, allowShrink: false });
  assert.deepEqual(c.argv, ['run']);
  assert.deepEqual(c.warnings, []);
});

test('cmdline: haltpoll parameters without force are reported (polling stays off); bad ones are ignored', () => {
  const alone = parseKernelCmdline('haltpoll.guest_halt_poll_ns=1000');
  assert.equal(alone.haltpoll, undefined);
  assert.match(alone.warnings.join('\n'), /without cpuidle_haltpoll\.force=1: halt polling stays off/);
  const bad = ['haltpoll.constructor=1', 'haltpoll.guest_halt_poll_ns=200000000', 'haltpoll.guest_halt_poll_grow=x', 'cpuidle_haltpoll.force=maybe', 'cpuidle_haltpoll.other=1'];
  const c = parseKernelCmdline(`cpuidle_haltpoll.force=y ${bad.join(' ')}`);
  assert.deepEqual(c.haltpoll, HALTPOLL_DEFAULTS);
  assert.deepEqual(
    c.warnings.map((w) => w.slice(0, w.indexOf(':'))),
    ['haltpoll', 'haltpoll', 'haltpoll', 'cpuidle_haltpoll', 'cpuidle_haltpoll'],
  );
  assert.match(c.warnings[0]!, /unknown parameter/);
  assert.match(c.warnings[1]!, /200000000 is not from 0 to 100000000/);
});
