/**
 * A lock word shared by every thread of the hypervisor model (Xen's per-domain spinlocks).
 *
 * The word holds the owner's thread id shifted left by one, plus a "someone waits" bit. The
 * owner id lets the host free a lock held by a worker it had to terminate mid-hypercall
 * (`breakLocksOf`). Waits are timed (1 ms) and re-check, never untimed (performance.md 2.7).
 */
const SPINS = 100;
const WAIT_MS = 1;

export function lockWord(words: Int32Array, index: number, tid: number): void {
  const mine = tid << 1;
  for (let i = 0; ; i++) {
    const seen = Atomics.compareExchange(words, index, 0, mine);
    if (seen === 0) return;
    if (i < SPINS) continue;
    // Mark the word contended, then sleep until it changes (or 1 ms passes).
    const marked = seen | 1;
    if (seen === marked || Atomics.compareExchange(words, index, seen, marked) === seen) {
      Atomics.wait(words, index, marked, WAIT_MS);
    }
  }
}

export function unlockWord(words: Int32Array, index: number): void {
  const old = Atomics.exchange(words, index, 0);
  if ((old & 1) !== 0) Atomics.notify(words, index);
}

export function withLock<T>(words: Int32Array, index: number, tid: number, fn: () => T): T {
  lockWord(words, index, tid);
  try {
    return fn();
  } finally {
    unlockWord(words, index);
  }
}

/** Release the lock if thread `tid` holds it (host cleanup after terminating a worker). */
export function breakLockOf(words: Int32Array, index: number, tid: number): boolean {
  const mine = tid << 1;
  if (Atomics.compareExchange(words, index, mine, 0) === mine) return true;
  if (Atomics.compareExchange(words, index, mine | 1, 0) === (mine | 1)) {
    Atomics.notify(words, index);
    return true;
  }
  return false;
}
