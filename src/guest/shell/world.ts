/**
 * What the shell's commands see of the guest: its disks, its NICs, a clock and the way to
 * stop. The program (programs/shell.ts) builds it from the kernel's frontends; tests give
 * fakes. The shell never reaches past this interface, so every command runs in a test.
 */
import type { BlkCounters, BlkInfo } from '../../devices/blk/index.js';
import type { NetStack } from '../net/stack.js';

export interface ShellDisk {
  readonly devid: number;
  /** The Linux name of the devid (`xvda`), or the number itself when it names no disk. */
  readonly name: string;
  /** BlkFront's phase: init, initialised, connected, closed, broken, gone. */
  readonly state: string;
  /** Properties, once connected. */
  readonly info: BlkInfo | undefined;
  readonly counters: BlkCounters;
  read(sector: number, buf: Uint8Array): Promise<void>;
  write(sector: number, buf: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

export interface NicCounters {
  readonly rxPackets: number;
  readonly rxBytes: number;
  readonly rxErrors: number;
  readonly rxDropped: number;
  readonly txPackets: number;
  readonly txBytes: number;
  readonly txErrors: number;
  readonly txDropped: number;
}

export interface ShellNic {
  readonly devid: number;
  /** `eth<N>`, N the vif's place in devid order. */
  readonly name: string;
  /** `aa:bb:cc:dd:ee:ff`, or undefined before the frontend read it. */
  readonly mac: string | undefined;
  readonly mtu: number;
  /** `up`, `down`, or `broken: <reason>`. */
  readonly state: string;
  readonly counters: NicCounters;
  /** The IPv4 stack on this NIC, when it has an address. */
  readonly stack: NetStack | undefined;
}

export type ShellShutdown = 'poweroff' | 'reboot' | 'crash';

export interface ShellWorld {
  readonly hostname: string;
  readonly domid: number;
  /** Milliseconds, monotonic (the network stack's clock). */
  now(): number;
  /** `now()` when the guest booted. */
  readonly bootedAt: number;
  /** Wall clock, for `uptime`'s first column. */
  wallClock(): Date;
  disks(): readonly ShellDisk[];
  nics(): readonly ShellNic[];
  /** Resolves after `ms`, or early once `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Stop the guest (SCHEDOP_shutdown with this reason). */
  shutdown(reason: ShellShutdown, message?: string): Promise<void>;
}
