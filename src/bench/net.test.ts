/** `xenpv bench net --quick` keeps working and reports the comparisons issue 5 names. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from './run.js';

test('xenpv bench net --quick --json: the issue 5 comparisons, finite figures, nothing lost', async () => {
  let printed = '';
  await runBench('net', { quick: true, json: true, write: (t) => (printed += t) });
  const report = JSON.parse(printed) as { suite: string; results: { name: string; median: number; extra?: Record<string, number> }[]; comparisons: { name: string; ratio: number }[] };
  assert.equal(report.suite, 'net');
  const names = report.comparisons.map((c) => c.name);
  for (const n of ['net.udp_1500_mbps.pv_vs_raw_copy', 'net.ping_rtt_us.vs_evtchn_roundtrip']) assert.ok(names.includes(n), n);
  for (const c of report.comparisons) assert.ok(Number.isFinite(c.ratio) && c.ratio > 0, `${c.name} ${c.ratio}`);
  for (const r of report.results) assert.ok(r.median > 0, r.name);
  const gso = report.results.find((r) => r.name === 'net.gso_60000_mbps')!;
  assert.equal(gso.extra?.['lost'], 0);
  // Each thread's share of the stream, where /proc tells it: every thread ran, no share over the whole.
  if (process.platform === 'linux') {
    const udp = report.results.find((r) => r.name === 'net.udp_1500_mbps')!;
    for (const who of ['sender', 'dom0', 'receiver']) {
      const busy = udp.extra?.[`busy_percent_${who}`];
      assert.ok(busy !== undefined && busy > 0 && busy <= 100.5, `${who} busy ${busy}`);
      assert.ok((udp.extra?.[`runq_wait_percent_${who}`] ?? -1) >= 0, `${who} runq wait`);
      assert.ok((udp.extra?.[`sleeps_per_s_${who}`] ?? 0) > 0, `${who} slept`);
    }
  }
});
