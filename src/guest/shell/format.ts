/**
 * The shell's output formats, pure: `hexdump -C`, sizes, the devices table, `blk info`,
 * iproute2's `ip -s addr`, procps' `uptime`.
 */
import type { BlkCounters, BlkInfo } from '../../devices/blk/index.js';
import { formatIpv4 } from '../net/addr.js';
import { devidToVdev } from '../../xenbus/vdev.js';
import type { ShellDisk, ShellNic } from './world.js';

/** blkif.h: `sectors` and every sector number are 512-byte units, whatever `sector-size` says. */
export const SECTOR = 512;

const hex2 = (b: number): string => b.toString(16).padStart(2, '0');

/**
 * `hexdump -C`, offsets starting at `base`: 16 bytes a line in two groups of 8, the
 * printable ASCII between bars, a line equal to the one before shown once as `*`, and the
 * end offset last.
 */
export function hexdump(bytes: Uint8Array, base = 0): string[] {
  const out: string[] = [];
  let previous: string | undefined;
  let starred = false;
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const key = Buffer.from(row).toString('hex');
    if (key === previous && row.length === 16) {
      if (!starred) out.push('*');
      starred = true;
      continue;
    }
    previous = key;
    starred = false;
    out.push(hexLine(row, base + at));
  }
  out.push(offset(base + bytes.length));
  return out;
}

function offset(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function hexLine(row: Uint8Array, at: number): string {
  let hex = '';
  let ascii = '';
  for (let i = 0; i < 16; i++) {
    if (i === 8) hex += ' ';
    const b = row[i];
    hex += b === undefined ? '   ' : `${hex2(b)} `;
    if (b !== undefined) ascii += b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : '.';
  }
  return `${offset(at)}  ${hex} |${ascii}|`;
}

/** Binary units with two decimals, as `lsblk` prints them: `4.00 MiB`. */
export function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} B` : `${v.toFixed(2)} ${units[u]}`;
}

/**
 * The Linux name of a vbd devid (xen-vbd-interface(7)): `202<<8 | disk<<4 | part` is
 * xvd, `1<<28 | disk<<8 | part` extended xvd, 8 is sd, 3 and 22 are hd. Others: the number.
 */
export function vdevName(devid: number): string {
  return devidToVdev(devid) ?? String(devid);
}

/** Left-aligned columns, two spaces apart; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

function nicAddress(nic: ShellNic): string {
  const iface = nic.stack?.iface;
  return iface === undefined ? 'no address' : `${formatIpv4(iface.address)}/${iface.prefix}`;
}

/** `devices`: one row per vbd and vif. */
export function devicesTable(disks: readonly ShellDisk[], nics: readonly ShellNic[]): string[] {
  const rows: string[][] = [['TYPE', 'NAME', 'DEVID', 'STATE', 'SIZE', 'DETAILS']];
  for (const d of disks) {
    const i = d.info;
    const size = i === undefined ? '-' : humanSize(i.sectors * SECTOR);
    const details = i === undefined ? '-' : `${i.readOnly ? 'ro' : 'rw'}, ${i.sectors} sectors, ${i.sectorSize} B blocks`;
    rows.push(['vbd', d.name, String(d.devid), d.state, size, details]);
  }
  for (const n of nics) rows.push(['vif', n.name, String(n.devid), n.state, '-', `${n.mac ?? '-'}  ${nicAddress(n)}  mtu ${n.mtu}`]);
  if (rows.length === 1) return ['no devices'];
  return table(rows);
}

function featureWords(info: BlkInfo): string {
  const f = info.features;
  const words = [
    f.flush ? 'flush' : f.barrier ? 'barrier' : 'no-flush',
    ...(f.discard ? [`discard(granularity ${f.discardGranularity}${f.discardSecure ? ', secure' : ''})`] : []),
    ...(f.persistent ? ['persistent-grants'] : []),
    ...(f.indirectSegments > 0 ? [`indirect-segments=${f.indirectSegments}`] : []),
    `queues=${f.queues}`, `ring-pages=${f.ringPages}`, `protocol=${f.protocol}`,
  ];
  return words.join(' ');
}

function counterLine(c: BlkCounters): string {
  const one = (k: keyof BlkCounters): string => `${k} ${c[k].requests} req ${c[k].bytes} B ${c[k].errors} err`;
  return `${one('read')}; ${one('write')}; ${one('flush')}; ${one('discard')}`;
}

/** `blk info`: one block of lines per disk. */
export function blkInfoLines(d: ShellDisk): string[] {
  const head = `${d.name}: device/vbd/${d.devid}, ${d.state}`;
  const i = d.info;
  if (i === undefined) return [head, `  counters:  ${counterLine(d.counters)}`];
  return [
    head,
    `  size:      ${i.sectors} sectors x 512 B = ${i.sectors * SECTOR} B (${humanSize(i.sectors * SECTOR)})`,
    `  blocks:    logical ${i.sectorSize} B, physical ${i.physicalSectorSize} B`,
    `  mode:      ${i.readOnly ? 'ro' : 'rw'}${i.cdrom ? ', cdrom' : ''}${i.removable ? ', removable' : ''}`,
    `  features:  ${featureWords(i)}`,
    `  counters:  ${counterLine(d.counters)}`,
  ];
}

/** iproute2's `ip -s addr` for one NIC (index = its place in the list, from 1). */
export function ipAddrLines(nic: ShellNic, index: number): string[] {
  const up = nic.state === 'up';
  const flags = up ? '<BROADCAST,MULTICAST,UP,LOWER_UP>' : '<BROADCAST,MULTICAST>';
  const lines = [
    `${index}: ${nic.name}: ${flags} mtu ${nic.mtu} state ${up ? 'UP' : 'DOWN'}${up ? '' : ` (${nic.state})`}`,
    `    link/ether ${nic.mac ?? '00:00:00:00:00:00'} brd ff:ff:ff:ff:ff:ff`,
  ];
  const iface = nic.stack?.iface;
  if (iface !== undefined) {
    const brd = iface.broadcast === undefined ? '' : ` brd ${formatIpv4(iface.broadcast)}`;
    lines.push(`    inet ${formatIpv4(iface.address)}/${iface.prefix}${brd} scope global ${nic.name}`);
  }
  const c = nic.counters;
  lines.push(
    ...table([
      ['    RX:', 'bytes', 'packets', 'errors', 'dropped'],
      ['    ', String(c.rxBytes), String(c.rxPackets), String(c.rxErrors), String(c.rxDropped)],
      ['    TX:', 'bytes', 'packets', 'errors', 'dropped'],
      ['    ', String(c.txBytes), String(c.txPackets), String(c.txErrors), String(c.txDropped)],
    ]),
  );
  return lines;
}

/** The stack's protocol counters (`net`), like `netstat -s` in a few lines. */
export function stackLines(nic: ShellNic): string[] {
  const s = nic.stack;
  if (s === undefined) return [`${nic.name}: no IPv4 stack`];
  const c = s.counters;
  return [
    `${nic.name}: ip rx ${c.ipRx} no-route ${c.ipNoRoute}; frames rx ${c.rxFrames} tx ${c.txFrames} dropped ${c.rxDropped}`,
    `  arp: rx ${c.arpRx} requests-tx ${c.arpRequestsTx} replies-tx ${c.arpRepliesTx} unresolved-drops ${c.arpDrops}`,
    `  icmp: echo-requests-rx ${c.icmpEchoRequestsRx} echo-replies-tx ${c.icmpEchoRepliesTx} echo-replies-rx ${c.icmpEchoRepliesRx} unreachable-rx ${c.icmpUnreachRx}`,
    `  udp: rx ${c.udpRx} tx ${c.udpTx} no-port ${c.udpNoPort} bad-checksum ${c.udpBadChecksum}`,
  ];
}

/** procps `uptime` without users and load: ` 08:31:07 up  1:02` / `up 5 min` / `up 2 days,  3:04`. */
export function uptimeLine(now: Date, upMs: number): string {
  const clock = [now.getUTCHours(), now.getUTCMinutes(), now.getUTCSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const totalMin = Math.floor(upMs / 60_000);
  const days = Math.floor(totalMin / 1440);
  const hours = Math.floor((totalMin % 1440) / 60);
  const mins = totalMin % 60;
  let up = days > 0 ? `${days} day${days === 1 ? '' : 's'}, ` : '';
  up += hours > 0 ? `${String(hours).padStart(2)}:${String(mins).padStart(2, '0')}` : `${mins} min`;
  return ` ${clock} up ${up},  ${(upMs / 1000).toFixed(2)} s since boot`;
}
