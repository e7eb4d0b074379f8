/**
 * The shell's commands, one table (`help` lists it in this order).
 */
import { blkCommand } from './blk.js';
import { CommandError, UsageError, intArg, type Command } from './command.js';
import { devicesTable, table, uptimeLine } from './format.js';
import { ipCommand, netCommand, pingCommand } from './net.js';

function noArgs(args: readonly string[]): void {
  if (args.length > 0) throw new UsageError('no arguments');
}

const devices: Command = {
  usage: ['devices'],
  summary: 'disks and NICs: size, MAC/IP, state',
  async run(c) {
    noArgs(c.args);
    for (const l of devicesTable(c.world.disks(), c.world.nics())) c.out(l);
  },
};

const echo: Command = {
  usage: ['echo [word...]'],
  summary: 'print the words',
  async run(c) {
    c.out(c.args.join(' '));
  },
};

const uptime: Command = {
  usage: ['uptime'],
  summary: 'time since boot',
  async run(c) {
    noArgs(c.args);
    c.out(uptimeLine(c.world.wallClock(), c.world.now() - c.world.bootedAt));
  },
};

const sleep: Command = {
  usage: ['sleep <seconds>'],
  summary: 'wait (Ctrl+C stops it)',
  async run(c) {
    if (c.args.length !== 1) throw new UsageError('one argument');
    await c.world.sleep(intArg(c.args[0], 'seconds', 3600) * 1000, c.signal);
  },
};

/** `poweroff` and `reboot`: say so, then stop the guest with that reason. */
function stopCommand(reason: 'poweroff' | 'reboot', summary: string, message: string): Command {
  return {
    usage: [reason],
    summary,
    async run(c) {
      noArgs(c.args);
      c.out(message);
      await c.world.shutdown(reason);
    },
  };
}

const poweroff = stopCommand('poweroff', 'stop the guest (reason poweroff)', 'Powering off.');
const reboot = stopCommand('reboot', 'restart the guest (on_reboot)', 'Rebooting.');

const crash: Command = {
  usage: ['crash <message...>'],
  summary: 'crash the guest (for tests)',
  async run(c) {
    if (c.args.length === 0) throw new UsageError('missing message');
    await c.world.shutdown('crash', c.args.join(' '));
  },
};

const exit: Command = {
  usage: ['exit'],
  summary: 'use poweroff or reboot instead',
  async run() {
    throw new CommandError('this shell is the guest\'s only program: use poweroff or reboot');
  },
};

const help: Command = {
  usage: ['help'],
  summary: 'this list',
  async run(c) {
    noArgs(c.args);
    c.out('Commands (Ctrl+C cancels a line or a running command, Ctrl+U erases the line):');
    const rows: string[][] = [];
    for (const cmd of Object.values(COMMANDS)) cmd.usage.forEach((u, i) => rows.push([`  ${u}`, i === 0 ? cmd.summary : '']));
    for (const l of table(rows)) c.out(l.trimEnd());
  },
};

export const COMMANDS: Readonly<Record<string, Command>> = {
  help,
  devices,
  blk: blkCommand,
  ip: ipCommand,
  net: netCommand,
  ping: pingCommand,
  uptime,
  echo,
  sleep,
  poweroff,
  reboot,
  crash,
  exit,
};
