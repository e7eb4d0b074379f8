/**
 * A coarse clock for per-frame bookkeeping (the bridge's FDB ageing): performance.now() read
 * once per task and reused until the task's microtasks run, as Linux's bridge reads `jiffies`
 * rather than the hardware clock per frame. A netback's tx budget forwards up to 64 frames in
 * one task; reading the clock twice per frame cost about 0.1 µs each (bench net).
 *
 * Ageing is in seconds (300 s default), so a time that is late by the length of one task
 * (well under a millisecond) changes nothing a learning bridge does.
 */
let cached: number | undefined;

function forget(): void {
  cached = undefined;
}

export function taskClock(): number {
  if (cached === undefined) {
    cached = performance.now();
    queueMicrotask(forget);
  }
  return cached;
}
