/**
 * The benchmark harness keeps working: `ring` runs with --quick and its JSON has the shape of
 * DESIGN.md §6. Nothing here is about speed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodesEveryByte } from '../ring/index.js';
import { compare, median, summarize, toMarkdown, type BenchReport } from './harness.js';
import { benchCodec } from './ring-codec.js';
import { resolveSuites, runBench } from './run.js';

function assertResultShape(r: Record<string, unknown>): void {
  assert.equal(typeof r['name'], 'string');
  assert.equal(typeof r['unit'], 'string');
  assert.ok(r['better'] === 'higher' || r['better'] === 'lower');
  for (const k of ['median', 'min', 'max', 'spread']) assert.equal(typeof r[k], 'number', k);
  const runs = r['runs'] as number[];
  assert.ok(Array.isArray(runs) && runs.length > 0);
  assert.ok((r['min'] as number) <= (r['median'] as number) && (r['median'] as number) <= (r['max'] as number));
}

test('xenpv bench ring --quick --json prints one object in the DESIGN §6 shape', async () => {
  let printed = '';
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-bench-'));
  try {
    await runBench('ring', { quick: true, json: true, out: dir, write: (t) => (printed += t) });
    const report = JSON.parse(printed) as Record<string, unknown>;
    assert.equal(report['suite'], 'ring');
    assert.equal(report['schema'], 1);
    const machine = report['machine'] as Record<string, unknown>;
    assert.equal(typeof machine['cpu'], 'string');
    assert.ok(Number.isInteger(machine['cores']) && (machine['cores'] as number) > 0);
    assert.equal(machine['node'], process.version);
    assert.equal(typeof machine['os'], 'string');
    const results = report['results'] as Record<string, unknown>[];
    for (const r of results) assertResultShape(r);
    const names = results.map((r) => r['name']);
    for (const n of ['ring.requests_per_s', 'ring.raw_ring.requests_per_s', 'ring.evtchn_roundtrip_us', 'ring.raw_pingpong_roundtrip_us']) {
      assert.ok(names.includes(n), n);
    }
    const comparisons = report['comparisons'] as Record<string, unknown>[];
    assert.deepEqual(comparisons.map((c) => c['name']).sort(), [
      'ring.evtchn_roundtrip_us.vs_raw_pingpong',
      'ring.requests_per_s.vs_raw_ring',
    ]);
    for (const c of comparisons) {
      for (const k of ['value', 'baseline', 'ratio']) assert.ok(Number.isFinite(c[k]) && (c[k] as number) > 0, k);
      assert.ok(Math.abs((c['ratio'] as number) - (c['value'] as number) / (c['baseline'] as number)) < 1e-9);
      assert.equal(typeof c['unit'], 'string');
    }
    assert.equal(comparisons.find((c) => c['name'] === 'ring.evtchn_roundtrip_us.vs_raw_pingpong')?.['better'], 'lower');
    assert.equal(comparisons.find((c) => c['name'] === 'ring.requests_per_s.vs_raw_ring')?.['better'], 'higher');
    // --out wrote the same report and its Markdown form.
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'ring.json'), 'utf8')), report);
    const md = await readFile(join(dir, 'ring.md'), 'utf8');
    assert.match(md, /\| ring\.requests_per_s\.vs_raw_ring \|/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('suite names: all expands to every registered suite, unknown ones are refused', () => {
  assert.deepEqual(resolveSuites('ring'), ['ring']);
  assert.ok(resolveSuites('all').includes('ring'));
  assert.throws(() => resolveSuites('nosuch'), { code: 'EINVAL' });
});

test('summaries and comparisons: medians, spread, ratio', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  const a = summarize('a', 'ops/s', 'higher', [90, 100, 110], [{ k: 1 }, { k: 3 }, { k: 2 }]);
  assert.deepEqual([a.median, a.min, a.max, a.spread], [100, 90, 110, 0.2]);
  assert.equal(a.extra?.['k'], 2);
  const b = summarize('b', 'ops/s', 'higher', [200, 200, 200]);
  assert.deepEqual(compare('a.vs_b', a, b, 0.7), {
    name: 'a.vs_b',
    value: 100,
    baseline: 200,
    unit: 'ops/s',
    better: 'higher',
    ratio: 0.5,
    aim: 0.7,
  });
  assert.throws(() => compare('x', a, summarize('c', 'us', 'lower', [1])));
  const report: BenchReport = {
    suite: 's',
    schema: 1,
    machine: { cpu: 'c', cores: 1, node: 'v20', os: 'linux', memoryBytes: 1 },
    quick: true,
    startedAt: 't',
    elapsedMs: 1,
    results: [a, b],
    comparisons: [compare('a.vs_b', a, b)],
    notes: ['n'],
  };
  assert.match(toMarkdown(report), /\| a\.vs_b \| 100 \| 200 \| ops\/s \| higher \| 0\.500 \|/);
});

test('the benchmark codec writes every byte, as it claims (so skipping the zeroing is safe)', () => {
  assert.ok(benchCodec.encodesEveryByte);
  assert.ok(
    encodesEveryByte(
      benchCodec,
      [0, 1, 0xffffffff].map((id) => ({ id, check: 0 })),
      [{ id: 7, status: -1 }],
    ),
  );
});
