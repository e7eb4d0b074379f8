/**
 * Blocking and async waits on a shared Int32 word.
 *
 * Every wait is bounded and the caller re-checks its condition: untimed `Atomics.wait` was
 * seen to miss wake-ups on this Node 20 (research/performance.md 2.7), so a lost notify costs
 * at most one timeout, never a hang.
 */
export const WAIT_SLICE_MS = 50;

/** Block (worker threads only) until `word[index] !== expected` or `timeoutMs` passes. */
export function waitWhileEqual(word: Int32Array, index: number, expected: number, timeoutMs: number): boolean {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (Atomics.load(word, index) !== expected) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    Atomics.wait(word, index, expected, Math.min(left, WAIT_SLICE_MS));
  }
}

/** The event-loop form: resolves true when the word changes, false on timeout. */
export async function waitAsyncWhileEqual(
  word: Int32Array,
  index: number,
  expected: number,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (Atomics.load(word, index) !== expected) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    const r = Atomics.waitAsync(word, index, expected, Math.min(left, WAIT_SLICE_MS));
    if (r.async) await r.value;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
