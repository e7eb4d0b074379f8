import { readlinkSync } from 'node:fs';

/** This thread's Linux task id (for per-thread CPU accounting by the host); undefined elsewhere. */
export function osThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isSafeInteger(tid) ? tid : undefined;
  } catch {
    return undefined;
  }
}
