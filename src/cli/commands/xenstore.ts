/**
 * `xenpv xenstore <mode> ...`: Xen's multi-call `xenstore` client (read, write, rm, exists,
 * list, ls, chmod, watch) with its own flags, output and exit codes. Arguments go through
 * untouched: the tool parses them with getopt_long's rules, not commander's.
 */
import type { Command } from 'commander';
import { xenstoreMain } from '../xenstore-tools.js';

export function registerXenstore(program: Command): void {
  program
    .command('xenstore')
    .description("the xenstore-* tools: `xenpv xenstore read|write|rm|exists|list|ls|chmod|watch ...`, as Xen's")
    .usage('<mode> [options] [args...]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      process.exitCode = await xenstoreMain('xenstore', args);
    });
}
