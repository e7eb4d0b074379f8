/**
 * xl's domain commands: create, list, destroy, shutdown, reboot, pause, unpause, info, console,
 * vcpu-list, vcpu-pin.
 * Formats are xl's (tools/xl/xl_info.c): list's columns and state letters, info's
 * `name : value` lines.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { sprintf } from 'sprintf-js';
import { XenpvError, sleep } from '../../base/index.js';
import type { DomainRow, HostInfo, VcpuRow } from '../../toolstack/index.js';
import { attachConsole } from './console.js';
import { progress, rpc } from './host-client.js';

const LIST_HEADER = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';

export function formatList(rows: readonly DomainRow[]): string {
  const lines = [LIST_HEADER];
  for (const r of rows) lines.push(sprintf('%-40s %5d %5d %5d     %s  %8.1f', r.name, r.domid, r.memMiB, r.vcpus, r.state, r.cpuSeconds));
  return `${lines.join('\n')}\n`;
}

/** xl vcpu-list's table (tools/xl/xl_vcpu.c), with a line under a vCPU whose configured pin failed. */
export function formatVcpuList(rows: readonly VcpuRow[]): string {
  const lines = [sprintf('%-32s %5s %5s %5s %5s %9s %s', 'Name', 'ID', 'VCPU', 'CPU', 'State', 'Time(s)', 'Affinity (Hard / Soft)')];
  for (const r of rows) {
    lines.push(sprintf('%-32s %5d %5d %5s   %s  %9.1f  %s / %s', r.name, r.domid, r.vcpu, r.cpu === undefined ? '-' : String(r.cpu), r.state, r.cpuSeconds, r.hard, r.soft));
    if (r.pinError !== undefined) lines.push(`  (cpus= could not be applied: ${r.pinError})`);
  }
  return `${lines.join('\n')}\n`;
}

async function waitGone(domid: number, name: string): Promise<void> {
  for (;;) {
    const rows = await rpc<DomainRow[]>('list');
    if (!rows.some((r) => r.domid === domid && r.name === name)) return;
    await sleep(100);
  }
}

interface CreateOpts { console?: boolean; foreground?: boolean; paused?: boolean; quiet?: boolean }

async function create(config: string, overrides: string[], o: CreateOpts): Promise<void> {
  if (o.quiet !== true) progress(`Parsing config from ${config}`);
  const r = await rpc<{ domid: number; name: string; warnings: string[] }>('create', {
    config: resolve(config), cwd: process.cwd(), overrides, paused: o.paused === true,
  });
  for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
  if (o.quiet !== true) progress(`Domain ${r.name} created (domid ${r.domid})`);
  if (o.console === true) await attachConsole(String(r.domid));
  else if (o.foreground === true) await waitGone(r.domid, r.name);
}

function domainCommand(program: Command, name: string, description: string, method: string): void {
  program.command(name).description(description).argument('<domain>', 'domain name or id')
    .action(async (domain: string) => void (await rpc(method, { domain })));
}

async function shutdown(domain: string, o: { wait?: number }, reboot: boolean): Promise<void> {
  const waitMs = o.wait === undefined ? undefined : 60_000;
  if (waitMs !== undefined) progress(`Waiting for domain ${domain} to shut down...`);
  await rpc('shutdown', { domain, reboot, ...(waitMs === undefined ? {} : { waitMs }) });
}

async function info(field: string | undefined): Promise<void> {
  const rows = await rpc<HostInfo>('info');
  if (field !== undefined) {
    const hit = rows.find(([k]) => k === field);
    if (hit === undefined) throw new XenpvError('EINVAL', `unknown info field ${field}`);
    process.stdout.write(`${hit[1]}\n`);
    return;
  }
  process.stdout.write(rows.map(([k, v]) => sprintf('%-23s: %s\n', k, v)).join(''));
}

export function registerDomain(program: Command): void {
  program.command('create').description('Create a domain from config file <filename>')
    .argument('<config>', 'xl.cfg file').argument('[key=value...]', 'settings that override the file')
    .option('-c, --console', 'attach to the console after creating')
    .option('-F, --foreground', 'stay in the foreground until the domain dies')
    .option('-p, --paused', 'leave the domain paused')
    .option('-q, --quiet', 'no progress lines')
    .action(create);
  program.command('list').alias('li').description('List information about all/some domains')
    .argument('[domain...]').option('-l, --long', 'JSON')
    .action(async (doms: string[], o: { long?: boolean }) => {
      let rows = await rpc<DomainRow[]>('list');
      if (doms.length > 0) {
        rows = rows.filter((r) => doms.includes(r.name) || doms.includes(String(r.domid)));
        const missing = doms.filter((d) => !rows.some((r) => r.name === d || String(r.domid) === d));
        if (missing.length > 0) throw new XenpvError('ESRCH', `domain ${missing[0]} not found`);
      }
      if (o.long === true) process.stdout.write(`${JSON.stringify(rows.map((r) => ({ domid: r.domid, config: r.config ?? { name: r.name } })), null, 4)}\n`);
      else process.stdout.write(formatList(rows));
    });
  domainCommand(program, 'destroy', 'Terminate a domain immediately', 'destroy');
  domainCommand(program, 'pause', 'Pause execution of a domain', 'pause');
  domainCommand(program, 'unpause', 'Unpause a paused domain', 'unpause');
  program.command('shutdown').description('Issue a shutdown signal to a domain').argument('<domain>')
    .option('-w, --wait', 'wait for the domain to complete shutdown')
    .action(async (domain: string, o: { wait?: number }) => shutdown(domain, o, false));
  program.command('reboot').description('Issue a reboot signal to a domain').argument('<domain>')
    .action(async (domain: string) => shutdown(domain, {}, true));
  program.command('info').description('Get information about Xen host').argument('[field]').action(info);
  program.command('vcpu-list').description('List the VCPUs for all/some domains').argument('[domain...]')
    .action(async (doms: string[]) => {
      const rows = doms.length === 0 ? await rpc<VcpuRow[]>('vcpu-list') : (await Promise.all(doms.map((domain) => rpc<VcpuRow[]>('vcpu-list', { domain })))).flat();
      process.stdout.write(formatVcpuList(rows));
    });
  program.command('vcpu-pin').description('Set which CPUs a VCPU can use').argument('<domain>').argument('<vcpu>', 'a vCPU number or all')
    .argument('<cpus>', 'hard affinity, a CPU list (all, 2, 0-3,^1), or - to leave it').argument('[soft]', 'soft affinity: only all or - (no soft affinity here)')
    .action(async (domain: string, vcpu: string, cpus: string, soft: string | undefined) => {
      if (soft !== undefined && soft !== 'all' && soft !== '-') throw new XenpvError('EOPNOTSUPP', 'soft affinity is not supported (give all or -)');
      // xl: `-` leaves that affinity as it is.
      if (cpus !== '-') await rpc('vcpu-pin', { domain, vcpu, cpus });
    });
  program.command('console').description("Attach to domain's console (Ctrl+] detaches)").argument('<domain>')
    .action(async (domain: string) => attachConsole(domain));
}
