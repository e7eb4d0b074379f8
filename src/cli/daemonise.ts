/**
 * Running a daemon command in the background, as C daemons do without their --no-fork flag:
 * the same program is started again detached with the foreground flag (the caller's `args`),
 * and this process waits until the child serves before it prints and returns. `xenpv
 * xenstored` and `xenpv consoled` start themselves this way.
 *
 * Node cannot fork(2) a running event loop, so "again" means a fresh `node` on the same script;
 * the child's stdio is closed (or a log file) so that it outlives the terminal that started it.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { sleep, XenpvError } from '../base/index.js';

/** How often readiness is asked: a daemon's start-up takes tens to hundreds of ms. */
const POLL_MS = 50;

export interface DaemonSpec {
  /** The command line after the script, including the foreground flag (`['xenstored', '-F', ...]`). */
  readonly args: readonly string[];
  /** Whether the child serves yet (its socket answers). */
  readonly ready: () => Promise<boolean>;
  /** How long to wait for `ready` before giving up on the child. */
  readonly timeoutMs: number;
  /** The script to run; default: the one this process runs (`process.argv[1]`). */
  readonly script?: string;
  /** An open file for the child's stdout and stderr (a log); default: none, both closed. */
  readonly output?: number;
  /** The child's environment; default: this process's. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Start the daemon detached and wait until it is ready: its pid, or undefined when it exited
 * or did not become ready in time (the caller says why, in its own words). A child that is
 * slow rather than dead is left running: it may still come up. One that is ready already
 * (another instance serves) is refused with EADDRINUSE before anything is started: the child
 * would only fail to bind, after `ready` had answered for the other one.
 */
export async function daemonise(spec: DaemonSpec): Promise<number | undefined> {
  if (await spec.ready()) {
    throw new XenpvError('EADDRINUSE', `${spec.args[0] ?? 'the daemon'} is already running (it answers); not started again`, { args: spec.args });
  }
  const script = spec.script ?? process.argv[1]!;
  const stdio: StdioOptions = spec.output === undefined ? 'ignore' : ['ignore', spec.output, spec.output];
  const child = spawn(process.execPath, [script, ...spec.args], { detached: true, stdio, env: spec.env ?? process.env });
  child.unref();
  let failed = false; // spawn(2) itself failed: 'error' instead of a child
  child.once('error', () => (failed = true));
  for (let waited = 0; waited < spec.timeoutMs; waited += POLL_MS) {
    await sleep(POLL_MS);
    if (await spec.ready()) return child.pid;
    if (failed || child.exitCode !== null || child.signalCode !== null) return undefined;
  }
  return undefined;
}
