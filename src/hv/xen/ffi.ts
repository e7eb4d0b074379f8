/**
 * The native bridge of the `xen` platform: the libc calls Node core lacks (`ioctl`,
 * `mmap`, `munmap`), reached through koffi (an FFI package shipped with prebuilt
 * binaries, so nothing is compiled at install time). Everything above this file speaks to
 * Linux's Xen devices (/dev/xen/{gntdev,gntalloc,evtchn,xenbus}) with these calls and
 * Node's own `fs` (blocking reads go to libuv's thread pool, poller.ts).
 *
 * Loading can fail (no koffi binary for this machine, no glibc): `loadNative()` then answers
 * with the reason instead of throwing, so the rest of xenpv works without it.
 */
import { writeSync } from 'node:fs';
import { XenpvError } from '../../base/index.js';

type KoffiModule = typeof import('koffi');

/** An opaque native pointer as koffi hands it out (an External); only passed back to C. */
export type NativePtr = object;

export interface Native {
  readonly koffi: KoffiModule;
  /** `ioctl(fd, req, arg)`: -1 and errno on failure. `arg` is passed by address. */
  ioctl(fd: number, req: number, arg: Uint8Array | null): number;
  mmap(addr: NativePtr | null, len: number, prot: number, flags: number, fd: number, off: bigint): NativePtr;
  munmap(addr: NativePtr, len: number): number;
  /** A live view of native memory (no copy): valid only while the memory is mapped. */
  view(ptr: NativePtr, len: number): ArrayBuffer;
  address(ptr: NativePtr): bigint;
  errno(): number;
}

// <sys/mman.h> on Linux x86_64.
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_FAILED = 0xffffffffffffffffn;

/** `_IOC(_IOC_NONE, type, nr, size)` of <asm-generic/ioctl.h>: dir 0 in bits 30-31. */
export function ioc(type: string, nr: number, size: number): number {
  return ((size & 0x3fff) << 16) | (type.charCodeAt(0) << 8) | nr;
}

export type NativeResult = { readonly ok: true; readonly native: Native } | { readonly ok: false; readonly reason: string };

let cached: NativeResult | undefined;

/** Load koffi and bind libc once per thread. Never throws. */
export async function loadNative(): Promise<NativeResult> {
  if (cached !== undefined) return cached;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    cached = { ok: false, reason: `the xen platform needs Linux on x86_64 (this is ${process.platform}/${process.arch})` };
    return cached;
  }
  let koffi: KoffiModule;
  try {
    const mod = (await import('koffi')) as KoffiModule & { default?: KoffiModule };
    koffi = mod.default ?? mod;
  } catch (err) {
    cached = { ok: false, reason: `the native bridge (koffi) did not load: ${(err as Error).message}` };
    return cached;
  }
  try {
    cached = { ok: true, native: bindLibc(koffi) };
  } catch (err) {
    cached = { ok: false, reason: `libc could not be bound through koffi: ${(err as Error).message}` };
  }
  return cached;
}

/**
 * XENPV_XEN_TRACE=1: every native call is written to stderr synchronously, so that the last
 * line before a crash in native code names the call (diagnostics on a real dom0).
 */
export const tracing = process.env['XENPV_XEN_TRACE'] === '1';
export function trace(msg: string): void {
  if (tracing) writeSync(2, `xen-trace ${msg}\n`);
}

function bindLibc(koffi: KoffiModule): Native {
  const libc = koffi.load('libc.so.6');
  const ioctl = libc.func('int ioctl(int fd, unsigned long req, void *arg)');
  const mmap = libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)');
  const munmap = libc.func('int munmap(void *addr, size_t len)');
  return {
    koffi,
    ioctl: (fd, req, arg) => {
      trace(`ioctl fd=${fd} req=0x${req.toString(16)} len=${arg?.length ?? 0}`);
      const rc = ioctl(fd, req, arg) as number;
      trace(`ioctl -> ${rc}${rc < 0 ? ` errno ${koffi.errno()}` : ''}`);
      return rc;
    },
    mmap: (addr, len, prot, flags, fd, off) => {
      trace(`mmap addr=${addr === null ? 'null' : koffi.address(addr).toString(16)} len=${len} prot=${prot} flags=0x${flags.toString(16)} fd=${fd} off=${off}`);
      const p = mmap(addr, len, prot, flags, fd, off) as NativePtr;
      trace(`mmap -> ${koffi.address(p).toString(16)}`);
      return p;
    },
    munmap: (addr, len) => {
      trace(`munmap ${koffi.address(addr).toString(16)} len=${len}`);
      return munmap(addr, len) as number;
    },
    view: (ptr, len) => {
      trace(`view ${koffi.address(ptr).toString(16)} len=${len}`);
      return koffi.view(ptr, len);
    },
    address: (ptr) => koffi.address(ptr),
    errno: () => koffi.errno(),
  };
}

/** errno number → its name (`ENOENT`), for XenpvError codes. */
export function errnoName(native: Native, errno: number): string {
  for (const [name, value] of Object.entries(native.koffi.os.errno)) if (value === errno) return name;
  return `errno ${errno}`;
}

/** Throw a XenpvError named after errno when a libc call returned -1. */
export function check(native: Native, rc: number, what: string, context: Record<string, unknown> = {}): number {
  if (rc >= 0) return rc;
  const errno = native.errno();
  const code = errnoName(native, errno);
  throw new XenpvError(code, `${what}: ${code}`, { ...context, errno });
}
