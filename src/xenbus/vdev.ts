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
 * libxl__device_disk_dev_number (toolstack/config/vdev.ts parses names; this file only numbers
 * and names devids, which both the toolstack and the guest need).
 */
export type VdevBus = 'xvd' | 'hd' | 'sd';

export interface VdevName {
  readonly bus: VdevBus;
  readonly disk: number;
  readonly partition: number;
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
