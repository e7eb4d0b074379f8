/**
 * The baseline of `xenpv bench net`: two workers moving fixed-size packets through a raw
 * SharedArrayBuffer ring (a copy in, a copy out, a head and a tail index, timed Atomics
 * waits when full or empty). No protocol, no validation: the cost floor of moving bytes
 * between two threads on this machine.
 */
import { workerData, parentPort } from 'node:worker_threads';
import { setThreadAffinity } from '../hv/sim/affinity.js';

export interface RawCopyJob {
  readonly role: 'producer' | 'consumer';
  readonly sab: SharedArrayBuffer;
  readonly slots: number;
  readonly slotBytes: number;
  readonly packetBytes: number;
  readonly packets: number;
  /** A host CPU to pin this worker to first (the pinned layout's baseline); absent: unpinned. */
  readonly cpu?: number;
}

export interface RawCopyReport {
  readonly packets: number;
  readonly elapsedNs: number;
  readonly checksum: number;
}

/** Index words at the start of the buffer: [0] head (produced), [1] tail (consumed), [2] workers ready. */
export const RAW_HEADER = 64;

/**
 * Both workers start the clock together: a worker thread takes milliseconds to start, and a
 * consumer that timed its wait for a late producer would report a slower copy than there is.
 */
function startTogether(idx: Int32Array): void {
  Atomics.add(idx, 2, 1);
  Atomics.notify(idx, 2);
  for (let seen = Atomics.load(idx, 2); seen < 2; seen = Atomics.load(idx, 2)) Atomics.wait(idx, 2, seen, 10);
}

function run(job: RawCopyJob): RawCopyReport {
  const idx = new Int32Array(job.sab, 0, 3);
  const data = new Uint8Array(job.sab, RAW_HEADER, job.slots * job.slotBytes);
  const buf = new Uint8Array(job.packetBytes);
  let checksum = 0;
  startTogether(idx);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < job.packets; i++) {
    if (job.role === 'producer') {
      buf[0] = i & 0xff;
      while (Atomics.load(idx, 0) - Atomics.load(idx, 1) >= job.slots) Atomics.wait(idx, 1, Atomics.load(idx, 1), 10);
      data.set(buf, (i % job.slots) * job.slotBytes);
      Atomics.store(idx, 0, i + 1);
      Atomics.notify(idx, 0);
    } else {
      while (Atomics.load(idx, 0) <= i) Atomics.wait(idx, 0, Atomics.load(idx, 0), 10);
      const at = (i % job.slots) * job.slotBytes;
      buf.set(data.subarray(at, at + job.packetBytes));
      checksum = (checksum + buf[0]!) | 0;
      Atomics.store(idx, 1, i + 1);
      Atomics.notify(idx, 1);
    }
  }
  return { packets: job.packets, elapsedNs: Number(process.hrtime.bigint() - t0), checksum };
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object' && 'role' in workerData) {
  const job = workerData as RawCopyJob;
  if (job.cpu !== undefined) setThreadAffinity(0, [job.cpu]);
  parentPort.postMessage(run(job));
}
