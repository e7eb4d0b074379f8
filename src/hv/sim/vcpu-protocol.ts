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
  /**
   * Host CPUs this vCPU may run on (xl's `cpus=`, or every CPU while the host thread is
   * pinned); absent: the mask it inherits. The worker pins itself first.
   */
  readonly cpus?: readonly number[];
}

export type GuestMessage =
  | { readonly type: 'console'; readonly text: string }
  /**
   * The vCPU's thread is up, sent once before any guest program runs: its Linux task id (for
   * `vcpu-pin` and `vcpu-list`), and a pin that failed. The host takes only the first.
   */
  | { readonly type: 'vcpu-up'; readonly osTid: number | undefined; readonly pinError?: string }
  | { readonly type: 'shutdown'; readonly reason: number; readonly message?: string };
