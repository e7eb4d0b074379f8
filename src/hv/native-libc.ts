/**
 * koffi and glibc for what Node core lacks: the storage's kernel batch interfaces
 * (devices/blk/storage linux-aio.ts, io-uring.ts) and the sim's huge-page advice
 * (sim/huge-pages.ts). The package loaded and libc bound once per thread, buffer addresses as
 * koffi passes them, and
 * the little-endian u64 stores their kernel structures need. Loading can fail (no koffi binary
 * for this machine, no glibc): `loadLibc` then answers with the reason instead of throwing.
 */
import { createRequire } from 'node:module';

export type KoffiModule = typeof import('koffi');

export interface Libc {
  readonly koffi: KoffiModule;
  readonly lib: ReturnType<KoffiModule['load']>;
  /** memcpy(p, p, 0): returns `p`, i.e. the address koffi passes for a typed array. */
  addressOf(view: Uint8Array): number;
  errno(): number;
}

let loaded: Libc | string | undefined;

/** koffi with glibc bound, or why not; `what` names the interface in the reason. */
export function loadLibc(what: string): Libc | string {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `${what} needs Linux on x86_64 (this is ${process.platform}/${process.arch})`;
  return (loaded ??= load());
}

function load(): Libc | string {
  try {
    const mod = createRequire(import.meta.url)('koffi') as KoffiModule & { default?: KoffiModule };
    const koffi = mod.default ?? mod;
    const lib = koffi.load('libc.so.6');
    const memcpy = lib.func('uint64_t memcpy(void *, void *, size_t)') as (dst: Uint8Array, src: Uint8Array, n: number) => number;
    const libc: Libc = { koffi, lib, addressOf: (view) => memcpy(view, view, 0), errno: () => koffi.errno() };
    const at = libc.addressOf(new Uint8Array(8));
    return typeof at !== 'number' || at === 0 ? 'koffi did not give buffer addresses' : libc;
  } catch (err) {
    return `the native bridge (koffi) did not load: ${(err as Error).message}`;
  }
}

const TWO_32 = 2 ** 32;

/** Little-endian u64 at u32 index `at` (addresses and offsets are below 2^53). */
export function setU64(w: Uint32Array, at: number, value: number): void {
  w[at] = value >>> 0;
  w[at + 1] = Math.floor(value / TWO_32);
}
