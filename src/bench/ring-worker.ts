/**
 * Worker side of the ring throughput benchmark (bench/ring.ts). Roles:
 *
 * - `front` / `back`: a request/response ring (ring/) in one shared page, 64-byte entries,
 *   batched pushes, ring.h notification hold-off, and, when idle, a final check and a timed
 *   wait on an event word (a pending flag plus Atomics.notify, the event-channel stand-in).
 * - `raw-producer` / `raw-consumer`: the baseline, a single-producer ring of 64-byte slots
 *   over a SharedArrayBuffer done as simply as possible: publish the index, always notify,
 *   wait on the other index when full or empty.
 *
 * The producing side times the run: `warmupMs` untimed, then `durationMs` timed, then it
 * stops issuing, drains, and raises the stop word.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BackRing, FrontRing } from '../ring/index.js';
import { benchCodec, expectedCheck, WORDS } from './ring-codec.js';

export interface RingBenchJob {
  readonly role: 'front' | 'back' | 'raw-producer' | 'raw-consumer';
  readonly ring: SharedArrayBuffer;
  readonly ctl: SharedArrayBuffer;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface RingBenchReport {
  /** Completed in the timed phase. */
  readonly requests: number;
  /** Completed in the whole run, warm-up included (what kicks and waits are counted over). */
  readonly total: number;
  readonly elapsedNs: number;
  readonly kicks: number;
  readonly waits: number;
  readonly errors: number;
}

// Control words, each on its own 64-byte line.
const STOP = 0;
const READY = 1;
const EV_FRONT = 16;
const EV_BACK = 32;
const SLICE_MS = 50;

function kick(ev: Int32Array, word: number): void {
  Atomics.store(ev, word, 1);
  Atomics.notify(ev, word, 1);
}

/** Consume a pending kick, or sleep until one (bounded: re-check the ring either way). */
function waitKick(ev: Int32Array, word: number): void {
  if (Atomics.exchange(ev, word, 0) !== 0) return;
  Atomics.wait(ev, word, 0, SLICE_MS);
  Atomics.store(ev, word, 0);
}

function syncStart(ctl: Int32Array): void {
  Atomics.add(ctl, READY, 1);
  Atomics.notify(ctl, READY);
  while (Atomics.load(ctl, READY) < 2) Atomics.wait(ctl, READY, 1, SLICE_MS);
}

class Clock {
  private readonly t0: number;
  constructor(private readonly job: RingBenchJob) {
    this.t0 = performance.now();
  }
  /** 'warmup' | 'timed' | 'stop' for the current instant. */
  phase(): 'warmup' | 'timed' | 'stop' {
    const t = performance.now() - this.t0;
    return t < this.job.warmupMs ? 'warmup' : t < this.job.warmupMs + this.job.durationMs ? 'timed' : 'stop';
  }
}

function front(job: RingBenchJob, ctl: Int32Array): RingBenchReport {
  const ring = FrontRing.init(new Uint8Array(job.ring, 0, 4096), benchCodec);
  syncStart(ctl);
  const clock = new Clock(job);
  const req = { id: 0, check: 0 };
  let sent = 0, done = 0, kicks = 0, waits = 0, errors = 0;
  let doneAtStart = -1, t0 = 0n;
  for (let phase = clock.phase(); ; phase = clock.phase()) {
    if (phase === 'timed' && doneAtStart < 0) [doneAtStart, t0] = [done, process.hrtime.bigint()];
    if (phase !== 'stop') {
      // One request object, refilled: the device's own bookkeeping is not what is measured.
      for (req.id = sent; ring.putRequest(req); req.id = sent) sent++;
      if (ring.pushRequests()) (kick(ctl, EV_BACK), kicks++);
    }
    let got = 0;
    for (let r = ring.nextResponse(); r !== undefined; r = ring.nextResponse()) {
      if (r.id !== (done + got) >>> 0 || r.status !== 0) errors++;
      got++;
    }
    done += got;
    if (phase === 'stop' && done === sent) break;
    if (got === 0 && !ring.finalCheckForResponses()) (waitKick(ctl, EV_FRONT), waits++);
  }
  const elapsedNs = Number(process.hrtime.bigint() - t0);
  Atomics.store(ctl, STOP, 1);
  kick(ctl, EV_BACK);
  return { requests: done - doneAtStart, total: done, elapsedNs, kicks, waits, errors: errors + (ring.broken ? 1 : 0) };
}

function back(job: RingBenchJob, ctl: Int32Array): RingBenchReport {
  syncStart(ctl); // the front has initialised the ring: only then attach
  const ring = BackRing.attach(new Uint8Array(job.ring, 0, 4096), benchCodec);
  const rsp = { id: 0, status: 0 };
  let handled = 0, kicks = 0, waits = 0, errors = 0;
  for (;;) {
    let n = 0;
    for (let req = ring.nextRequest(); req !== undefined; req = ring.nextRequest()) {
      if (req.check !== expectedCheck(req.id)) errors++;
      rsp.id = req.id;
      ring.putResponse(rsp);
      n++;
    }
    handled += n;
    if (n > 0 && ring.pushResponses()) (kick(ctl, EV_FRONT), kicks++);
    if (n > 0) continue;
    if (Atomics.load(ctl, STOP) !== 0) break;
    if (!ring.finalCheckForRequests()) (waitKick(ctl, EV_BACK), waits++);
  }
  return { requests: handled, total: handled, elapsedNs: 0, kicks, waits, errors };
}

// The raw ring: header words prod @0 and cons @64 bytes, slots from byte 128.
const RAW_PROD = 0;
const RAW_CONS = 16;
const RAW_SLOTS = 128 / 4;
const RAW_SIZE = 32; // the same entry count as the ring.h ring of 64-byte entries in a page

function rawProducer(job: RingBenchJob, ctl: Int32Array): RingBenchReport {
  const w = new Int32Array(job.ring);
  syncStart(ctl);
  const clock = new Clock(job);
  let prod = 0, atStart = -1, t0 = 0n, waits = 0, kicks = 0;
  for (let phase = clock.phase(); phase !== 'stop'; phase = clock.phase()) {
    const cons = Atomics.load(w, RAW_CONS);
    if (phase === 'timed' && atStart < 0) [atStart, t0] = [cons, process.hrtime.bigint()];
    const free = RAW_SIZE - ((prod - cons) | 0);
    if (free === 0) {
      Atomics.wait(w, RAW_CONS, cons, SLICE_MS);
      waits++;
      continue;
    }
    for (let i = 0; i < free; i++, prod = (prod + 1) | 0) {
      const base = RAW_SLOTS + (prod & (RAW_SIZE - 1)) * WORDS;
      w[base] = prod;
      for (let k = 1; k < WORDS; k++) w[base + k] = prod + k;
    }
    Atomics.store(w, RAW_PROD, prod);
    Atomics.notify(w, RAW_PROD, 1);
    kicks++;
  }
  while (Atomics.load(w, RAW_CONS) !== prod) Atomics.wait(w, RAW_CONS, Atomics.load(w, RAW_CONS), SLICE_MS);
  const elapsedNs = Number(process.hrtime.bigint() - t0);
  const requests = (prod - atStart) >>> 0;
  Atomics.store(ctl, STOP, 1);
  Atomics.notify(w, RAW_PROD, 1);
  return { requests, total: prod >>> 0, elapsedNs, kicks, waits, errors: 0 };
}

function rawConsumer(job: RingBenchJob, ctl: Int32Array): RingBenchReport {
  const w = new Int32Array(job.ring);
  syncStart(ctl);
  let cons = 0, handled = 0, errors = 0, waits = 0, kicks = 0;
  for (;;) {
    const prod = Atomics.load(w, RAW_PROD);
    if (prod === cons) {
      if (Atomics.load(ctl, STOP) !== 0) break;
      Atomics.wait(w, RAW_PROD, cons, SLICE_MS);
      waits++;
      continue;
    }
    for (; cons !== prod; cons = (cons + 1) | 0, handled++) {
      const base = RAW_SLOTS + (cons & (RAW_SIZE - 1)) * WORDS;
      let check = 0;
      for (let k = 1; k < WORDS; k++) check ^= w[base + k]!;
      if (w[base] !== cons || check !== rawCheck(cons)) errors++;
    }
    Atomics.store(w, RAW_CONS, cons);
    Atomics.notify(w, RAW_CONS, 1);
    kicks++;
  }
  return { requests: handled, total: handled, elapsedNs: 0, kicks, waits, errors };
}

function rawCheck(id: number): number {
  let check = 0;
  for (let k = 1; k < WORDS; k++) check ^= (id + k) | 0;
  return check;
}

const job = workerData as RingBenchJob;
const ctl = new Int32Array(job.ctl);
const roles = { front, back, 'raw-producer': rawProducer, 'raw-consumer': rawConsumer } as const;
parentPort?.postMessage(roles[job.role](job, ctl));
