/**
 * `xenpv xenstored [--socket PATH] [--state FILE] [-F]`: the store alone, for real Xen clients
 * (Debian's xenstore-utils, pyxs) and for our own tools.
 *
 * Without -F it starts itself again detached with -F (../daemonise.ts), waits until the socket
 * answers, prints the pid and returns (like xenstored without --no-fork). With -F it stays in
 * the foreground until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { XenpvError } from '../../base/index.js';
import { daemonise } from '../daemonise.js';
import { startXenDom0Store } from './xenstored-xen.js';
import { defaultSocketPath, makeLimits, QUOTA_NAMES, socketAnswers, startXenstored, type Limits } from '../../xenstore/server/index.js';

interface XenstoredOpts {
  socket?: string;
  state?: string;
  foreground?: boolean;
  quota?: string[];
  xen?: boolean;
}

/** `-Q name=value` (C xenstored's --quota), with the quota names of GET_QUOTA. */
function limitsFrom(specs: readonly string[] = []): Limits {
  const overrides: Record<string, number> = {};
  for (const spec of specs) {
    const m = /^([a-z-]+)=([0-9]+)$/.exec(spec);
    const key = m === null ? undefined : (QUOTA_NAMES as Record<string, keyof Limits>)[m[1]!];
    if (m === null || key === undefined) {
      throw new XenpvError('EINVAL', `bad quota '${spec}' (names: ${Object.keys(QUOTA_NAMES).join(', ')})`, { spec });
    }
    overrides[key] = Number(m[2]);
  }
  try {
    return makeLimits(overrides);
  } catch (e) {
    throw new XenpvError('EINVAL', String(e instanceof Error ? e.message : e));
  }
}

async function foreground(opts: XenstoredOpts): Promise<void> {
  const log = (m: string): void => void process.stderr.write(`xenstored: ${m}\n`);
  const start = {
    limits: limitsFrom(opts.quota),
    socketPath: opts.socket ?? defaultSocketPath(),
    ...(opts.state === undefined ? {} : { stateFile: opts.state }),
    log,
  };
  const xs = opts.xen === true ? await startXenDom0Store(start, log) : await startXenstored(start);
  const running = 'xs' in xs ? xs.xs : xs;
  const where = 'localSource' in xs ? ` and dom0's ring (${xs.localSource})` : '';
  process.stdout.write(`xenstored: listening on ${running.socketPath}${where}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await xs.close();
}

async function detach(opts: XenstoredOpts): Promise<void> {
  const socket = opts.socket ?? defaultSocketPath();
  limitsFrom(opts.quota); // refuse bad quotas before detaching
  const args = ['xenstored', '-F', '--socket', socket];
  if (opts.state !== undefined) args.push('--state', opts.state);
  if (opts.xen === true) args.push('--xen');
  for (const q of opts.quota ?? []) args.push('--quota', q);
  const pid = await daemonise({ args, ready: () => socketAnswers(socket), timeoutMs: 5_000 });
  if (pid === undefined) throw new XenpvError('ETIMEDOUT', `xenstored did not start listening on ${socket}`, { socket });
  process.stdout.write(`xenstored: pid ${pid}, socket ${socket}\n`);
}

export function registerXenstored(program: Command): void {
  program
    .command('xenstored')
    .description("the XenStore daemon: Xen's wire protocol on a unix socket (and guest rings in `xenpv host`)")
    .option('--socket <path>', 'unix socket (default: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else a run dir)')
    .option('--state <file>', 'keep the tree, permissions and quota settings in FILE across restarts')
    .option('-Q, --quota <name=value>', 'set a quota (nodes, watches, outstanding, memory, transactions, ...); repeatable', (v: string, acc: string[] = []) => [...acc, v])
    .option('--xen', "replace Xen's xenstored in a real dom0: serve dom0's own ring, guests' rings on INTRODUCE, follow domain deaths (VIRQ_DOM_EXC)")
    .option('-F, --foreground', 'stay in the foreground')
    .action(async (opts: XenstoredOpts) => {
      if (opts.foreground === true) await foreground(opts);
      else await detach(opts);
    });
}
