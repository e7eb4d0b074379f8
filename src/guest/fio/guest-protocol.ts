/** Messages between the host (guest-host.ts) and a fio guest worker (guest-worker.ts). */
import type { BlkFeatures } from '../../devices/blk/index.js';
import type { ShutdownName } from '../program.js';
import type { FioResult } from './job.js';

export type HostToGuest = { readonly type: 'run'; readonly argv: readonly string[] } | { readonly type: 'close' };

export type GuestToHost =
  | { readonly type: 'ready'; readonly features: BlkFeatures; readonly sectors: number }
  | { readonly type: 'console'; readonly line: string }
  /** `cpuNs`: the guest thread's CPU time over the job (absent where it cannot be read). */
  | { readonly type: 'result'; readonly result: FioResult; readonly cpuNs?: number }
  | { readonly type: 'shutdown'; readonly reason: ShutdownName; readonly message: string }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'closed'; readonly unreclaimedGrants: number };
