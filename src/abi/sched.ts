/**
 * `xen/sched.h`: the shutdown reasons of `SCHEDOP_shutdown` (`enum sched_shutdown_reason`).
 * The toolstack reads them back from the domain's shutdown code, and xenstore's
 * `control/shutdown` requests map onto them.
 */
import { defineConstants } from './layout.js';

const H = 'xen/sched.h';

export const SHUTDOWN = defineConstants(H, {
  SHUTDOWN_poweroff: 0, // exited normally: clean up and kill
  SHUTDOWN_reboot: 1, // clean up, kill, and restart
  SHUTDOWN_suspend: 2, // clean up, save suspend info, kill
  SHUTDOWN_crash: 3, // the guest crashed
  SHUTDOWN_watchdog: 4, // restart because the watchdog expired
  SHUTDOWN_soft_reset: 5, // reset the domain in place, keeping its memory
  SHUTDOWN_MAX: 5,
});
export const {
  SHUTDOWN_poweroff,
  SHUTDOWN_reboot,
  SHUTDOWN_suspend,
  SHUTDOWN_crash,
  SHUTDOWN_watchdog,
  SHUTDOWN_soft_reset,
  SHUTDOWN_MAX,
} = SHUTDOWN;
export type ShutdownReason = (typeof SHUTDOWN)[Exclude<keyof typeof SHUTDOWN, 'SHUTDOWN_MAX'>];

const shutdownNames: readonly string[] = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'];

export function isShutdownReason(n: number): n is ShutdownReason {
  return Number.isInteger(n) && n >= 0 && n <= SHUTDOWN_MAX;
}

/** The reason's name as xl prints it (`poweroff`, `reboot`, ...), or `unknown(<n>)`. */
export function shutdownReasonName(n: number): string {
  return shutdownNames[n] ?? `unknown(${n})`;
}
