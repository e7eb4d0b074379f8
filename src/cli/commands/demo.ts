/**
 * `xenpv demo [--out DIR] [--quick] [--json]`: the main job (bench/demo). No daemon, no setup:
 * a host in this process, PV guests from examples/pv-guest.cfg, disk and network work through
 * PV and natively, the comparison printed and written to DIR (default ./xenpv-report).
 */
import type { Command } from 'commander';

interface DemoOpts {
  out: string;
  quick?: boolean;
  json?: boolean;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('boot a host and PV guests in-process, run disk and network work through PV and natively, print the comparison')
    .option('--out <dir>', 'report folder (demo.json, demo.md, demo.svg, demo.png)', './xenpv-report')
    .option('--quick', 'short runs (a few seconds; figures are not reliable)')
    .option('--json', 'print the report as one JSON object instead of the table')
    .action(async (opts: DemoOpts) => {
      // Loaded when it runs: every other xenpv command starts without the demo's host and guests.
      const { runDemo } = await import('../../bench/demo/index.js');
      await runDemo({ quick: opts.quick === true, json: opts.json === true, out: opts.out });
    });
}
