/**
 * `xenpv demo --quick` through the real CLI in a child process: the table it prints, the
 * report folder (JSON shape and comparison names, Markdown, SVG, a real PNG), the step lines
 * in a pipe, and nothing left behind (temp dirs, sockets; the process exits by itself).
 * Figures are not checked: benchmarks are not tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DemoSamples, FIGURES } from './figures.js';
import { replyTimesUs } from './net.js';
import { Progress } from './progress.js';
import { chartSvg } from './chart.js';
import { tableText, type DemoReport } from './report.js';

const BIN = resolve(fileURLToPath(import.meta.url), '../../../../bin/xenpv.js');

interface Run { code: number; stdout: string; stderr: string }

function xenpv(cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((res) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env, timeout: 90_000 }, (err, stdout, stderr) => {
      res({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

test('xenpv demo --quick: table, report folder, progress in a pipe, nothing left behind', async () => {
  // The child's TMPDIR is a fresh dir, so anything the demo forgets there is seen.
  const work = await mkdtemp(join(tmpdir(), 'xenpv-demo-test-'));
  const tmp = join(work, 'tmp');
  const out = join(work, 'report');
  try {
    await import('node:fs/promises').then((fs) => fs.mkdir(tmp));
    const r = await xenpv(work, ['demo', '--quick', '--out', out], { ...process.env, TMPDIR: tmp });
    assert.equal(r.code, 0, r.stderr);

    // The table: a header, a rule, one row per figure with PV, native, "—" for emulated, a ratio.
    const lines = r.stdout.split('\n');
    const head = lines.findIndex((l) => /^figure\s+unit\s+PV\s+native\s+emulated\s+PV\/native$/.test(l));
    assert.ok(head >= 0, r.stdout);
    for (const [i, f] of FIGURES.entries()) {
      const row = lines[head + 2 + i]!;
      assert.ok(row.startsWith(f.label), `${f.label} in:\n${r.stdout}`);
      assert.match(row, /\s—\s+\d+\.\d\d$/, `emulated is "—", the ratio a number: ${row}`);
    }
    assert.match(r.stdout, /emulated: not yet built/);
    assert.match(r.stdout, new RegExp(`report: ${join(out, 'demo.md').replace(/[/.]/g, '\\$&')}`));

    // Progress: plain lines in a pipe (no carriage returns or escapes), on stderr.
    assert.match(r.stderr, /^\[1\/\d+\] booting the host/m);
    assert.match(r.stderr, /disk through PV: .*\n/);
    assert.doesNotMatch(r.stderr, /[\r\x1b]/);

    const report = JSON.parse(await readFile(join(out, 'demo.json'), 'utf8')) as DemoReport;
    assert.equal(report.suite, 'demo');
    assert.equal(report.schema, 1);
    assert.equal(report.quick, true);
    assert.equal(report.machine.cores > 0 && typeof report.machine.cpu, 'string');
    assert.deepEqual(report.comparisons.map((c) => c.name).sort(), FIGURES.map((f) => `demo.${f.key}.pv_vs_native`).sort());
    for (const c of report.comparisons) {
      assert.ok(c.value > 0 && c.baseline > 0, JSON.stringify(c));
      assert.ok(Math.abs(c.ratio - c.value / c.baseline) < 1e-9 * c.ratio, c.name);
    }
    assert.deepEqual(report.rows.map((x) => x.key), FIGURES.map((f) => f.key));
    assert.ok(report.rows.every((x) => x.emulated === null));
    assert.equal(report.emulated.status, 'not yet built');
    assert.ok(report.results.some((x) => x.name === 'demo.disk.seqread_1m_mbps.pv' && x.runs.length === 1));
    assert.ok(report.guests.some((g) => g.startsWith('xenpv create examples/pv-guest.cfg') && g.includes('builtin:fio')));
    // The JSON's rows print as the same table the terminal showed.
    assert.ok(r.stdout.includes(tableText(report.rows.map((x) => ({ ...x, pv: x.pv ?? undefined, native: x.native ?? undefined, emulated: undefined, ratio: x.ratio ?? undefined })))));

    const md = await readFile(join(out, 'demo.md'), 'utf8');
    assert.match(md, /^# xenpv demo: PV drivers against the path they replace\n\n\S.{200,}\n/);
    assert.match(md, /!\[.*\]\(demo\.png\)/);
    const svg = await readFile(join(out, 'demo.svg'), 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.equal((svg.match(/not yet built/g) ?? []).length, FIGURES.length);
    const png = await readFile(join(out, 'demo.png'));
    assert.ok(png.subarray(0, 8).equals(PNG_SIGNATURE));
    assert.ok(png.length > 10_000, `a chart, not an empty image: ${png.length} bytes`);

    // Nothing left: the temp dir (image, run dir, sockets) is gone; the process exited by itself.
    assert.deepEqual(readdirSync(tmp), []);
    assert.deepEqual(readdirSync(work).sort(), ['report', 'tmp']);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('the table and the chart: a path not measured shows "—" and says so; emulated has its slot', () => {
  const rows = [
    { key: 'disk.seqread_1m_mbps', label: 'disk sequential read 1 MiB', unit: 'MB/s', better: 'higher' as const, pv: 1234.5, native: 2469, emulated: undefined, ratio: 0.5, nativeIs: 'pread' },
    { key: 'cpu.net_udp_s_per_gib', label: 'dom0 CPU, network UDP stream', unit: 's/GiB', better: 'lower' as const, pv: undefined, native: 0.25, emulated: undefined, ratio: undefined, nativeIs: 'process' },
  ];
  const t = tableText(rows).split('\n');
  assert.match(t[0]!, /^figure\s+unit\s+PV\s+native\s+emulated\s+PV\/native$/);
  assert.match(t[2]!, /^disk sequential read 1 MiB\s+MB\/s\s+1235\s+2469\s+—\s+0\.50$/);
  assert.match(t[3]!, /^dom0 CPU, network UDP stream\s+s\/GiB\s+—\s+0\.25\s+—\s+—$/);
  const svg = chartSvg(rows, 'title & <more>', 'sub');
  assert.match(svg, /title &amp; &lt;more&gt;/);
  assert.equal((svg.match(/not yet built/g) ?? []).length, 2);
  assert.equal((svg.match(/not measured/g) ?? []).length, 1);
});

test('ping reply lines give round trips in µs; other console lines are ignored', () => {
  assert.deepEqual(replyTimesUs([
    'PING 10.0.0.5 (10.0.0.5) 56(84) bytes of data.',
    '64 bytes from 10.0.0.5: icmp_seq=1 ttl=64 time=1.25 ms',
    '64 bytes from 10.0.0.5: icmp_seq=2 ttl=64 time=0.245 ms',
    '--- 10.0.0.5 ping statistics ---',
    '{"ping":{"rtt":{"avg":0.7}}}',
  ]), [1250, 245]);
});

test('comparisons: pv_vs_native now; emulated_vs_native and pv_vs_emulated appear once emulated figures are added', () => {
  const s = new DemoSamples();
  s.add('disk.seqread_1m_mbps', 'pv', 100);
  s.add('disk.seqread_1m_mbps', 'native', 400);
  s.add('net.rtt_us', 'pv', 50);
  s.add('net.rtt_us', 'native', Number.NaN); // not measurable: left out, not a NaN ratio
  assert.deepEqual(s.comparisons().map((c) => [c.name, c.ratio]), [['demo.disk.seqread_1m_mbps.pv_vs_native', 0.25]]);
  assert.equal(s.rows().find((r) => r.key === 'net.rtt_us')?.native, undefined);
  s.add('disk.seqread_1m_mbps', 'emulated', 20);
  assert.deepEqual(s.comparisons().map((c) => [c.name, c.ratio]), [
    ['demo.disk.seqread_1m_mbps.pv_vs_native', 0.25],
    ['demo.disk.seqread_1m_mbps.emulated_vs_native', 0.05],
    ['demo.disk.seqread_1m_mbps.pv_vs_emulated', 5],
  ]);
  assert.equal(s.rows()[0]!.emulated, 20);
  assert.throws(() => s.add('disk.no_such_figure', 'pv', 1), /no figure/);
});

test('progress: one rewritten line on a terminal, plain lines in a pipe, nothing when silent', () => {
  const tty: string[] = [];
  const p = new Progress(2, { isTTY: true, write: (t: string) => tty.push(t) });
  p.step('one');
  p.step('two');
  p.end();
  assert.match(tty[0]!, /^\r\x1b\[K\[1\/2\] one \(\d+ s\)$/);
  assert.match(tty[1]!, /^\r\x1b\[K\[2\/2\] two/);
  assert.equal(tty[2], '\r\x1b[K');
  const pipe: string[] = [];
  const q = new Progress(1, { isTTY: false, write: (t: string) => pipe.push(t) });
  q.step('only');
  q.end();
  assert.deepEqual(pipe.map((l) => l.replace(/\(\d+ s\)/, '(T)')), ['[1/1] only (T)\n']);
  new Progress(1, undefined).step('silent'); // no sink: nothing to write to, nothing thrown
});
