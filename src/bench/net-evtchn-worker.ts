/**
 * The event-channel round trip the way `xenpv bench net`'s ping meets it: both ends deliver
 * events on their event loop (the listener's waitAsync loop, as guest vCPUs and dom0 do), one
 * round trip every `intervalMs` (the ping's pacing), so each one wakes a thread that has been
 * idle since the last. hv/sim/roundtrip measures the other regime: back-to-back round trips
 * between two threads blocked in timed Atomics waits.
 *
 * ping: notify, await the answer's handler, record the time; pong: answer each event.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { sleep, type DomId, type EvtchnPort } from '../base/index.js';
import { SimPlatform, type PlatformHandle } from '../hv/sim/platform.js';

export interface PacedRoundTripJob {
  readonly role: 'ping' | 'pong';
  readonly platform: PlatformHandle;
  /** pong: the port it adopts; ping: the remote port it binds to. */
  readonly port: number;
  readonly remote: number;
  readonly count: number;
  readonly intervalMs: number;
  /** Int32 words: [0] stop, [1] pong ready. */
  readonly ctl: SharedArrayBuffer;
}

export interface PacedRoundTripReport {
  readonly samplesUs: number[];
  readonly lost: number;
}

/** Longest wait for one answer before it counts as lost. */
const ANSWER_MS = 100;

async function pong(job: PacedRoundTripJob, ctl: Int32Array): Promise<{ answered: number }> {
  const p = SimPlatform.attach(job.platform);
  let answered = 0;
  const b = p.events.adopt(job.port as EvtchnPort, () => {
    answered++;
    b.notify();
  });
  Atomics.store(ctl, 1, 1);
  while (Atomics.load(ctl, 0) === 0) await sleep(20);
  b.dispose();
  p.dispose();
  return { answered };
}

async function ping(job: PacedRoundTripJob, ctl: Int32Array): Promise<PacedRoundTripReport> {
  const p = SimPlatform.attach(job.platform);
  let answered: (() => void) | undefined;
  const b = p.events.bindInterdomain(job.remote as DomId, job.port as EvtchnPort, () => answered?.());
  while (Atomics.load(ctl, 1) === 0) await sleep(5);
  await sleep(job.intervalMs); // bind_interdomain leaves one event pending: let it go by
  const samplesUs: number[] = [];
  let lost = 0;
  for (let i = 0; i < job.count; i++) {
    await sleep(job.intervalMs);
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<boolean>((resolve) => {
      answered = () => resolve(true);
      timer = setTimeout(() => resolve(false), ANSWER_MS);
    });
    const t = performance.now();
    b.notify();
    const ok = await answer;
    const us = (performance.now() - t) * 1000;
    clearTimeout(timer);
    answered = undefined;
    if (ok) samplesUs.push(us);
    else lost++;
  }
  Atomics.store(ctl, 0, 1);
  b.dispose();
  p.dispose();
  return { samplesUs, lost };
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object' && 'role' in workerData) {
  const job = workerData as PacedRoundTripJob;
  const ctl = new Int32Array(job.ctl);
  const done = job.role === 'pong' ? pong(job, ctl) : ping(job, ctl);
  void done.then((r) => parentPort!.postMessage(r));
}
