/**
 * xenstore-read, -write, -rm, -exists, -list, -ls, -chmod, -watch: one multi-call entry, as
 * Xen's own `xenstore` client (tools/xs-clients/xenstore_client.c, 4.17): the mode comes from
 * the name it was called by (`xenstore-read ...`) or from the first argument
 * (`xenstore read ...`, `xenpv xenstore read ...`). Same flags, output bytes, escaping,
 * diagnostics and exit codes; the store is found through XENSTORED_PATH / XENSTORED_RUNDIR.
 */
import { XenpvError, errorCode } from '../base/index.js';
import type { StoreTransport } from '../hv/platform.js';
import { XsClient, connectSocket, xenstoredSocketPath, type XsTransaction } from '../xenstore/client/index.js';
import { getoptLong, type LongOption } from './xenstore-tools/getopt.js';
import { lsLayout } from './xenstore-tools/ls-format.js';
import { doLs } from './xenstore-tools/ls.js';
import {
  atoi, attempt, doChmod, doExists, doList, doRead, doRm, doWatch, doWrite, parseModes,
  type Flags, type Mode, type Perform,
} from './xenstore-tools/modes.js';
import { ToolExit, ToolRun, argBytes, bytesOf, type ToolIo } from './xenstore-tools/run.js';

export type { ToolIo } from './xenstore-tools/run.js';

export interface XenstoreToolOptions {
  /** How to reach the store (default: the unix socket at `path`). */
  readonly connect?: (path: string) => Promise<StoreTransport>;
}

const MODES: readonly Mode[] = ['read', 'chmod', 'exists', 'list', 'ls', 'rm', 'write', 'watch'];

/** 4.17's getopt_long table: `s` is still accepted (and ignored) but `--socket` is gone. */
const OPTSTRING = 'hfspturn:R';
const LONG_OPTIONS: readonly LongOption[] = [
  { name: 'help', hasArg: false, short: 'h' },
  { name: 'flat', hasArg: false, short: 'f' },
  { name: 'prefix', hasArg: false, short: 'p' },
  { name: 'tidy', hasArg: false, short: 't' },
  { name: 'upto', hasArg: false, short: 'u' },
  { name: 'recurse', hasArg: false, short: 'r' },
  { name: 'number', hasArg: true, short: 'n' },
  { name: 'raw', hasArg: false, short: 'R' },
];

/** Which option letters each mode accepts (any other one is a usage error). */
const MODE_OPTIONS: Readonly<Record<string, readonly Mode[]>> = {
  f: ['ls'],
  p: ['read', 'list', 'ls'],
  t: ['rm'],
  u: ['chmod'],
  r: ['chmod'],
  n: ['watch'],
  R: ['read', 'write'],
};

const USAGE: Readonly<Record<Mode, string>> = {
  read: '[-h] [-p] [-s] [-R] key [...]',
  write: '[-h] [-s] [-R] key value [...]',
  rm: '[-h] [-s] [-t] key [...]',
  exists: '[-h] [-p] [-s] key [...]', // 4.17 falls through to list's text
  list: '[-h] [-p] [-s] key [...]',
  ls: '[-h] [-f] [-p] [-s] [path]',
  chmod: '[-h] [-u] [-r] [-s] key <mode [modes...]>',
  watch: '[-h] [-n NR] key',
};

interface Invocation {
  readonly argv0: string;
  readonly mode: Mode;
  /** Whether the mode was the first argument (`xenstore read`): usage then names it. */
  readonly inclMode: boolean;
  readonly flags: Flags;
  flat: boolean;
  readonly operands: string[];
}

/** Run one command; resolves to its exit code. `io` defaults to this process's streams. */
export async function xenstoreMain(
  argv0: string,
  args: readonly string[],
  io: ToolIo = processIo(),
  options: XenstoreToolOptions = {},
): Promise<number> {
  const name = argv0.replace(/\.js$/, '');
  const run = new ToolRun(io, argBytes(name.slice(name.lastIndexOf('/') + 1)));
  let client: XsClient | undefined;
  try {
    const inv = parseCommandLine(run, argBytes(name), args.map(argBytes));
    client = await open(run, io, options);
    return await execute(run, client, inv);
  } catch (err) {
    if (err instanceof ToolExit) return err.exitCode;
    throw err;
  } finally {
    run.flush();
    client?.close();
  }
}

function usage(run: ToolRun, argv0: string, mode: Mode | undefined, inclMode: boolean): never {
  if (mode === undefined) run.errx(1, `Usage: ${argv0} <mode> [-h] [...]`);
  run.errx(1, `Usage: ${argv0} ${inclMode ? `${mode} ` : ''}${USAGE[mode]}`);
}

function parseCommandLine(run: ToolRun, argv0: string, args: readonly string[]): Invocation {
  const command = argv0.slice(argv0.lastIndexOf('/') + 1);
  const inclMode = !command.startsWith('xenstore-');
  if (inclMode && args.length < 1) usage(run, argv0, undefined, false);
  const word = inclMode ? args[0]! : command.slice('xenstore-'.length);
  const mode = MODES.find((m) => m === word);
  if (mode === undefined) run.errx(1, `unknown mode ${word}\n`);
  // getopt_long sees argv + switch_argv: its messages name that vector's argv[0].
  const rest = inclMode ? args.slice(1) : args;
  const parsed = getoptLong(inclMode ? word : argv0, rest, OPTSTRING, LONG_OPTIONS, run.io.env['POSIXLY_CORRECT'] !== undefined);
  const flags: Flags = { prefix: false, tidy: false, upto: false, recurse: false, raw: false, watchCount: -1 };
  const inv: Invocation = { argv0, mode, inclMode, flags, flat: false, operands: parsed.operands };
  for (const item of parsed.items) {
    if ('error' in item) {
      run.io.stderr(bytesOf(`${item.error}\n`)); // getopt's diagnostic; the option is skipped
      continue;
    }
    applyOption(run, inv, item.short, item.arg);
  }
  const n = inv.operands.length;
  if (mode === 'write' && n % 2 === 1) usage(run, argv0, mode, inclMode);
  if (mode !== 'ls' && n === 0) usage(run, argv0, mode, inclMode);
  return inv;
}

function applyOption(run: ToolRun, inv: Invocation, short: string, arg: string | undefined): void {
  if (short === 'h') usage(run, inv.argv0, inv.mode, inv.inclMode);
  if (short === 's') return; // the removed socket-only switch: accepted, ignored
  if (!(MODE_OPTIONS[short] ?? []).includes(inv.mode)) usage(run, inv.argv0, inv.mode, inv.inclMode);
  const f = inv.flags;
  if (short === 'f') inv.flat = true;
  else if (short === 'p') f.prefix = true;
  else if (short === 't') f.tidy = true;
  else if (short === 'u') f.upto = true;
  else if (short === 'r') f.recurse = true;
  else if (short === 'R') f.raw = true;
  else if (short === 'n') f.watchCount = atoi(arg ?? '');
}

async function open(run: ToolRun, io: ToolIo, options: XenstoreToolOptions): Promise<XsClient> {
  const path = xenstoredSocketPath(io.env);
  const transport = await attempt((options.connect ?? connectSocket)(path));
  if (transport instanceof XenpvError) run.err(1, 'xs_open', transport.code);
  return new XsClient(transport, { label: `xenstore tool ${path}` });
}

/** The transaction loop of main(): start, perform, end; EAGAIN at the end runs it all again. */
async function execute(run: ToolRun, client: XsClient, inv: Invocation): Promise<number> {
  const n = inv.operands.length;
  const transactional =
    inv.mode === 'read' ? n > 1 : inv.mode === 'write' ? n > 2 : inv.mode !== 'ls' && inv.mode !== 'watch';
  for (;;) {
    let tx: XsTransaction | undefined;
    if (transactional) {
      const started = await attempt(client.transactionStart());
      if (started instanceof XenpvError) run.errx(1, "couldn't start transaction");
      tx = started;
    }
    const ret = await perform({ run, client, tx, flags: inv.flags }, inv);
    if (tx !== undefined) {
      const ended = await attempt(ret === 0 ? tx.commit() : tx.abort());
      if (ended instanceof XenpvError) {
        if (ret === 0 && ended.code === 'EAGAIN') {
          run.resetOutput();
          continue;
        }
        run.errx(1, "couldn't end transaction");
      }
    }
    run.writeOutput();
    return ret;
  }
}

async function perform(c: Perform, inv: Invocation): Promise<number> {
  const ops = inv.operands;
  switch (inv.mode) {
    case 'read':
      return doRead(c, ops);
    case 'write':
      return doWrite(c, ops);
    case 'rm':
      return doRm(c, ops);
    case 'exists':
      return doExists(c, ops);
    case 'list':
      return doList(c, ops);
    case 'ls': {
      const layout = lsLayout(inv.flat, c.run.io.ttyColumns);
      for (const path of ops.length === 0 ? ['/'] : ops) await doLs(c.run, c.client, path, layout, c.flags.prefix);
      return 0;
    }
    case 'chmod':
      await doChmod(c, ops[0]!, parseModes(c.run, ops.slice(1)), c.flags.upto, c.flags.recurse);
      return 0;
    case 'watch':
      return doWatch(c, ops);
  }
}

function processIo(): ToolIo {
  // A reader that goes away (`xenstore-ls | head`) ends a C tool by SIGPIPE, silently.
  process.stdout.once('error', (err) => {
    if (errorCode(err) !== 'EPIPE') throw err;
    process.exit(128 + 13);
  });
  return {
    stdout: (b) => process.stdout.write(b),
    stderr: (b) => process.stderr.write(b),
    env: process.env,
    ttyColumns: process.stdout.isTTY ? (process.stdout.columns ?? 0) : undefined,
  };
}
