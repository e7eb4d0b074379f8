/**
 * Counters of a queue served in another thread (ring-worker.ts) reach the disk's own counters
 * as deltas: the ring thread sends what changed since its last report, the disk thread adds it.
 */
import type { BlkCounters, BlkOpCounter, OpKind } from '../../devices/blk/index.js';

const KINDS: readonly OpKind[] = ['read', 'write', 'flush', 'discard'];
const FIELDS: readonly (keyof BlkOpCounter)[] = ['requests', 'bytes', 'errors', 'timeNs'];

/** What `c` gained since `sent` (undefined when nothing), and `sent` brought up to `c`. */
export function takeDelta(c: BlkCounters, sent: BlkCounters): BlkCounters | undefined {
  let changed = false;
  const delta = {} as BlkCounters;
  for (const k of KINDS) {
    const d = { requests: 0, bytes: 0, errors: 0, timeNs: 0 };
    for (const f of FIELDS) {
      d[f] = c[k][f] - sent[k][f];
      if (d[f] !== 0) changed = true;
      sent[k][f] = c[k][f];
    }
    delta[k] = d;
  }
  return changed ? delta : undefined;
}

/** Add a delta from `takeDelta` into `into`. */
export function addDelta(into: BlkCounters, delta: BlkCounters): void {
  for (const k of KINDS) for (const f of FIELDS) into[k][f] += delta[k][f];
}
