/**
 * xl block-attach/-detach/-list and network-attach/-detach/-list, with xl's list formats
 * (tools/xl/xl_block.c, xl_nic.c).
 */
import type { Command } from 'commander';
import { sprintf } from 'sprintf-js';
import type { BlockRow, NicRow } from '../../toolstack/index.js';
import { rpc } from './host-client.js';

export function formatBlockList(rows: readonly BlockRow[]): string {
  const out = [sprintf('%-5s %-3s %-6s %-5s %-6s %-8s %-30s', 'Vdev', 'BE', 'handle', 'state', 'evt-ch', 'ring-ref', 'BE-path')];
  for (const r of rows) out.push(sprintf('%-5d %-3d %-6d %-5d %-6d %-8d %-30s', r.vdev, r.be, r.handle, r.state, r.evtch, r.ringRef, r.bePath));
  return `${out.join('\n')}\n`;
}

export function formatNetworkList(rows: readonly NicRow[]): string {
  const out = [sprintf('%-3s %-2s %-17s %-6s %-5s %-6s %5s/%-5s %-30s', 'Idx', 'BE', 'Mac Addr.', 'handle', 'state', 'evt-ch', 'tx-', 'rx-ring-ref', 'BE-path')];
  for (const r of rows) {
    out.push(sprintf('%-3d %-2d ', r.idx, r.be) + r.mac + sprintf('%6d %5d %6d %5d/%-11d %-30s', r.handle, r.state, r.evtch, r.txRef, r.rxRef, r.bePath));
  }
  return `${out.join('\n')}\n`;
}

async function listEach<T>(method: string, doms: string[], format: (rows: T[]) => string): Promise<void> {
  for (const domain of doms) process.stdout.write(format(await rpc<T[]>(method, { domain })));
}

export function registerDevices(program: Command): void {
  program.command('block-attach').description('Create a new virtual block device')
    .argument('<domain>').argument('<disk-spec...>', "xl-disk-configuration(5), e.g. 'format=raw, vdev=xvdb, access=rw, target=disk.img'")
    .action(async (domain: string, spec: string[]) => void (await rpc('block-attach', { domain, spec, cwd: process.cwd() })));
  program.command('block-detach').description("Destroy a domain's virtual block device")
    .argument('<domain>').argument('<devid>', 'vdev name (xvdb) or number (51728)').option('--force', 'do not wait for the guest')
    .action(async (domain: string, vdev: string, o: { force?: boolean }) => {
      const r = await rpc<{ timedOut: boolean }>('block-detach', { domain, vdev, force: o.force === true });
      if (r.timedOut) process.stderr.write(`the guest did not release ${vdev} in time; removed anyway\n`);
    });
  program.command('block-list').description('List virtual block devices for a domain').argument('<domain...>')
    .action(async (doms: string[]) => listEach<BlockRow>('block-list', doms, formatBlockList));
  program.command('network-attach').description('Create a new virtual network device')
    .argument('<domain>').argument('[vif-spec...]', "xl-network-configuration(5), e.g. 'mac=00:16:3e:00:00:01,bridge=xenbr0'")
    .action(async (domain: string, spec: string[]) => void (await rpc('network-attach', { domain, spec })));
  program.command('network-detach').description("Destroy a domain's virtual network device")
    .argument('<domain>').argument('<devid|mac>')
    .action(async (domain: string, which: string) => {
      const r = await rpc<{ timedOut: boolean }>('network-detach', { domain, which });
      if (r.timedOut) process.stderr.write(`the guest did not release vif ${which} in time; removed anyway\n`);
    });
  program.command('network-list').description('List virtual network interfaces for a domain').argument('<domain...>')
    .action(async (doms: string[]) => listEach<NicRow>('network-list', doms, formatNetworkList));
}
