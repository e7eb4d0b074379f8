/**
 * The event-channel round trip between two domains, and the raw Atomics ping-pong it is
 * held against (`ring.evtchn_roundtrip_us.vs_raw_pingpong`, issue 2). Each side runs in its
 * own worker thread, blocking in timed waits, as two vCPUs would.
 *
 *   const hv = new Hypervisor();
 *   const ev = await measureEvtchnRoundTrip(hv, { iterations: 20000 });
 *   const raw = await measureRawPingPong({ iterations: 20000 });
 *   // ev.usPerRoundTrip / raw.usPerRoundTrip
 *   await hv.dispose();
 *
 * Setup done here, reusable by others: two guest domains A and B; the host allocates an
 * unbound port of B for A (as a toolstack does), B's thread adopts it, A's thread binds
 * interdomain to it; each event's handler on B notifies straight back.
 */
import { Worker } from 'node:worker_threads';
import type { Hypervisor } from './hypervisor.js';
import type { RoundTripJob, RoundTripSamples } from './roundtrip-worker.js';

export interface RoundTripOptions {
  readonly iterations?: number;
  readonly warmup?: number;
}

export interface RoundTripResult {
  readonly iterations: number;
  readonly elapsedMs: number;
  /**
   * The median round trip, µs. The median, not the mean: on this shared machine a few
   * round trips in a thousand wait milliseconds for a CPU, and the mean follows them.
   */
  readonly usPerRoundTrip: number;
  readonly meanUs: number;
  readonly p10Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
}

const WORKER = new URL('./roundtrip-worker.js', import.meta.url);

function run(job: RoundTripJob): { worker: Worker; done: Promise<RoundTripSamples | undefined> } {
  const worker = new Worker(WORKER, { workerData: job });
  const done = new Promise<RoundTripSamples | undefined>((resolve, reject) => {
    let result: RoundTripSamples | undefined;
    worker.on('message', (m: RoundTripSamples) => (result = m));
    worker.on('error', reject);
    worker.on('exit', () => resolve(result));
  });
  return { worker, done };
}

async function pair(pingJob: RoundTripJob, pongJob: RoundTripJob, iterations: number): Promise<RoundTripResult> {
  const pongRun = run(pongJob);
  const pingRun = run(pingJob);
  const [r] = await Promise.all([pingRun.done, pongRun.done]);
  if (r === undefined) throw new Error('round trip: the ping worker reported nothing');
  const sorted = Float64Array.from(r.samplesUs).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    iterations,
    elapsedMs: r.elapsedMs,
    usPerRoundTrip: at(0.5),
    meanUs: (r.elapsedMs * 1000) / iterations,
    p10Us: at(0.1),
    p90Us: at(0.9),
    p99Us: at(0.99),
  };
}

/** Round trips over a bound interdomain channel between two fresh domains of `hv`. */
export async function measureEvtchnRoundTrip(hv: Hypervisor, options: RoundTripOptions = {}): Promise<RoundTripResult> {
  const iterations = options.iterations ?? 10000;
  const warmup = options.warmup ?? Math.min(1000, iterations);
  const a = hv.createDomain({ name: 'rt-ping', memoryPages: 16, startInfo: false });
  const b = hv.createDomain({ name: 'rt-pong', memoryPages: 16, startInfo: false });
  try {
    const port = hv.allocUnboundFor(b, a);
    const ctl = new SharedArrayBuffer(16);
    return await pair(
      { role: 'ping', platform: hv.platformHandle(a), remote: b, port, iterations, warmup, ctl },
      { role: 'pong', platform: hv.platformHandle(b), port, iterations, warmup, ctl },
      iterations,
    );
  } finally {
    await hv.destroy(a);
    await hv.destroy(b);
  }
}

/** The baseline: the same two threads, a bare shared word, `Atomics.wait`/`notify`. */
export async function measureRawPingPong(options: RoundTripOptions = {}): Promise<RoundTripResult> {
  const iterations = options.iterations ?? 10000;
  const warmup = options.warmup ?? Math.min(1000, iterations);
  const ctl = new SharedArrayBuffer(16);
  return pair({ role: 'raw-ping', iterations, warmup, ctl }, { role: 'raw-pong', iterations, warmup, ctl }, iterations);
}
