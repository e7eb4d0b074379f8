/**
 * What `xenpv bench` does, without the command-line parsing: resolve suite names (`all` is
 * every registered suite), run each, and hand back the reports for printing or writing.
 */
import { XenpvError } from '../base/index.js';
import { runSuite, toMarkdown, writeReport, type BenchReport } from './harness.js';
import { suiteNames, suites } from './suites.js';

export interface BenchRunOptions {
  readonly quick: boolean;
  readonly json: boolean;
  /** Directory for `<suite>.json` and `<suite>.md`. */
  readonly out?: string;
  /** Where human-readable output goes (stdout by default). */
  readonly write?: (text: string) => void;
}

export function resolveSuites(name: string): string[] {
  if (name === 'all') return suiteNames();
  if (!Object.hasOwn(suites, name)) {
    throw new XenpvError('EINVAL', `unknown bench suite '${name}' (known: ${[...suiteNames(), 'all'].join(', ')})`, {
      suite: name,
    });
  }
  return [name];
}

/**
 * Run the named suite(s). With `json`, prints one JSON object (DESIGN.md §6) for a single
 * suite, or a JSON array of them for `all`; otherwise a Markdown table per suite.
 */
export async function runBench(name: string, options: BenchRunOptions): Promise<BenchReport[]> {
  const write = options.write ?? ((t: string) => process.stdout.write(t));
  const reports: BenchReport[] = [];
  for (const n of resolveSuites(name)) {
    const suite = await suites[n]!();
    const report = await runSuite(suite, { quick: options.quick });
    reports.push(report);
    if (options.out !== undefined) await writeReport(report, options.out);
    if (!options.json) write(toMarkdown(report) + '\n');
  }
  if (options.json) {
    const value = name === 'all' ? reports : reports[0];
    write(JSON.stringify(value, null, 2) + '\n');
  }
  return reports;
}
