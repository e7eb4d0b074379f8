/**
 * The messages between the host and a guest's vCPU worker. The hypercalls themselves go
 * through shared memory; these carry only what Xen would put on a console or in a log.
 */
import type { PlatformHandle } from './platform.js';

/** workerData of a vCPU worker. */
export interface VcpuBoot {
  readonly platform: PlatformHandle;
  readonly vcpu: number;
  readonly kernel: string;
  readonly extra: string;
  readonly name: string;
}

export type GuestMessage =
  | { readonly type: 'console'; readonly text: string }
  | { readonly type: 'shutdown'; readonly reason: number; readonly message?: string };
