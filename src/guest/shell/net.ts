/**
 * Network commands: `ip addr` (iproute2's `ip -s addr`), `net` (that plus the stack's
 * protocol counters) and `ping` (iputils: without `-c` it runs until Ctrl+C, then prints
 * the statistics as iputils does on SIGINT).
 */
import { Ping } from '../net/ping.js';
import { CommandError, UsageError, intArg, type Command, type CommandContext } from './command.js';
import { ipAddrLines, stackLines } from './format.js';
import type { ShellNic } from './world.js';

/** How often a running ping looks for replies to print (they arrive on the event loop). */
const PING_POLL_MS = 5;
/** iputils' count when `-c` is absent: forever, in practice. */
const PING_FOREVER = 0x7fffffff;

function selectNics(c: CommandContext, name: string | undefined): readonly ShellNic[] {
  const nics = c.world.nics();
  if (name === undefined) return nics;
  const n = nics.find((x) => x.name === name);
  if (n === undefined) throw new CommandError(`Device "${name}" does not exist.`);
  return [n];
}

export const ipCommand: Command = {
  usage: ['ip addr [show] [<ifname>]'],
  summary: 'addresses and counters',
  async run(c) {
    const [obj, ...rest] = c.args;
    if (obj === undefined || !['a', 'addr', 'address'].includes(obj)) throw new UsageError(obj === undefined ? 'missing object' : `unknown object '${obj}'`);
    const args = rest[0] === 'show' ? rest.slice(1) : rest;
    if (args.length > 1) throw new UsageError('too many arguments');
    const all = c.world.nics();
    for (const n of selectNics(c, args[0])) for (const l of ipAddrLines(n, all.findIndex((x) => x.devid === n.devid) + 1)) c.out(l);
  },
};

export const netCommand: Command = {
  usage: ['net'],
  summary: 'interfaces and stack counters',
  async run(c) {
    if (c.args.length > 0) throw new UsageError('no arguments');
    const nics = c.world.nics();
    if (nics.length === 0) c.out('no network interfaces');
    nics.forEach((n, i) => {
      for (const l of ipAddrLines(n, i + 1)) c.out(l);
      for (const l of stackLines(n)) c.out(l);
    });
  },
};

export interface PingArgs {
  readonly dst: string;
  readonly count: number;
  readonly intervalMs: number;
  readonly size: number;
  readonly timeoutMs: number;
  readonly ifname: string | undefined;
}

/** `[-c count] [-i seconds] [-s size] [-W seconds] [-I ifname] <destination>`. */
export function parsePingArgs(args: readonly string[]): PingArgs {
  const o = { count: PING_FOREVER, intervalMs: 1000, size: 56, timeoutMs: 10_000, ifname: undefined as string | undefined };
  let dst: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`option ${a} needs a value`);
      return v;
    };
    if (a === '-c') o.count = intArg(value(), 'count', PING_FOREVER, 1);
    else if (a === '-i') o.intervalMs = seconds(value(), 'interval', 0.01);
    else if (a === '-W') o.timeoutMs = seconds(value(), 'timeout', 0.001);
    else if (a === '-s') o.size = intArg(value(), 'packet size', 65507);
    else if (a === '-I') o.ifname = value();
    else if (a.startsWith('-')) throw new UsageError(`invalid option ${a}`);
    else if (dst === undefined) dst = a;
    else throw new UsageError('one destination only');
  }
  if (dst === undefined) throw new UsageError('missing destination');
  return { ...o, dst };
}

function seconds(text: string, what: string, min: number): number {
  const v = Number(text);
  if (!/^[0-9]*\.?[0-9]+$/.test(text) || !(v >= min) || v > 3600) throw new UsageError(`bad ${what} '${text}' (${min}..3600 s)`);
  return Math.round(v * 1000);
}

export const pingCommand: Command = {
  usage: ['ping [-c N] [-i secs] [-s size] [-W secs]', '     [-I ifname] <ipv4>'],
  summary: 'ICMP echo (Ctrl+C stops it)',
  async run(c) {
    const a = parsePingArgs(c.args);
    const nic = a.ifname === undefined ? c.world.nics().find((n) => n.stack !== undefined) : selectNics(c, a.ifname)[0];
    const stack = nic?.stack;
    if (stack === undefined) throw new CommandError('connect: Network is unreachable (no interface with an address)');
    let p: Ping;
    try {
      p = new Ping(stack, { dst: a.dst, count: a.count, intervalMs: a.intervalMs, size: a.size, timeoutMs: a.timeoutMs });
    } catch (err) {
      throw new CommandError(err instanceof Error ? err.message : String(err));
    }
    const show = (): void => {
      for (const line of p.takeLines()) c.out(line);
    };
    try {
      while (!c.signal.aborted) {
        p.poll();
        show();
        if (p.done) return;
        await c.world.sleep(PING_POLL_MS, c.signal);
      }
      show(); // replies that came while we slept
      for (const l of p.summary()) c.out(l);
    } finally {
      if (!p.done) p.dispose(); // a finished Ping disposed itself
    }
  },
};
