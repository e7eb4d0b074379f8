/**
 * Per-device counters (issue 4: "requests, bytes, time, errors for read, write, flush,
 * discard"), kept by blkback for what came off the ring — refused requests included, which
 * storage's own counters never see — and by blkfront for what the guest asked.
 */
export type OpKind = 'read' | 'write' | 'flush' | 'discard';

export interface BlkOpCounter {
  requests: number;
  /** Bytes moved by requests that succeeded. */
  bytes: number;
  errors: number;
  /** Wall time from dispatch to completion, nanoseconds, summed over concurrent requests. */
  timeNs: number;
}

export type BlkCounters = Record<OpKind, BlkOpCounter>;

export function newBlkCounters(): BlkCounters {
  const one = (): BlkOpCounter => ({ requests: 0, bytes: 0, errors: 0, timeNs: 0 });
  return { read: one(), write: one(), flush: one(), discard: one() };
}

export function countOp(c: BlkCounters, kind: OpKind, bytes: number, timeNs: number, error: boolean): void {
  const k = c[kind];
  k.requests++;
  k.bytes += bytes;
  k.timeNs += timeNs;
  if (error) k.errors++;
}

/** A deep copy, for callers that keep a snapshot. */
export function snapshotCounters(c: BlkCounters): BlkCounters {
  return { read: { ...c.read }, write: { ...c.write }, flush: { ...c.flush }, discard: { ...c.discard } };
}
