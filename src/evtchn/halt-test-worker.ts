/**
 * Test helper of halt.test.ts: a thread that raises events on a shared wake word, as a
 * backend answering requests would: bump the word and notify, every `intervalMs`, until the
 * test sets the stop word (which it also notifies, ending the pause at once).
 */
import { parentPort, workerData } from 'node:worker_threads';

export interface StreamJob {
  /** The wake word is words[index]. */
  readonly words: Int32Array;
  readonly index: number;
  /** ctrl[0]: stop when non-zero; ctrl[1]: events raised so far. */
  readonly ctrl: Int32Array;
  readonly intervalMs: number;
}

const job = workerData as StreamJob;
parentPort!.postMessage('started');
while (Atomics.load(job.ctrl, 0) === 0) {
  Atomics.add(job.words, job.index, 1);
  Atomics.notify(job.words, job.index);
  Atomics.add(job.ctrl, 1, 1);
  // Timed, and the stop word is re-checked by the loop condition.
  Atomics.wait(job.ctrl, 0, 0, job.intervalMs);
}
