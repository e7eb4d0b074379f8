/**
 * `xenpv domstats [DOM...] [--json]` (virsh domstats' dotted keys: state.*, balloon.*, vcpu.*,
 * block.N.{rd,wr,fl}.*, net.N.{rx,tx}.*) and `xenpv top` (xentop's columns; `-b` batch mode
 * prints plain rows for scripts, `-i N` iterations, `-d SECONDS` between them).
 */
import type { Command } from 'commander';
import { XenpvError, sleep } from '../../base/index.js';
import type { DomainRow } from '../../toolstack/index.js';
import { rpc } from './host-client.js';

interface DomStats {
  readonly name: string;
  readonly domid: number;
  readonly stats: Record<string, number | string>;
}

async function domstats(doms: string[], o: { json?: boolean }): Promise<void> {
  const all = doms.length === 0 ? await rpc<DomStats[]>('domstats') : await Promise.all(doms.map(async (domain) => (await rpc<DomStats[]>('domstats', { domain }))[0]!));
  if (o.json === true) {
    process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
    return;
  }
  for (const d of all) {
    process.stdout.write(`Domain: '${d.name}'\n`);
    for (const [k, v] of Object.entries(d.stats)) process.stdout.write(`  ${k}=${v}\n`);
    process.stdout.write('\n');
  }
}

/** xentop's state string: dsbcpr order (dying, shutdown, blocked, crashed, paused, running). */
function xentopState(xl: string): string {
  const crashed = xl[3] === 's' && xl[4] === 'c';
  return `${xl[5] === 'd' ? 'd' : '-'}${xl[3] === 's' && !crashed ? 's' : '-'}${xl[1] === 'b' ? 'b' : '-'}${crashed ? 'c' : '-'}${xl[2] === 'p' ? 'p' : '-'}${xl[0] === 'r' ? 'r' : '-'}`;
}

const COLUMNS: readonly [string, number][] = [
  ['NAME', 10], ['STATE', 6], ['CPU(sec)', 10], ['CPU(%)', 6], ['MEM(k)', 10], ['MEM(%)', 6], ['MAXMEM(k)', 10], ['MAXMEM(%)', 9],
  ['VCPUS', 5], ['NETS', 4], ['NETTX(k)', 8], ['NETRX(k)', 8], ['VBDS', 4], ['VBD_OO', 8], ['VBD_RD', 8], ['VBD_WR', 8],
  ['VBD_RSECT', 10], ['VBD_WSECT', 10], ['SSID', 4],
];

function row(cells: readonly (string | number)[]): string {
  return cells.map((c, i) => String(c).padStart(COLUMNS[i]![1])).join(' ');
}

function sum(s: Record<string, number | string>, re: RegExp): number {
  return Object.entries(s).reduce((n, [k, v]) => (re.test(k) && typeof v === 'number' ? n + v : n), 0);
}

async function frame(totalKiB: number, prevCpu: Map<number, number>, dtSec: number): Promise<string> {
  const rows = await rpc<DomainRow[]>('list');
  const stats = new Map((await rpc<DomStats[]>('domstats')).map((d) => [d.domid, d.stats]));
  const count = (c: string, at: number): number => rows.filter((r) => r.state[at] === c).length;
  const lines = [
    `xentop - ${new Date().toTimeString().slice(0, 8)}   Xen 4.17-xenpv`,
    `${rows.length} domains: ${count('r', 0)} running, ${count('b', 1)} blocked, ${count('p', 2)} paused, ${count('c', 4)} crashed, ${count('d', 5)} dying, ${count('s', 3)} shutdown `,
    `Mem: ${totalKiB}k total, ${rows.reduce((n, r) => n + r.memMiB * 1024, 0)}k used, ${totalKiB - rows.reduce((n, r) => n + r.memMiB * 1024, 0)}k free    CPUs: ${(await import('node:os')).cpus().length} @ 0MHz`,
    row(COLUMNS.map(([h]) => h)),
  ];
  for (const r of rows) {
    const s = stats.get(r.domid) ?? {};
    const cpuPct = dtSec > 0 ? ((r.cpuSeconds - (prevCpu.get(r.domid) ?? r.cpuSeconds)) / dtSec) * 100 : 0;
    prevCpu.set(r.domid, r.cpuSeconds);
    const memK = r.memMiB * 1024;
    lines.push(row([
      r.name.slice(0, 10), xentopState(r.state), Math.floor(r.cpuSeconds), cpuPct.toFixed(1), memK, ((memK / totalKiB) * 100).toFixed(1),
      memK, ((memK / totalKiB) * 100).toFixed(1), r.vcpus, Number(s['net.count'] ?? 0),
      Math.floor(sum(s, /^net\.\d+\.rx\.bytes$/) / 1024), Math.floor(sum(s, /^net\.\d+\.tx\.bytes$/) / 1024),
      Number(s['block.count'] ?? 0), 0, sum(s, /^block\.\d+\.rd\.reqs$/), sum(s, /^block\.\d+\.wr\.reqs$/),
      Math.floor(sum(s, /^block\.\d+\.rd\.bytes$/) / 512), Math.floor(sum(s, /^block\.\d+\.wr\.bytes$/) / 512), 0,
    ]));
  }
  return `${lines.join('\n')}\n`;
}

async function top(o: { batch?: boolean; iterations?: string; delay?: string }): Promise<void> {
  const iterations = o.iterations === undefined ? (o.batch === true ? 1 : Infinity) : Number(o.iterations);
  const delay = Number(o.delay ?? '3');
  if (!(iterations >= 1) || !(delay > 0)) throw new XenpvError('EINVAL', 'bad -i or -d');
  const info = await rpc<[string, string][]>('info');
  const totalKiB = Number(info.find(([k]) => k === 'total_memory')?.[1] ?? 0) * 1024;
  const prev = new Map<number, number>();
  let last = Date.now();
  const keys = interactiveKeys(o.batch !== true);
  try {
    await frames(iterations, delay, keys, async (i) => {
      const now = Date.now();
      const text = await frame(totalKiB, prev, i === 0 ? 0 : (now - last) / 1000);
      last = now;
      // Interactive: redraw in place; batch: frames one after another, as xentop -b.
      process.stdout.write(o.batch === true || process.stdout.isTTY !== true ? text : `\x1b[H\x1b[2J${text}`);
    });
  } finally {
    keys.stop();
  }
}

/** xentop's Q / Esc (and Ctrl+C) on a terminal end the loop; in batch mode, no keys. */
function interactiveKeys(enabled: boolean): { quit: boolean; stop(): void } {
  const state = { quit: false, stop: () => undefined as void };
  if (!enabled || process.stdin.isTTY !== true) return state;
  process.stdin.setRawMode(true);
  const onKey = (b: Buffer): void => {
    if ([0x71, 0x51, 0x1b, 0x03].includes(b[0]!)) state.quit = true;
  };
  process.stdin.on('data', onKey);
  state.stop = () => {
    process.stdin.off('data', onKey);
    process.stdin.setRawMode(false);
    process.stdin.pause();
  };
  return state;
}

async function frames(iterations: number, delay: number, keys: { quit: boolean }, draw: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < iterations && !keys.quit; i++) {
    if (i > 0) {
      const end = Date.now() + delay * 1000;
      while (Date.now() < end && !keys.quit) await sleep(Math.min(100, end - Date.now()));
      if (keys.quit) return;
    }
    await draw(i);
  }
}

export function registerStats(program: Command): void {
  program.command('domstats').description('Per-domain statistics with virsh domstats keys').argument('[domain...]')
    .option('--json', 'one JSON array').action(domstats);
  program.command('top').description('Monitor a host and the domains in real time')
    .option('-b, --batch', 'batch mode: plain frames for scripts')
    .option('-i, --iterations <n>', 'number of frames')
    .option('-d, --delay <seconds>', 'seconds between frames (default 3)')
    .action(top);
}
