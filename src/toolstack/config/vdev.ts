/**
 * Virtual disk names and their xenstore numbers, per xen-vbd-interface(7):
 *
 *      1 << 28 | disk << 8 | partition      xvd, disks or partitions 16 onwards
 *    202 << 8 | disk << 4 | partition      xvd, disks and partitions up to 15
 *      8 << 8 | disk << 4 | partition      sd, disks and partitions up to 15
 *      3 << 8 | disk << 6 | partition      hd, disks 0..1, partitions 0..63
 *     22 << 8 | (disk-2) << 6 | partition  hd, disks 2..3, partitions 0..63
 *     2 << 28 onwards                      reserved for future use
 *
 * "The 1<<28 format handles disks up to (1<<20)-1 and partitions up to 255." Names are
 * `xvda`…`xvdz`, `xvdaa`… (bijective base 26), a partition number without leading zeros,
 * or `dNpM`. A bare number (decimal, 0x hex or 0 octal, at most INT_MAX) is the devid
 * itself: "this number is written directly to xenstore". The order of the checks follows
 * libxl__device_disk_dev_number, so `d0p0` and `xvd…` are tried before numbers, and
 * numbers before `hd`/`sd`.
 */
import { ConfigError, COMMAND_LINE, type Origin } from './config-error.js';

export type VdevBus = 'xvd' | 'hd' | 'sd';

export interface VdevName {
  readonly bus: VdevBus;
  readonly disk: number;
  readonly partition: number;
}

/** A parsed vdev: its devid, and the disk it names unless it was given as a bare number. */
export interface Vdev {
  readonly devid: number;
  readonly name?: VdevName;
}

export const XVD_MAJOR = 202;
export const SD_MAJOR = 8;
export const IDE0_MAJOR = 3;
export const IDE1_MAJOR = 22;
export const VDEV_EXTENDED = 1 << 28;
/** Limits of the extended form: disk < 2^20, partition < 256. */
export const XVD_MAX_DISK = (1 << 20) - 1;
export const XVD_MAX_PARTITION = 255;
const INT_MAX = 0x7fffffff;

interface BusLimits { readonly maxDisk: number; readonly maxPartition: number }
const LIMITS: Readonly<Record<VdevBus, BusLimits>> = {
  xvd: { maxDisk: XVD_MAX_DISK, maxPartition: XVD_MAX_PARTITION },
  hd: { maxDisk: 3, maxPartition: 63 },
  sd: { maxDisk: 15, maxPartition: 15 },
};

/** `a`…`z`, `aa`…: the bijective base-26 letters of disk `index`. */
export function diskLetters(index: number): string {
  let n = index;
  let out = '';
  do {
    out = String.fromCharCode(97 + (n % 26)) + out;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return out;
}

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

/** The disk a devid names, or undefined for numbers outside every documented form. */
export function decodeDevid(devid: number): VdevName | undefined {
  if (!Number.isInteger(devid) || devid < 0 || devid > INT_MAX) return undefined;
  if (devid >= VDEV_EXTENDED) {
    if (devid >= 2 * VDEV_EXTENDED) return undefined; // reserved for future use
    return { bus: 'xvd', disk: (devid >> 8) & XVD_MAX_DISK, partition: devid & 0xff };
  }
  const major = devid >> 8;
  switch (major) {
    case XVD_MAJOR: return { bus: 'xvd', disk: (devid >> 4) & 0xf, partition: devid & 0xf };
    case SD_MAJOR: return { bus: 'sd', disk: (devid >> 4) & 0xf, partition: devid & 0xf };
    case IDE0_MAJOR: return { bus: 'hd', disk: (devid >> 6) & 1, partition: devid & 0x3f };
    case IDE1_MAJOR: return { bus: 'hd', disk: 2 + ((devid >> 6) & 1), partition: devid & 0x3f };
    default: return undefined;
  }
}

export function formatVdev(v: VdevName): string {
  return `${v.bus}${diskLetters(v.disk)}${v.partition === 0 ? '' : v.partition}`;
}

/** The canonical name for a devid (`51712` → `xvda`), or undefined if it names no disk. */
export function devidToVdev(devid: number): string | undefined {
  const v = decodeDevid(devid);
  return v === undefined ? undefined : formatVdev(v);
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
