/**
 * What a guest program is and what the kernel gives it. A program is a module whose default
 * export is `async function main(ctx)`; `kernel = "builtin:<name>"` picks one from
 * programs/, any other value is a module path or file: URL.
 */
import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { XenpvError } from '../base/index.js';
import type { BlkFrontOptions } from '../devices/blk/index.js';
import type { SimPlatform } from '../hv/sim/platform.js';
import { builtinPrograms } from './programs/index.js';

export type ShutdownName = 'poweroff' | 'reboot' | 'suspend' | 'crash' | 'watchdog' | 'soft_reset';

export interface GuestContext {
  readonly platform: SimPlatform;
  readonly domid: number;
  readonly vcpu: number;
  readonly name: string;
  /** xl.cfg `extra`, less the kernel's own parameters (cmdline.ts). */
  readonly args: string;
  /** `args` split on whitespace. */
  readonly argv: readonly string[];
  /** blkfront's parameters from the command line (`xen_blkfront.*`), for a program's own frontend. */
  readonly blkfront: BlkFrontOptions;
  /** A line on the domain's console (the host keeps the last lines). */
  log(...parts: unknown[]): void;
  /** SCHEDOP_shutdown with a reason; the vCPU stops. Never returns. */
  shutdown(reason: ShutdownName, message?: string): Promise<never>;
  /** Resolves true when the domain runs (waits while paused), false once it is being killed. */
  running(): Promise<boolean>;
  sleep(ms: number): Promise<void>;
}

export type GuestProgram = (ctx: GuestContext) => Promise<void>;

function isProgram(v: unknown): v is GuestProgram {
  return typeof v === 'function';
}

/** Find the program named by `kernel`. Throws XenpvError('ENOENT'/'ENOEXEC'). */
export async function resolveProgram(kernel: string): Promise<GuestProgram> {
  if (kernel.startsWith('builtin:')) {
    const name = kernel.slice('builtin:'.length);
    const p = builtinPrograms[name];
    if (p === undefined) {
      throw new XenpvError('ENOENT', `no built-in program '${name}'`, { kernel, known: Object.keys(builtinPrograms) });
    }
    return p;
  }
  const url = kernel.startsWith('file:') ? kernel : pathToFileURL(isAbsolute(kernel) ? kernel : resolve(kernel)).href;
  const mod = (await import(url)) as { default?: unknown };
  if (!isProgram(mod.default)) {
    throw new XenpvError('ENOEXEC', `${kernel}: no default-exported main(ctx) function`, { kernel });
  }
  return mod.default;
}
