/**
 * Worker side of the event-channel round-trip measurement (roundtrip.ts): one domain's
 * thread pinging or ponging over a bound interdomain channel, or the raw Atomics ping-pong
 * baseline over a bare shared word.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { waitWhileEqual, type DomId, type EvtchnPort } from '../../base/index.js';
import { SimPlatform, type PlatformHandle } from './platform.js';

export interface RoundTripJob {
  readonly role: 'ping' | 'pong' | 'raw-ping' | 'raw-pong';
  readonly platform?: PlatformHandle;
  /** pong: the port it adopts; ping: the remote port it binds to. */
  readonly port?: number;
  readonly remote?: number;
  readonly iterations: number;
  readonly warmup: number;
  /** Int32 words: [0] stop, [1] ready count, [2] raw turn. */
  readonly ctl: SharedArrayBuffer;
}

const STOP = 0;
const READY = 1;
const TURN = 2;
const SLICE_MS = 50;

function waitReady(ctl: Int32Array, n: number): void {
  for (;;) {
    const r = Atomics.load(ctl, READY);
    if (r >= n) return;
    waitWhileEqual(ctl, READY, r, SLICE_MS);
  }
}

function ready(ctl: Int32Array): void {
  Atomics.add(ctl, READY, 1);
  Atomics.notify(ctl, READY);
}

function pong(job: RoundTripJob, ctl: Int32Array): void {
  const p = SimPlatform.attach(job.platform!, { autoDispatch: false });
  const b = p.events.adopt(job.port as EvtchnPort, () => b.notify());
  ready(ctl);
  while (Atomics.load(ctl, STOP) === 0) p.poll(SLICE_MS);
  b.dispose();
  p.dispose();
}

/** Per-round-trip times, µs: the median is robust to the scheduler's millisecond outliers. */
export interface RoundTripSamples {
  readonly elapsedMs: number;
  readonly samplesUs: Float64Array;
}

function ping(job: RoundTripJob, ctl: Int32Array): RoundTripSamples {
  const p = SimPlatform.attach(job.platform!, { autoDispatch: false });
  let got = 0;
  const b = p.events.bindInterdomain(job.remote as DomId, job.port as EvtchnPort, () => got++);
  p.poll(0); // bind_interdomain leaves one event pending on the binder
  got = 0;
  ready(ctl);
  waitReady(ctl, 2);
  const samplesUs = new Float64Array(job.iterations);
  let t0 = 0;
  for (let i = 0; i < job.warmup + job.iterations; i++) {
    const t = performance.now();
    if (i === job.warmup) t0 = t;
    b.notify();
    while (got <= i) p.poll(SLICE_MS);
    if (i >= job.warmup) samplesUs[i - job.warmup] = (performance.now() - t) * 1000;
  }
  const elapsedMs = performance.now() - t0;
  Atomics.store(ctl, STOP, 1);
  b.dispose();
  p.dispose();
  return { elapsedMs, samplesUs };
}

function rawPing(job: RoundTripJob, ctl: Int32Array): RoundTripSamples {
  ready(ctl);
  waitReady(ctl, 2);
  const samplesUs = new Float64Array(job.iterations);
  let t0 = 0;
  for (let i = 0; i < job.warmup + job.iterations; i++) {
    const t = performance.now();
    if (i === job.warmup) t0 = t;
    Atomics.store(ctl, TURN, 1);
    Atomics.notify(ctl, TURN);
    while (Atomics.load(ctl, TURN) === 1) Atomics.wait(ctl, TURN, 1, SLICE_MS);
    if (i >= job.warmup) samplesUs[i - job.warmup] = (performance.now() - t) * 1000;
  }
  const elapsedMs = performance.now() - t0;
  Atomics.store(ctl, STOP, 1);
  Atomics.store(ctl, TURN, 1);
  Atomics.notify(ctl, TURN);
  return { elapsedMs, samplesUs };
}

function rawPong(ctl: Int32Array): void {
  ready(ctl);
  while (Atomics.load(ctl, STOP) === 0) {
    if (Atomics.load(ctl, TURN) === 0) {
      Atomics.wait(ctl, TURN, 0, SLICE_MS);
      continue;
    }
    Atomics.store(ctl, TURN, 0);
    Atomics.notify(ctl, TURN);
  }
}

const job = workerData as RoundTripJob;
const ctl = new Int32Array(job.ctl);
switch (job.role) {
  case 'pong':
    pong(job, ctl);
    break;
  case 'ping':
    parentPort?.postMessage(ping(job, ctl));
    break;
  case 'raw-ping':
    parentPort?.postMessage(rawPing(job, ctl));
    break;
  case 'raw-pong':
    rawPong(ctl);
    break;
}
