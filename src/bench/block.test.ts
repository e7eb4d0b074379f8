/**
 * `xenpv bench block --quick --json` keeps working: one object in the DESIGN §6 shape, every
 * figure of the issue present (PV plain and tuned in the toolstack's layout, the earlier
 * in-process layout under block.inproc.*, native cached, the storage layer async and O_DIRECT,
 * CPU per GiB), and the three comparisons the issue names. Nothing about speed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from './run.js';

test('xenpv bench block --quick --json: DESIGN §6 shape, the issue\'s figures and comparisons', async () => {
  let printed = '';
  await runBench('block', { quick: true, json: true, write: (t) => (printed += t) });
  const report = JSON.parse(printed) as Record<string, unknown>;
  assert.equal(report['suite'], 'block');
  assert.equal(report['schema'], 1);
  assert.equal(report['quick'], true);
  assert.equal(typeof (report['machine'] as Record<string, unknown>)['cpu'], 'string');
  const results = report['results'] as Record<string, unknown>[];
  const byName = new Map(results.map((r) => [r['name'] as string, r]));
  for (const r of results) {
    assert.ok(Array.isArray(r['runs']) && (r['runs'] as number[]).length > 0, String(r['name']));
    for (const k of ['median', 'min', 'max', 'spread']) assert.equal(typeof r[k], 'number', `${String(r['name'])}.${k}`);
  }
  const notes = report['notes'] as string[];
  // O_DIRECT is refused by some file systems (tmpfs): then the suite says so instead of measuring it.
  const direct = notes.some((n) => n.startsWith('native_direct: not measured')) ? [] : ['native_direct'];
  const jobs = ['randread_4k_qd1_iops', 'randread_4k_qd32_iops', 'seqread_1m_mbps', 'seqwrite_1m_mbps'];
  for (const job of jobs) {
    const names = [
      ...['pv_plain', 'pv_tuned', 'native_async', ...direct].map((who) => `block.${job}.${who}`),
      ...['pv_plain', 'pv_tuned'].map((who) => `block.inproc.${job}.${who}`),
    ];
    for (const name of names) {
      const r = byName.get(name);
      assert.ok(r !== undefined, name);
      assert.equal(r['unit'], job.endsWith('iops') ? 'IOPS' : 'MB/s');
      assert.ok((r['median'] as number) > 0, `${name} moved data`);
    }
    for (const prefix of ['block', 'block.inproc']) {
      for (const cfg of ['plain', 'tuned']) {
        const cpu = byName.get(`${prefix}.dom0_cpu_s_per_gib.${job.replace(/_(iops|mbps)$/, '')}.pv_${cfg}`);
        assert.equal(cpu?.['unit'], 's/GiB');
        assert.equal(cpu?.['better'], 'lower');
        const extra = byName.get(`${prefix}.${job}.pv_${cfg}`)?.['extra'] as Record<string, number>;
        for (const k of ['lat_p50_us', 'lat_p99_us', 'guest_cpu_s_per_gib', 'dom0_blkback_thread_cpu_s_per_gib', 'dom0_cpu_s_per_gib']) {
          assert.equal(typeof extra[k], 'number', `${prefix} ${cfg} ${job} ${k}`);
        }
        // On Linux (/proc) the real layout's dom0 CPU, backend thread included, is measured: it cannot be 0 or NaN.
        if (prefix === 'block' && process.platform === 'linux') {
          assert.ok(extra['dom0_cpu_s_per_gib']! > 0 && extra['dom0_blkback_thread_cpu_s_per_gib']! > 0, `${cfg} ${job} dom0 CPU measured`);
          assert.ok(extra['dom0_cpu_s_per_gib']! >= extra['dom0_blkback_thread_cpu_s_per_gib']!, `${cfg} ${job}: dom0 counts the backend thread`);
          // Where the backend's threads and the guest's were over fio's window: both ran. (A
          // halt-polling guest, or a backend whose ring never ran dry, may not sleep in a short job.)
          for (const who of ['blkback_threads', 'guest']) {
            assert.ok(extra[`${who}_busy_percent`]! > 0, `${cfg} ${job} ${who} busy`);
            assert.ok(extra[`${who}_runq_wait_percent`]! >= 0, `${cfg} ${job} ${who} runq wait`);
            assert.ok(extra[`${who}_sleeps_per_s`]! >= 0, `${cfg} ${job} ${who} sleeps`);
          }
        }
      }
    }
  }
  assert.ok(!byName.has('block.randread_4k_qd32_iops.pv_tuned_syncstore'), 'the syncstore diagnostic is gone (the real layout is synchronous storage)');
  for (const n of ['block.randread_4k_iops.native', 'block.seqread_1m_mbps.native', 'block.seqwrite_1m_mbps.native', 'block.seqread_1m_mbps.native_32bufs', 'block.seqwrite_1m_mbps.native_32bufs']) {
    assert.ok((byName.get(n)?.['median'] as number) > 0, n);
  }
  const comparisons = report['comparisons'] as Record<string, unknown>[];
  assert.deepEqual(comparisons.map((c) => c['name']).sort(), [
    'block.randread_4k_qd32_iops.pv_vs_native',
    'block.seqread_1m_mbps.pv_vs_native',
    'block.seqwrite_1m_mbps.pv_vs_native',
  ]);
  for (const c of comparisons) {
    for (const k of ['value', 'baseline', 'ratio']) assert.ok(Number.isFinite(c[k]) && (c[k] as number) > 0, `${String(c['name'])}.${k}`);
    assert.ok(Math.abs((c['ratio'] as number) - (c['value'] as number) / (c['baseline'] as number)) < 1e-9);
    assert.equal(c['better'], 'higher');
  }
  const qd32 = comparisons.find((c) => c['name'] === 'block.randread_4k_qd32_iops.pv_vs_native')!;
  assert.equal(qd32['value'], byName.get('block.randread_4k_qd32_iops.pv_tuned')?.['median']);
  assert.equal(qd32['baseline'], byName.get('block.randread_4k_iops.native')?.['median']);
  assert.equal(qd32['aim'], 0.8);
  // The real layout: plain = nothing offered; tuned = the toolstack's defaults under the guest blkfront's defaults.
  assert.ok(notes.some((n) => /^pv_tuned negotiated: persistent=true indirect-segments=128 queues=4 ring-pages=1\b/.test(n)), notes.join('\n'));
  assert.ok(notes.some((n) => /^pv_plain negotiated: persistent=false indirect-segments=0 queues=1 ring-pages=1$/.test(n)), notes.join('\n'));
  assert.ok(notes.some((n) => /^inproc pv_tuned negotiated: persistent=true indirect-segments=256 queues=4 ring-pages=16$/.test(n)), notes.join('\n'));
  assert.ok(notes.some((n) => /^inproc pv_plain negotiated: persistent=false indirect-segments=0 queues=1 ring-pages=1$/.test(n)), notes.join('\n'));
  assert.ok(notes.some((n) => n.includes("xenpv create examples/pv-guest.cfg") && n.includes('kernel="builtin:fio"')), notes.join('\n'));
});
