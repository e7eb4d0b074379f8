/**
 * `xenpv host start [-F]`, `xenpv host stop`, `xenpv host status`: the host daemon
 * (toolstack/host). `start` re-runs itself detached with -F (../daemonise.ts; output to host.log
 * in the run dir) and returns once the control socket answers; -F stays in the foreground.
 */
import type { Command } from 'commander';
import { mkdir, open, readFile } from 'node:fs/promises';
import { XenpvError, sleep } from '../../base/index.js';
import { callHost } from '../../toolstack/host/rpc-client.js';
import { logFile, pidFile } from '../../toolstack/host/paths.js';
import { formatUplinks, parseUplinkSpec, type UplinkRow } from '../../toolstack/host/uplinks.js';
import { daemonise } from '../daemonise.js';
import { hostDir, progress } from './host-client.js';

async function running(dir: string): Promise<number | undefined> {
  try {
    return (await callHost<{ pid: number }>(dir, 'ping')).pid;
  } catch {
    return undefined;
  }
}

async function start(foreground: boolean, uplinkArgs: readonly string[]): Promise<void> {
  const uplinks = uplinkArgs.map(parseUplinkSpec);
  const dir = hostDir();
  const pid = await running(dir);
  if (pid !== undefined) throw new XenpvError('EEXIST', `xenpv host already running (pid ${pid}, run dir ${dir})`);
  await mkdir(dir, { recursive: true });
  if (foreground) {
    const { runHost } = await import('../../toolstack/host/daemon.js'); // the whole host: only here
    await runHost(dir, (line) => process.stderr.write(`${line}\n`), { uplinks });
    return;
  }
  const log = await open(logFile(dir), 'a');
  progress(`starting xenpv host (run dir ${dir})...`);
  const starting = daemonise({
    args: ['host', 'start', '-F', ...uplinkArgs.flatMap((u) => ['--uplink', u])],
    ready: async () => (await running(dir)) !== undefined,
    timeoutMs: 15_000,
    output: log.fd,
    env: { ...process.env, XENPV_RUN_DIR: dir },
  });
  const child = await starting.finally(() => log.close()); // the child has its own copy of the fd
  if (child === undefined) throw new XenpvError('ETIMEDOUT', `xenpv host did not start; see ${logFile(dir)}`);
  process.stdout.write(`xenpv host: pid ${child}, run dir ${dir}\n`);
  if (uplinks.length > 0) await printUplinks(dir);
}

async function stop(): Promise<void> {
  const dir = hostDir();
  const pid = await running(dir);
  if (pid === undefined) throw new XenpvError('EHOSTDOWN', `xenpv host is not running (run dir ${dir})`);
  progress('stopping xenpv host...');
  await callHost(dir, 'stop');
  for (let i = 0; i < 400; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(25);
  }
  throw new XenpvError('ETIMEDOUT', `xenpv host (pid ${pid}) did not stop`);
}

async function status(): Promise<void> {
  const dir = hostDir();
  const pid = await running(dir);
  if (pid === undefined) {
    const stale = await readFile(pidFile(dir), 'utf8').catch(() => undefined);
    throw new XenpvError('EHOSTDOWN', `xenpv host is not running (run dir ${dir})${stale ? ', stale pid file' : ''}`);
  }
  process.stdout.write(`xenpv host: pid ${pid}, run dir ${dir}\n`);
  await printUplinks(dir);
}

async function printUplinks(dir: string): Promise<void> {
  for (const line of formatUplinks(await callHost<UplinkRow[]>(dir, 'uplinks'))) process.stdout.write(`${line}\n`);
}

export function registerHost(program: Command): void {
  const host = program
    .command('host')
    .description('the host daemon: hypervisor model, xenstored, console daemon, backends')
    .addHelpText(
      'after',
      '\nRun dir: $XENPV_RUN_DIR, else /run/xenpv (root), $XDG_RUNTIME_DIR/xenpv or ~/.xenpv/run.\n' +
        'It holds control.sock, xenstored.sock (XENSTORED_PATH for xenstore-* tools), host.pid, host.log\n' +
        'and guest-<name>.log console logs. Hosts with different run dirs run side by side.\n\n' +
        'Uplinks: --uplink xenbr0=tap:xpv0 gives bridge xenbr0 a Linux TAP interface xpv0 as a port (as\n' +
        "dom0's NIC is a port of xenbr0 under xl), so Linux tools reach the guests: e.g. `ip addr add\n" +
        '10.0.0.254/24 dev xpv0; ip link set xpv0 up; ping 10.0.0.1`, or move xpv0 into a network namespace.\n' +
        'Needs root (CAP_NET_ADMIN) and /dev/net/tun; an uplink that cannot be created is reported by\n' +
        '`xenpv host status` with the reason, and the host runs without it.',
    );
  host
    .command('start')
    .description('start the host (returns once it is ready); run dir: $XENPV_RUN_DIR')
    .option('-F, --foreground', 'stay in the foreground')
    .option('--uplink <bridge=tap:ifname>', 'connect a bridge to a Linux TAP interface (repeatable), e.g. xenbr0=tap:xpv0', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action(async (o: { foreground?: boolean; uplink: string[] }) => start(o.foreground === true, o.uplink));
  host.command('stop').description('destroy every guest and stop the host').action(stop);
  host.command('status').description('is the host running; its bridge uplinks').action(status);
}
