/**
 * Parsing the vdev of a disk spec into its devid (xen-vbd-interface(7)); the numbering
 * itself (the forms, decodeDevid, the names) is xenbus/vdev.ts's, re-exported here. The order
 * of the checks follows libxl__device_disk_dev_number, so `d0p0` and `xvd…` are tried before
 * numbers, and numbers before `hd`/`sd`.
 */
import { ConfigError, COMMAND_LINE, type Origin } from './config-error.js';
import {
  decodeDevid,
  diskLetters,
  IDE0_MAJOR,
  IDE1_MAJOR,
  SD_MAJOR,
  VDEV_EXTENDED,
  XVD_MAJOR,
  XVD_MAX_DISK,
  XVD_MAX_PARTITION,
  type VdevBus,
  type VdevName,
} from '../../xenbus/vdev.js';

export * from '../../xenbus/vdev.js';

/** A parsed vdev: its devid, and the disk it names unless it was given as a bare number. */
export interface Vdev {
  readonly devid: number;
  readonly name?: VdevName;
}

const INT_MAX = 0x7fffffff;

interface BusLimits { readonly maxDisk: number; readonly maxPartition: number }
const LIMITS: Readonly<Record<VdevBus, BusLimits>> = {
  xvd: { maxDisk: XVD_MAX_DISK, maxPartition: XVD_MAX_PARTITION },
  hd: { maxDisk: 3, maxPartition: 63 },
  sd: { maxDisk: 15, maxPartition: 15 },
};

export function encodeVdev(v: VdevName): number {
  checkRange(v.bus, v.disk, v.partition, `${v.bus} disk ${v.disk} partition ${v.partition}`, COMMAND_LINE);
  switch (v.bus) {
    case 'xvd':
      if (v.disk <= 15 && v.partition <= 15) return (XVD_MAJOR << 8) | (v.disk << 4) | v.partition;
      return VDEV_EXTENDED | (v.disk << 8) | v.partition;
    case 'hd':
      return ((v.disk < 2 ? IDE0_MAJOR : IDE1_MAJOR) << 8) | ((v.disk & 1) << 6) | v.partition;
    case 'sd':
      return (SD_MAJOR << 8) | (v.disk << 4) | v.partition;
  }
}

/** Parses a vdev as written in a disk spec; errors point into `origin`. */
export function parseVdev(text: string, origin: Origin = COMMAND_LINE): Vdev {
  const dp = /^d([0-9]\w*?)(?:p([0-9]\w*))?$/.exec(text);
  if (dp !== null) {
    const disk = cNumber(dp[1] as string);
    const partition = dp[2] === undefined ? 0 : cNumber(dp[2]);
    if (disk !== undefined && partition !== undefined) return fromName('xvd', disk, partition, text, origin);
  }
  const named = /^(xvd|hd|sd)([a-z]+)([0-9]*)$/.exec(text);
  if (named !== null && named[1] === 'xvd') return fromLetters('xvd', named[2] as string, named[3] as string, text, origin);
  const num = cNumber(text);
  if (num !== undefined) {
    if (num > INT_MAX) throw ConfigError.within(origin, 0, `vdev number ${text} is larger than ${INT_MAX}`);
    const name = decodeDevid(num);
    return name === undefined ? { devid: num } : { devid: num, name };
  }
  if (named !== null) return fromLetters(named[1] as VdevBus, named[2] as string, named[3] as string, text, origin);
  throw ConfigError.within(origin, 0,
    `invalid vdev \`${text}': expecting xvdX, hdX, sdX (X a disk letter, then an optional partition), dNpM or a number; see xen-vbd-interface(7)`);
}

/** The devid of a vdev name, the number written as `virtual-device` and used in paths. */
export function vdevToDevid(text: string, origin: Origin = COMMAND_LINE): number {
  return parseVdev(text, origin).devid;
}

function fromLetters(bus: VdevBus, letters: string, part: string, text: string, origin: Origin): Vdev {
  let disk = -1;
  for (const c of letters) {
    disk = (disk + 1) * 26 + (c.charCodeAt(0) - 97);
    if (disk > LIMITS[bus].maxDisk) {
      throw ConfigError.within(origin, 0, `vdev \`${text}': ${bus} disk ${bus}${letters} is out of range (the last is ${bus}${diskLetters(LIMITS[bus].maxDisk)})`);
    }
  }
  if (part.startsWith('0')) {
    throw ConfigError.within(origin, bus.length + letters.length, `vdev \`${text}': partition numbers have no leading zero (the whole disk is ${bus}${letters})`);
  }
  return fromName(bus, disk, part === '' ? 0 : Number(part), text, origin);
}

function fromName(bus: VdevBus, disk: number, partition: number, text: string, origin: Origin): Vdev {
  checkRange(bus, disk, partition, `vdev \`${text}'`, origin);
  const name: VdevName = { bus, disk, partition };
  return { devid: encodeVdev(name), name };
}

function checkRange(bus: VdevBus, disk: number, partition: number, what: string, origin: Origin): void {
  const lim = LIMITS[bus];
  if (!Number.isInteger(disk) || disk < 0 || disk > lim.maxDisk) {
    throw ConfigError.within(origin, 0, `${what}: ${bus} disk number ${disk} is out of range 0..${lim.maxDisk}`);
  }
  if (!Number.isInteger(partition) || partition < 0 || partition > lim.maxPartition) {
    throw ConfigError.within(origin, 0, `${what}: ${bus} partition ${partition} is out of range 0..${lim.maxPartition}`);
  }
}

/** A non-negative C integer literal as `%i`/`strtoul(…, 0)` read it: 0x hex, 0 octal, decimal. */
function cNumber(text: string): number | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) return parseBounded(text.slice(2), 16);
  if (/^0[0-7]*$/.test(text)) return parseBounded(text, 8);
  if (/^[1-9][0-9]*$/.test(text)) return parseBounded(text, 10);
  return undefined;
}

function parseBounded(digits: string, radix: number): number {
  // Anything past 2^53 is out of every range anyway; keep it finite and above INT_MAX.
  return digits.length > 15 ? Number.MAX_SAFE_INTEGER : parseInt(digits, radix);
}
