/**
 * The demo's output: the table it prints, and the report folder — `demo.json` (DESIGN.md §6's
 * shape plus the table's rows), `demo.md` (title, what it shows, the table, the chart, notes),
 * `demo.svg` and `demo.png`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCH_SCHEMA, type BenchComparison, type BenchResult, type MachineInfo } from '../harness.js';
import { chartSvg, fmtValue, renderPng } from './chart.js';
import type { DemoRow } from './figures.js';

export const TITLE = 'xenpv demo: PV drivers against the path they replace';

export const EXPLANATION =
  'An unmodified (HVM) guest reaches its disk and network through emulated devices: a device model in ' +
  'domain 0 imitates IDE or NE2000 hardware register by register, and every access costs a trap and dom0 CPU. ' +
  "Paravirtual drivers replace that path: the guest's frontend and a backend in dom0 share a ring in granted " +
  'memory and signal each other with event channels, moving whole requests at a time. This run boots a Xen-style ' +
  'host in one process, creates PV guests from `examples/pv-guest.cfg`, runs disk and network work through their PV ' +
  'devices, and runs the same work natively on the host, so the cost of the PV path can be read as a ratio. ' +
  'The third path, emulated devices, joins the comparison once the HVM device model is built.';

export const EMULATED_STATUS = 'not yet built';

export interface DemoReport {
  readonly suite: 'demo';
  readonly schema: typeof BENCH_SCHEMA;
  readonly machine: MachineInfo;
  readonly quick: boolean;
  readonly startedAt: string;
  readonly elapsedMs: number;
  readonly rounds: number;
  readonly results: readonly BenchResult[];
  readonly comparisons: readonly BenchComparison[];
  /** The printed table, one entry per figure; a path not measured is null. */
  readonly rows: readonly JsonRow[];
  readonly emulated: { readonly status: typeof EMULATED_STATUS; readonly note: string };
  /** The guests, as `xenpv create` command lines. */
  readonly guests: readonly string[];
  readonly notes: readonly string[];
}

export type JsonRow = { readonly [K in keyof DemoRow]: DemoRow[K] extends number | undefined ? number | null : DemoRow[K] };

export function jsonRow(r: DemoRow): JsonRow {
  return { ...r, pv: r.pv ?? null, native: r.native ?? null, emulated: r.emulated ?? null, ratio: r.ratio ?? null };
}

export function rowFromJson(r: JsonRow): DemoRow {
  return { ...r, pv: r.pv ?? undefined, native: r.native ?? undefined, emulated: r.emulated ?? undefined, ratio: r.ratio ?? undefined };
}

const HEAD = ['figure', 'unit', 'PV', 'native', 'emulated', 'PV/native'] as const;

function cells(r: DemoRow): string[] {
  return [r.label, r.unit, fmtValue(r.pv), fmtValue(r.native), r.emulated === undefined ? '—' : fmtValue(r.emulated), r.ratio === undefined ? '—' : r.ratio.toFixed(2)];
}

/** The table as aligned text (what the terminal shows). */
export function tableText(rows: readonly DemoRow[]): string {
  const all = [[...HEAD], ...rows.map(cells)];
  const widths = HEAD.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  return [line(all[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n') + '\n';
}

function subtitle(report: DemoReport): string {
  const m = report.machine;
  return `${m.cpu}, ${m.cores} cores, node ${m.node}; medians of ${report.rounds} round${report.rounds === 1 ? '' : 's'}${report.quick ? ' (quick: not reliable)' : ''}`;
}

/** What `xenpv demo` prints on stdout. */
export function terminalText(report: DemoReport, outDir: string | undefined): string {
  const lines = [
    TITLE,
    subtitle(report),
    '',
    tableText(report.rows.map(rowFromJson)),
    `emulated: ${EMULATED_STATUS} (${report.emulated.note})`,
    ...report.notes.filter((n) => n.startsWith('The PV UDP sender')),
    'native: the host doing the same work itself (pread/pwrite on the same image, loopback UDP sockets); PV/native is the ratio of the two.',
    `finished in ${(report.elapsedMs / 1000).toFixed(1)} s`,
  ];
  if (outDir !== undefined) lines.push(`report: ${join(outDir, 'demo.md')} (+ demo.json, demo.svg, demo.png)`);
  return lines.join('\n') + '\n';
}

export function markdown(report: DemoReport): string {
  const rows = report.rows.map(rowFromJson);
  const mdRow = (r: DemoRow) => `| ${cells(r).join(' | ')} | ${r.nativeIs} |`;
  return [
    `# ${TITLE}`,
    '',
    EXPLANATION,
    '',
    subtitle(report) + `; ${report.startedAt}, ${(report.elapsedMs / 1000).toFixed(1)} s.`,
    '',
    `| ${HEAD.join(' | ')} | native is |`,
    '|---|---|---:|---:|---:|---:|---|',
    ...rows.map(mdRow),
    '',
    '![PV against native, one panel per figure](demo.png)',
    '',
    `Emulated devices: ${EMULATED_STATUS} — ${report.emulated.note}.`,
    '',
    '## How it was measured',
    '',
    ...report.notes.map((n) => `- ${n}`),
    '',
    'The guests, as a user would create them:',
    '',
    '```',
    ...report.guests,
    '```',
    '',
    'Every figure with its runs, spread and extras is in `demo.json`.',
    '',
  ].join('\n');
}

export interface WrittenReport {
  readonly json: string;
  readonly md: string;
  readonly svg: string;
  readonly png: string;
}

export async function writeDemoReport(report: DemoReport, dir: string): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true });
  const files = { json: join(dir, 'demo.json'), md: join(dir, 'demo.md'), svg: join(dir, 'demo.svg'), png: join(dir, 'demo.png') };
  const svg = chartSvg(report.rows.map(rowFromJson), TITLE, subtitle(report));
  await writeFile(files.json, JSON.stringify(report, null, 2) + '\n');
  await writeFile(files.md, markdown(report));
  await writeFile(files.svg, svg);
  await writeFile(files.png, await renderPng(svg));
  return files;
}
