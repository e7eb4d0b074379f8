/**
 * Linux TAP devices through /dev/net/tun (Documentation/networking/tuntap.rst): open the
 * clone device, `ioctl(fd, TUNSETIFF, &ifr)` with IFF_TAP | IFF_NO_PI, and the fd then
 * reads and writes whole Ethernet frames, one per read(2)/write(2).
 *
 * Node has no ioctl, so it goes through koffi (the FFI package the xen platform ships with
 * its prebuilt binary; nothing is compiled at install time). This module loads its own
 * binding instead of the xen platform's: devices do not depend on hv/xen, and a machine
 * where koffi cannot load still runs everything else — `openTap` then answers with the
 * reason instead of throwing.
 *
 * Only synchronous koffi calls are used, and only here and in the reader worker
 * (tun-worker.ts): hv/xen saw koffi's asynchronous calls corrupt the heap on a real dom0.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { validIfName } from './bridge.js';

type KoffiModule = typeof import('koffi');

/** <linux/if_tun.h>: `#define TUNSETIFF _IOW('T', 202, int)`. */
export const TUNSETIFF = 0x400454ca;
/** <linux/if_tun.h>: IFF_TAP (Ethernet frames) and IFF_NO_PI (no 4-byte packet-info prefix). */
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
/** sizeof(struct ifreq) on Linux: ifr_name[IFNAMSIZ = 16], then a 24-byte union (ifr_flags: short at 16). */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;
/** errno values of <asm-generic/errno-base.h> that `ioctl(TUNSETIFF)` answers with. */
const EPERM = 1;
const EBUSY = 16;
const EINVAL = 22;

export type TapOpen =
  | { readonly ok: true; readonly fd: number; readonly name: string }
  | { readonly ok: false; readonly code: string; readonly reason: string };

type Ioctl = (fd: number, req: number, arg: Uint8Array) => number;
type Bound = { readonly ok: true; readonly ioctl: Ioctl; readonly errno: () => number } | { readonly ok: false; readonly reason: string };

let bound: Bound | undefined;

/** Load koffi (in this thread: the TAP reader worker uses it too). Never throws. */
export async function loadKoffi(): Promise<{ ok: true; koffi: KoffiModule } | { ok: false; reason: string }> {
  if (process.platform !== 'linux') return { ok: false, reason: `TAP devices need Linux (this is ${process.platform})` };
  try {
    const mod = (await import('koffi')) as KoffiModule & { default?: KoffiModule };
    return { ok: true, koffi: mod.default ?? mod };
  } catch (err) {
    return { ok: false, reason: `the native bridge (koffi) did not load: ${(err as Error).message}` };
  }
}

async function bind(): Promise<Bound> {
  if (bound !== undefined) return bound;
  const k = await loadKoffi();
  if (!k.ok) return (bound = k);
  try {
    const ioctl = k.koffi.load('libc.so.6').func('int ioctl(int fd, unsigned long req, void *arg)');
    bound = { ok: true, ioctl: (fd, req, arg) => ioctl(fd, req, arg) as number, errno: () => k.koffi.errno() };
  } catch (err) {
    bound = { ok: false, reason: `libc could not be bound through koffi: ${(err as Error).message}` };
  }
  return bound;
}

/** Why opening /dev/net/tun failed, in words an administrator can act on. */
function openFailure(err: NodeJS.ErrnoException): TapOpen {
  const code = err.code ?? 'EIO';
  if (code === 'ENOENT' || code === 'ENODEV') return { ok: false, code, reason: 'no /dev/net/tun (load the tun module: modprobe tun)' };
  if (code === 'EACCES' || code === 'EPERM') return { ok: false, code, reason: 'opening /dev/net/tun needs root (or CAP_NET_ADMIN)' };
  return { ok: false, code, reason: `opening /dev/net/tun: ${err.message}` };
}

function ioctlFailure(errno: number, name: string): TapOpen {
  switch (errno) {
    case EPERM:
      return { ok: false, code: 'EPERM', reason: `creating TAP ${name} needs CAP_NET_ADMIN` };
    case EBUSY:
      return { ok: false, code: 'EBUSY', reason: `TAP ${name} exists and another process has it open` };
    case EINVAL:
      return { ok: false, code: 'EINVAL', reason: `${name} exists and is not a TAP device` };
    default:
      return { ok: false, code: 'EIO', reason: `ioctl(TUNSETIFF, ${name}) failed with errno ${errno}` };
  }
}

/** The ifreq for TUNSETIFF: the name NUL-padded, then ifr_flags (host byte order). */
export function tapIfreq(name: string): Uint8Array {
  const ifr = new Uint8Array(IFREQ_SIZE);
  ifr.set(new TextEncoder().encode(name).subarray(0, IFNAMSIZ - 1));
  new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TAP | IFF_NO_PI, true);
  return ifr;
}

/**
 * Create (or attach to an existing, unused) TAP interface `name`. The fd is non-blocking:
 * the reader worker polls it and the owner's writes never wait. Closing the fd removes a
 * TAP that was not made persistent (`ip tuntap add`), wherever it was moved since.
 */
export async function openTap(name: string): Promise<TapOpen> {
  if (!validIfName(name)) return { ok: false, code: 'EINVAL', reason: `invalid interface name '${name}'` };
  const b = await bind();
  if (!b.ok) return { ok: false, code: 'ENOTSUP', reason: b.reason };
  let fd: number;
  try {
    fd = openSync('/dev/net/tun', constants.O_RDWR | constants.O_NONBLOCK);
  } catch (err) {
    return openFailure(err as NodeJS.ErrnoException);
  }
  const ifr = tapIfreq(name);
  if (b.ioctl(fd, TUNSETIFF, ifr) < 0) {
    const failure = ioctlFailure(b.errno(), name);
    closeSync(fd);
    return failure;
  }
  const end = ifr.indexOf(0);
  return { ok: true, fd, name: new TextDecoder().decode(ifr.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end)) };
}

/** What the reader thread (tun-worker.ts) is started with. */
export interface TunWorkerData {
  readonly fd: number;
  /** Int32 slots, see `CTL_*`. */
  readonly control: SharedArrayBuffer;
  readonly maxInFlight: number;
}

/** Owner → worker: non-zero asks the worker to stop. */
export const CTL_STOP = 0;
/** Frames posted and not yet taken by the owner. */
export const CTL_IN_FLIGHT = 1;
/** Frames read from Linux and dropped because `maxInFlight` were outstanding. */
export const CTL_QUEUE_FULL = 2;
/** Frames read from Linux (dropped or not). */
export const CTL_READ = 3;
export const CTL_SLOTS = 4;

export type TunWorkerMessage =
  | { readonly kind: 'frames'; readonly frames: Uint8Array[] }
  | { readonly kind: 'error'; readonly reason: string };
