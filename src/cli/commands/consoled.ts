/**
 * `xenpv consoled [-F] [--socket PATH] [--log-dir DIR] [--timestamps]`: the console daemon
 * alone, in a real Xen dom0 on the `xen` platform: xenconsoled's job done by xenpv's
 * ConsoleDaemon (console 0 of every introduced domain, mapped through its reserved grant).
 * `xenpv console DOM` attaches through its socket (default `<run dir>/console.sock`) when no
 * `xenpv host` runs. Xen's xenconsoled must not run beside it: both would bind the same port.
 *
 * Without -F it starts itself again detached with -F (../daemonise.ts), waits until the socket
 * answers, prints the pid and returns (like `xenpv xenstored`). With -F it stays until
 * SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { XenpvError } from '../../base/index.js';
import { ConsoleAttachServer, ConsoleDaemon, consoleSocket } from '../../devices/console/index.js';
import { loadXenPlatform } from '../../hv/xen/index.js';
import { runDir } from '../../toolstack/host/paths.js';
import { XsClient } from '../../xenstore/client/index.js';
import { socketAnswers } from '../../xenstore/server/index.js';
import { daemonise } from '../daemonise.js';

interface ConsoledOpts {
  socket?: string;
  logDir?: string;
  timestamps?: boolean;
  foreground?: boolean;
}

const say = (m: string): void => void process.stderr.write(`xenpv consoled: ${m}\n`);

async function foreground(opts: ConsoledOpts): Promise<void> {
  const path = opts.socket ?? consoleSocket(runDir());
  const r = await loadXenPlatform({ onError: (err, port) => say(`event port ${port}: ${String(err)}`) });
  if (!r.ok) throw new XenpvError('ENODEV', `the xen platform is unavailable: ${r.reason}`);
  const platform = r.platform;
  const client = new XsClient(await platform.openStore());
  if (opts.logDir !== undefined) mkdirSync(opts.logDir, { recursive: true });
  mkdirSync(dirname(path), { recursive: true });
  const daemon = new ConsoleDaemon({
    platform,
    client,
    ...(opts.logDir === undefined ? {} : { logDir: opts.logDir }),
    timestamps: opts.timestamps === true,
    // libxl's create waits for console/tty (xenconsoled's pty path). There is no pty here:
    // the key names where the console is, for `xenpv console` (`xl console` cannot use it).
    tty: () => `xenpv-console:${path}`,
    log: say,
  });
  let server: ConsoleAttachServer | undefined;
  try {
    await daemon.start();
    server = await ConsoleAttachServer.listen({ path, daemon, client, log: say });
    process.stdout.write(`xenpv consoled: ${platform.describe()}, attach socket ${path}${opts.logDir === undefined ? '' : `, logs in ${opts.logDir}`}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  } finally {
    await server?.close();
    await daemon.close();
    client.close();
    await platform.close();
  }
}

async function detach(opts: ConsoledOpts): Promise<void> {
  const path = opts.socket ?? consoleSocket(runDir());
  const args = ['consoled', '-F', '--socket', path];
  if (opts.logDir !== undefined) args.push('--log-dir', opts.logDir);
  if (opts.timestamps === true) args.push('--timestamps');
  const pid = await daemonise({ args, ready: () => socketAnswers(path), timeoutMs: 10_000 });
  if (pid === undefined) throw new XenpvError('ETIMEDOUT', `the console daemon did not start listening on ${path} (run it with -F to see why)`, { path });
  process.stdout.write(`xenpv consoled: pid ${pid}, socket ${path}\n`);
}

export function registerConsoled(program: Command): void {
  program
    .command('consoled')
    .description("the console daemon alone, in a real Xen dom0 (the xen platform): xenconsoled's job; `xenpv console` attaches through it")
    .option('--socket <path>', 'attach socket (default: <run dir>/console.sock)')
    .option('--log-dir <dir>', 'write each guest console to DIR/guest-<name>.log (xenconsoled --log=guest)')
    .option('--timestamps', 'prefix each logged line with its time (xenconsoled --timestamp=guest)')
    .option('-F, --foreground', 'stay in the foreground')
    .action(async (opts: ConsoledOpts) => (opts.foreground === true ? foreground(opts) : detach(opts)));
}
