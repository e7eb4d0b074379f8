/**
 * The benchmark harness (DESIGN.md §6): runs a suite, summarises repeated runs as median and
 * spread, holds each figure against a baseline measured in the same run, and prints the
 * result as one JSON object or as a Markdown table.
 *
 * The machine is shared and noisy: absolute numbers drift between runs, ratios hold better.
 * So a suite measures a figure and its baseline alternately, run after run, and reports the
 * ratio of the two medians.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

export const BENCH_SCHEMA = 1;

export type Better = 'higher' | 'lower';

export interface BenchOptions {
  /** Short runs, for the test suite: keeps the code working, measures nothing reliable. */
  readonly quick: boolean;
}

export interface BenchResult {
  readonly name: string;
  readonly unit: string;
  readonly better: Better;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max - min) / median over the timed runs. */
  readonly spread: number;
  /** Every timed run, in order (warm-up runs excluded). */
  readonly runs: readonly number[];
  /** Secondary counters (kicks per request, waits, ...), medians over the runs. */
  readonly extra?: Readonly<Record<string, number>>;
}

export interface BenchComparison {
  readonly name: string;
  readonly value: number;
  readonly baseline: number;
  readonly unit: string;
  readonly better: Better;
  /** value / baseline. */
  readonly ratio: number;
  /** The goal the issue set for the ratio, when it set one. */
  readonly aim?: number;
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
  readonly os: string;
  readonly memoryBytes: number;
}

export interface SuiteOutput {
  readonly results: readonly BenchResult[];
  readonly comparisons: readonly BenchComparison[];
  /** Anything a reader must know to trust the figures (what was not measured, and why). */
  readonly notes?: readonly string[];
}

export interface BenchSuite {
  readonly name: string;
  readonly description: string;
  run(options: BenchOptions): Promise<SuiteOutput>;
}

export interface BenchReport extends SuiteOutput {
  readonly suite: string;
  readonly schema: typeof BENCH_SCHEMA;
  readonly machine: MachineInfo;
  readonly quick: boolean;
  readonly startedAt: string;
  readonly elapsedMs: number;
  readonly notes: readonly string[];
}

export function machineInfo(): MachineInfo {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    node: process.version,
    os: `${platform()} ${release()}`,
    memoryBytes: totalmem(),
  };
}

/** Run a benchmark worker on `workerData`; its report is the last message it posted before it exited. */
export function workerReport<R>(url: URL, workerData: unknown, what: string): Promise<R> {
  return new Promise((resolve, reject) => {
    const w = new Worker(url, { workerData });
    let report: R | undefined;
    w.on('message', (m: R) => (report = m));
    w.on('error', reject);
    w.on('exit', (code) => (report !== undefined ? resolve(report) : reject(new Error(`${what} exited ${code} without a report`))));
  });
}

/** Nanoseconds from a monotonic clock (process.hrtime.bigint), as a number. */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  return sortedMedian([...values].sort((a, b) => a - b));
}

function sortedMedian(s: readonly number[]): number {
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Median (as `median`) and 90th percentile (the sample at floor(0.9 n)) of latency samples,
 * sorted once. At least one sample.
 */
export function latencyFigures(samples: readonly number[]): { median: number; p90: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { median: sortedMedian(s), p90: s[Math.floor(s.length * 0.9)]! };
}

/** Median, range and relative spread of repeated runs of one figure. */
export function summarize(
  name: string,
  unit: string,
  better: Better,
  runs: readonly number[],
  extras: readonly Readonly<Record<string, number>>[] = [],
): BenchResult {
  const m = median(runs);
  const min = Math.min(...runs);
  const max = Math.max(...runs);
  const result: BenchResult = { name, unit, better, median: m, min, max, spread: m === 0 ? 0 : (max - min) / m, runs };
  if (extras.length === 0) return result;
  const keys = new Set(extras.flatMap((e) => Object.keys(e)));
  const extra: Record<string, number> = {};
  for (const k of keys) extra[k] = median(extras.map((e) => e[k] ?? NaN).filter((v) => !Number.isNaN(v)));
  return { ...result, extra };
}

/** A figure held against its baseline: the ratio of the two medians. */
export function compare(name: string, value: BenchResult, baseline: BenchResult, aim?: number): BenchComparison {
  if (value.unit !== baseline.unit || value.better !== baseline.better) {
    throw new Error(`bench: ${value.name} and ${baseline.name} are not comparable`);
  }
  const c = {
    name,
    value: value.median,
    baseline: baseline.median,
    unit: value.unit,
    better: value.better,
    ratio: value.median / baseline.median,
  };
  return aim === undefined ? c : { ...c, aim };
}

/**
 * Run `measure` and `baseline` alternately (`warmup` discarded rounds, then `runs` timed
 * rounds), so both see the same machine conditions. Each call returns one run's figure and
 * optional counters.
 */
export async function alternate<T extends { value: number; extra?: Record<string, number> }>(
  runs: number,
  warmup: number,
  measure: () => Promise<T>,
  baseline: () => Promise<T>,
): Promise<{ value: T[]; baseline: T[] }> {
  const out = { value: [] as T[], baseline: [] as T[] };
  for (let i = 0; i < warmup + runs; i++) {
    // Swap the order every round so neither always runs on a machine the other warmed.
    const first = i % 2 === 0;
    const a = first ? await measure() : await baseline();
    const b = first ? await baseline() : await measure();
    if (i < warmup) continue;
    out.value.push(first ? a : b);
    out.baseline.push(first ? b : a);
  }
  return out;
}

export async function runSuite(suite: BenchSuite, options: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const t0 = nowNs();
  const out = await suite.run(options);
  return {
    suite: suite.name,
    schema: BENCH_SCHEMA,
    machine: machineInfo(),
    quick: options.quick,
    startedAt,
    elapsedMs: (nowNs() - t0) / 1e6,
    results: out.results,
    comparisons: out.comparisons,
    notes: out.notes ?? [],
  };
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)} k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** The report as Markdown, for people: results, then comparisons, then notes. */
export function toMarkdown(report: BenchReport): string {
  const m = report.machine;
  const lines = [
    `# xenpv bench ${report.suite}${report.quick ? ' (quick)' : ''}`,
    '',
    `${m.cpu}, ${m.cores} cores, node ${m.node}, ${m.os}; ${report.startedAt}`,
    '',
    '| result | median | min | max | spread | unit | runs |',
    '|---|---:|---:|---:|---:|---|---:|',
    ...report.results.map(
      (r) =>
        `| ${r.name} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${(r.spread * 100).toFixed(0)} % | ${r.unit} | ${r.runs.length} |`,
    ),
  ];
  if (report.comparisons.length > 0) {
    lines.push('', '| comparison | value | baseline | unit | better | ratio | aim |', '|---|---:|---:|---|---|---:|---:|');
    for (const c of report.comparisons) {
      lines.push(
        `| ${c.name} | ${fmt(c.value)} | ${fmt(c.baseline)} | ${c.unit} | ${c.better} | ${c.ratio.toFixed(3)} | ${c.aim ?? ''} |`,
      );
    }
  }
  for (const r of report.results) {
    if (r.extra === undefined) continue;
    const parts = Object.entries(r.extra).map(([k, v]) => `${k} ${fmt(v)}`);
    lines.push('', `${r.name}: ${parts.join(', ')}`);
  }
  if (report.notes.length > 0) lines.push('', ...report.notes.map((n) => `- ${n}`));
  return lines.join('\n') + '\n';
}

/** Write `<suite>.json` and `<suite>.md` into `dir` (created if missing). */
export async function writeReport(report: BenchReport, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, `${report.suite}.json`);
  const md = join(dir, `${report.suite}.md`);
  await writeFile(json, JSON.stringify(report, null, 2) + '\n');
  await writeFile(md, toMarkdown(report));
  return [json, md];
}
