/**
 * `xenpv bench ring` (issue 2, Performance): two figures, each against its baseline in the
 * same run.
 *
 * (a) `ring.requests_per_s.vs_raw_ring`: completed requests per second through a ring.h
 *     front/back ring pair (ring/), one 4 KiB page of 64-byte entries, in two worker
 *     threads, against a raw SharedArrayBuffer single-producer ring of the same entry size
 *     and count. Aim: ratio >= 0.7.
 * (b) `ring.evtchn_roundtrip_us.vs_raw_pingpong`: microseconds per event-channel round trip
 *     between two domains of the sim hypervisor (hv/sim, each side a worker blocking in
 *     timed waits) against a raw Atomics.wait/notify ping-pong between two workers. Aim:
 *     ratio <= 1.5 ("better": "lower").
 */
import { Hypervisor } from '../hv/sim/hypervisor.js';
import { measureEvtchnRoundTrip, measureRawPingPong } from '../hv/sim/roundtrip.js';
import { alternate, compare, summarize, workerReport, type BenchOptions, type BenchSuite, type SuiteOutput } from './harness.js';
import type { RingBenchJob, RingBenchReport } from './ring-worker.js';

const WORKER = new URL('./ring-worker.js', import.meta.url);

interface Plan {
  readonly runs: number;
  readonly warmupRuns: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly roundTrips: number;
}

const FULL: Plan = { runs: 7, warmupRuns: 1, warmupMs: 150, durationMs: 700, roundTrips: 20000 };
const QUICK: Plan = { runs: 3, warmupRuns: 0, warmupMs: 20, durationMs: 60, roundTrips: 500 };

function runWorker(job: RingBenchJob): Promise<RingBenchReport> {
  return workerReport(WORKER, job, `ring bench worker ${job.role}`);
}

type Sample = { value: number; extra: Record<string, number> };

/** One timed run of a producer/consumer pair; the figure is completed requests per second. */
async function throughputRun(plan: Plan, producer: 'front' | 'raw-producer'): Promise<Sample> {
  const consumer = producer === 'front' ? 'back' : 'raw-consumer';
  const ring = new SharedArrayBuffer(4096);
  const ctl = new SharedArrayBuffer(256);
  const base = { ring, ctl, warmupMs: plan.warmupMs, durationMs: plan.durationMs };
  const [p, c] = await Promise.all([runWorker({ ...base, role: producer }), runWorker({ ...base, role: consumer })]);
  if (p.errors + c.errors > 0) throw new Error(`ring bench (${producer}): ${p.errors + c.errors} bad entries`);
  const perReq = (n: number): number => (p.total === 0 ? 0 : n / p.total);
  return {
    value: p.requests / (p.elapsedNs / 1e9),
    extra: {
      kicks_per_request: perReq(p.kicks + c.kicks),
      waits_per_request: perReq(p.waits + c.waits),
    },
  };
}

async function ringThroughput(plan: Plan): Promise<SuiteOutput> {
  const r = await alternate(
    plan.runs,
    plan.warmupRuns,
    () => throughputRun(plan, 'front'),
    () => throughputRun(plan, 'raw-producer'),
  );
  const ours = summarize('ring.requests_per_s', 'requests/s', 'higher', r.value.map((s) => s.value), r.value.map((s) => s.extra));
  const raw = summarize('ring.raw_ring.requests_per_s', 'requests/s', 'higher', r.baseline.map((s) => s.value), r.baseline.map((s) => s.extra));
  return {
    results: [ours, raw],
    comparisons: [compare('ring.requests_per_s.vs_raw_ring', ours, raw, 0.7)],
    notes: [
      'ring: one 4 KiB page, 64-byte entries (32 slots), request + 8-byte response per operation, copy-once decode, ring.h notify hold-off; raw ring: 64-byte slots, 32 of them, requests only (completion = the consumer index), notify on every publish.',
    ],
  };
}

async function evtchnRoundTrip(plan: Plan): Promise<SuiteOutput> {
  const hv = new Hypervisor();
  try {
    const opts = { iterations: plan.roundTrips, warmup: Math.min(1000, plan.roundTrips) };
    const r = await alternate(
      plan.runs,
      plan.warmupRuns,
      async () => ({ value: (await measureEvtchnRoundTrip(hv, opts)).usPerRoundTrip }),
      async () => ({ value: (await measureRawPingPong(opts)).usPerRoundTrip }),
    );
    const ev = summarize('ring.evtchn_roundtrip_us', 'us', 'lower', r.value.map((s) => s.value));
    const raw = summarize('ring.raw_pingpong_roundtrip_us', 'us', 'lower', r.baseline.map((s) => s.value));
    return {
      results: [ev, raw],
      comparisons: [compare('ring.evtchn_roundtrip_us.vs_raw_pingpong', ev, raw, 1.5)],
      notes: [
        `evtchn: ${plan.roundTrips} round trips per run over an interdomain channel between two sim domains (EVTCHNOP_send, 2-level pending bits, upcall), against a bare Atomics.wait/notify ping-pong between two workers.`,
      ],
    };
  } finally {
    await hv.dispose();
  }
}

export const ringSuite: BenchSuite = {
  name: 'ring',
  description: 'ring throughput vs a raw SharedArrayBuffer ring; event-channel round trip vs a raw Atomics ping-pong',
  async run(options: BenchOptions): Promise<SuiteOutput> {
    const plan = options.quick ? QUICK : FULL;
    const a = await ringThroughput(plan);
    const b = await evtchnRoundTrip(plan);
    return {
      results: [...a.results, ...b.results],
      comparisons: [...a.comparisons, ...b.comparisons],
      notes: [...(a.notes ?? []), ...(b.notes ?? []), `${plan.runs} timed runs per figure (medians), figure and baseline alternating.`],
    };
  },
};
