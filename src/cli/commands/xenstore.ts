/**
 * `xenpv xenstore <mode> ...`: Xen's multi-call `xenstore` client (read, write, rm, exists,
 * list, ls, chmod, watch) with its own flags, output and exit codes. Arguments go through
 * untouched: the tool parses them with getopt_long's rules, not commander's.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { runDir, storeSocket } from '../../toolstack/host/paths.js';
import { xenstoreMain } from '../xenstore-tools.js';

/**
 * Xen's clients find the store through XENSTORED_PATH or XENSTORED_RUNDIR. `xenpv xenstore`
 * honours both; when neither is set and a `xenpv host` runs in this run dir, it talks to that
 * host's store, so `xenpv xenstore ls` works beside `xenpv list` with nothing exported.
 */
export function hostStoreEnv(env: NodeJS.ProcessEnv): void {
  if (env.XENSTORED_PATH !== undefined || env.XENSTORED_RUNDIR !== undefined) return;
  const sock = storeSocket(runDir(env));
  if (existsSync(sock)) env.XENSTORED_PATH = sock;
}

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
      hostStoreEnv(process.env);
      process.exitCode = await xenstoreMain('xenstore', args);
    });
}
