/**
 * `xenpv bench xenstore --quick --json` keeps working: one object in the DESIGN.md §6 shape,
 * every configuration the issue asks for present, the two comparisons under their names.
 * Nothing here is about speed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from './run.js';

const OPS = ['read', 'write', 'directory', 'txn'];

test('xenpv bench xenstore --quick --json: shape, configurations and comparison names', async () => {
  let printed = '';
  await runBench('xenstore', { quick: true, json: true, write: (t) => (printed += t) });
  const report = JSON.parse(printed) as Record<string, unknown>;
  assert.equal(report['suite'], 'xenstore');
  assert.equal(report['schema'], 1);
  assert.equal(report['quick'], true);
  assert.equal((report['machine'] as Record<string, unknown>)['node'], process.version);

  const results = report['results'] as Record<string, unknown>[];
  const byName = new Map(results.map((r) => [r['name'] as string, r]));
  const expected = ['xenstore.echo.roundtrips_per_s.1client', 'xenstore.echo.roundtrips_per_s.64clients'];
  for (const t of ['socket', 'ring']) {
    for (const op of OPS) for (const n of ['1client', '64clients']) expected.push(`xenstore.${t}.${op}_ops_per_s.${n}`);
  }
  expected.push('xenstore.daemon_heap_bytes_per_10k_nodes');
  expected.push(
    'xenstore.paired_ratio.read_1client_vs_echo',
    'xenstore.paired_ratio.read_64clients_vs_1client',
    'xenstore.paired_ratio.echo_64clients_vs_1client',
  );
  assert.deepEqual([...byName.keys()].sort(), expected.sort());
  for (const r of results) {
    const runs = r['runs'] as number[];
    assert.ok(Array.isArray(runs) && runs.length > 0, `${String(r['name'])} has runs`);
    // Every configuration completed operations (a broken path shows as 0 or NaN here).
    for (const v of runs) assert.ok(Number.isFinite(v) && v > 0, `${String(r['name'])}: run ${v}`);
    assert.ok((r['min'] as number) <= (r['median'] as number) && (r['median'] as number) <= (r['max'] as number));
  }
  assert.equal(byName.get('xenstore.socket.read_ops_per_s.1client')?.['unit'], 'ops/s');
  const mem = byName.get('xenstore.daemon_heap_bytes_per_10k_nodes')!;
  assert.equal(mem['unit'], 'bytes');
  assert.equal(mem['better'], 'lower');
  const memExtra = mem['extra'] as Record<string, number>;
  assert.equal(memExtra['nodes_created'], 10_101, '10,000 leaves, 100 directories and /mem');
  assert.ok(memExtra['accounted_bytes_per_10k_nodes']! > 0);
  const txn = byName.get('xenstore.ring.txn_ops_per_s.64clients')!;
  assert.equal(typeof (txn['extra'] as Record<string, number>)['retries_per_op'], 'number');

  const comparisons = report['comparisons'] as Record<string, unknown>[];
  assert.deepEqual(comparisons.map((c) => c['name']), [
    'xenstore.read_ops_per_s.1client.vs_echo',
    'xenstore.read_ops_per_s.64clients.vs_1client',
  ]);
  const [vsEcho, vsOne] = comparisons as Record<string, number | string>[];
  assert.equal(vsEcho!['value'], byName.get('xenstore.socket.read_ops_per_s.1client')!['median']);
  assert.equal(vsEcho!['baseline'], byName.get('xenstore.echo.roundtrips_per_s.1client')!['median']);
  assert.equal(vsOne!['value'], byName.get('xenstore.socket.read_ops_per_s.64clients')!['median']);
  assert.equal(vsOne!['baseline'], vsEcho!['value']);
  assert.deepEqual([vsEcho!['aim'], vsOne!['aim']], [0.6, 2]);
  for (const c of comparisons) {
    assert.equal(c['better'], 'higher');
    assert.ok(Math.abs((c['ratio'] as number) - (c['value'] as number) / (c['baseline'] as number)) < 1e-9);
  }
  assert.ok((report['notes'] as string[]).some((n) => n.startsWith('layout:')));
});
