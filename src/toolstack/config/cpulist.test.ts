import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCpuList, parseCpuList } from './cpulist.js';

test('cpulist: xl CPU lists, ranges, exclusions and all', () => {
  assert.deepEqual(parseCpuList('all', 4), [0, 1, 2, 3]);
  assert.deepEqual(parseCpuList('2', 4), [2]);
  assert.deepEqual(parseCpuList('0-3,^1', 4), [0, 2, 3]);
  assert.deepEqual(parseCpuList('all,^0', 4), [1, 2, 3]);
  assert.deepEqual(parseCpuList('3, 1', 4), [1, 3]);
  assert.deepEqual(parseCpuList('^2,2', 4), [2], 'items apply in order');
});

test('cpulist: what xl refuses, with the reason', () => {
  const bad: [string, RegExp][] = [
    ['4', /CPU 4 does not exist \(this host has CPUs 0-3\)/],
    ['1-9', /CPU 9 does not exist/],
    ['3-1', /runs backwards/],
    ['x', /is not a CPU/],
    ['1,,2', /empty item/],
    ['nodes:0', /NUMA node lists are not supported/],
    ['0,^0', /leaves no CPU/],
    ['', /empty item/],
  ];
  for (const [text, why] of bad) assert.throws(() => parseCpuList(text, 4), why, text);
});

test('cpulist: printed as xl prints affinity', () => {
  assert.equal(formatCpuList([0, 1, 2, 3], 4), 'all');
  assert.equal(formatCpuList([0, 1, 2, 5], 8), '0-2,5');
  assert.equal(formatCpuList([1], 2), '1');
});
