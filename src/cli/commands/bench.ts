/**
 * `xenpv bench <suite> [--quick] [--json] [--out DIR]`: run a benchmark suite (DESIGN.md §6).
 * Suites are registered in bench/suites.ts; `all` runs every one.
 */
import type { Command } from 'commander';
import { suiteNames } from '../../bench/suites.js';

interface BenchOpts {
  quick?: boolean;
  json?: boolean;
  out?: string;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(`run a benchmark suite: ${[...suiteNames(), 'all'].join(', ')}`)
    .argument('<suite>', 'suite name, or all')
    .option('--quick', 'short runs (keeps the code working; figures are not reliable)')
    .option('--json', 'print one JSON object (an array for all) instead of Markdown')
    .option('--out <dir>', 'also write <suite>.json and <suite>.md into DIR')
    .action(async (suite: string, opts: BenchOpts) => {
      // Loaded when it runs: every other xenpv command starts without the benchmark code.
      const { runBench } = await import('../../bench/run.js');
      await runBench(suite, {
        quick: opts.quick === true,
        json: opts.json === true,
        ...(opts.out === undefined ? {} : { out: opts.out }),
      });
    });
}
