/**
 * `xenpv bench xenstore` (issue 3, Performance): operations per second of the daemon for READ,
 * WRITE, DIRECTORY and a read-modify-write transaction, with 1 and with 64 concurrent clients,
 * over the unix socket and over guest ring pages, beside a bare Node unix-socket echo measured
 * in the same run; and the daemon's heap per 10,000 nodes.
 *
 * Layout (the machine has 2 cores): the daemon in one worker thread, alone on its event loop;
 * every client (socket, guest, echo) in one other worker thread; the echo server in a third
 * thread that is idle except while the echo is timed. The main thread only orchestrates, so
 * at any moment two threads are busy: one server, one client side. The echo is measured with
 * the same layout, the same request and reply sizes as a socket READ, one request in flight
 * per client, a promise per round trip on the client side like the store client's.
 *
 * Comparisons (names from the issue): `xenstore.read_ops_per_s.1client.vs_echo` (aim >= 0.6)
 * and `xenstore.read_ops_per_s.64clients.vs_1client` (aim >= 2), both over the socket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hypervisor } from '../hv/sim/hypervisor.js';
import { compare, summarize, workerReport, type BenchOptions, type BenchResult, type BenchSuite, type SuiteOutput } from './harness.js';
import { WorkerRpc, type MemoryReport, type Reply, type RunReport, type XsBenchOp, type XsBenchTarget } from './xenstore/messages.js';
import { READ_REPLY_BYTES, readRequestBytes } from './xenstore/workload.js';

const here = (f: string): URL => new URL(`./xenstore/${f}`, import.meta.url);

interface Plan {
  readonly runs: number;
  readonly warmupRounds: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly memoryRuns: number;
  readonly nodes: number;
}

const MANY = 64;
const FULL: Plan = { runs: 9, warmupRounds: 1, warmupMs: 100, durationMs: 300, memoryRuns: 3, nodes: 10_000 };
const QUICK: Plan = { runs: 2, warmupRounds: 0, warmupMs: 10, durationMs: 30, memoryRuns: 1, nodes: 10_000 };
const OPS: readonly XsBenchOp[] = ['read', 'write', 'directory', 'txn'];

interface Config {
  readonly name: string;
  readonly target: XsBenchTarget;
  readonly op: XsBenchOp;
  readonly clients: number;
}

function config(target: XsBenchTarget, op: XsBenchOp, clients: number): Config {
  const who = clients === 1 ? '1client' : `${clients}clients`;
  const what = target === 'echo' ? 'echo.roundtrips_per_s' : `${target}.${op}_ops_per_s`;
  return { name: `xenstore.${what}.${who}`, target, op, clients };
}

/**
 * Every timed configuration, in round order. The pairs held against each other sit next to
 * each other, and rounds alternate direction, so each pair sees the same machine.
 */
function configs(): Config[] {
  const out = [config('echo', 'read', 1), config('socket', 'read', 1), config('socket', 'read', MANY), config('echo', 'read', MANY)];
  for (const target of ['socket', 'ring'] as const) {
    for (const op of OPS) {
      for (const n of [1, MANY]) if (!(target === 'socket' && op === 'read')) out.push(config(target, op, n));
    }
  }
  return out;
}

type Sample = RunReport & { readonly serverElu: number; readonly cpuUs: number };

/** The threads of one benchmark run, and the guest domains the ring clients live in. */
class Rig {
  private constructor(
    readonly hv: Hypervisor,
    readonly dir: string,
    readonly echo: WorkerRpc,
    readonly daemon: WorkerRpc,
    readonly clients: WorkerRpc,
  ) {}

  static async start(): Promise<Rig> {
    const dir = await mkdtemp(join(tmpdir(), 'xenpv-xsbench-'));
    const hv = new Hypervisor({ maxDomains: MANY + 8, maxMachineBytes: 2 ** 28, dom0Pages: 256 });
    const started: WorkerRpc[] = [];
    try {
      const domids = Array.from({ length: MANY }, (_, i) => hv.createDomain({ name: `xsbench${i}`, memoryPages: 16 }));
      const daemonPath = join(dir, 'xenstored.sock');
      const echoPath = join(dir, 'echo.sock');
      const echo = await WorkerRpc.start(here('echo-worker.js'), 'echo', { socketPath: echoPath, replyBytes: READ_REPLY_BYTES });
      started.push(echo);
      const daemon = await WorkerRpc.start(here('daemon-worker.js'), 'xenstored', { socketPath: daemonPath, hv: hv.handle });
      started.push(daemon);
      const guests = domids.map((domid) => {
        const si = hv.startInfo(domid)!;
        return { domid, gfn: si.storeFrame, port: si.storePort };
      });
      await daemon.call({ kind: 'introduce', guests });
      const clients = await WorkerRpc.start(here('client-worker.js'), 'clients', {
        daemonPath,
        echoPath,
        hv: hv.handle,
        guests: domids,
        sockets: MANY,
      });
      started.push(clients);
      await clients.call({ kind: 'setup' });
      return new Rig(hv, dir, echo, daemon, clients);
    } catch (err) {
      await closeAll(started.reverse(), hv, dir);
      throw err;
    }
  }

  /**
   * One timed run, with the serving thread's event-loop utilization and the process's CPU
   * time (every thread: server and clients) over the whole call.
   */
  async run(c: Config, plan: Plan): Promise<Sample> {
    const server = (c.target === 'echo' ? this.echo : this.daemon).worker.performance;
    const [e0, cpu0] = [server.eventLoopUtilization(), process.cpuUsage()];
    const r = expectKind(await this.clients.call({ kind: 'run', ...c, warmupMs: plan.warmupMs, durationMs: plan.durationMs }), 'run');
    const cpu = process.cpuUsage(cpu0);
    return { ...r, serverElu: server.eventLoopUtilization(e0).utilization, cpuUs: cpu.user + cpu.system };
  }

  close(): Promise<void> {
    return closeAll([this.clients, this.daemon, this.echo], this.hv, this.dir);
  }
}

async function closeAll(workers: readonly WorkerRpc[], hv: Hypervisor, dir: string): Promise<void> {
  for (const w of workers) await w.close().catch(() => w.worker.terminate());
  await hv.dispose();
  await rm(dir, { recursive: true, force: true });
}

function expectKind<K extends Reply['kind']>(r: Reply, kind: K): Extract<Reply, { kind: K }> {
  if (r.kind !== kind) throw new Error(`xenstore bench: expected a '${kind}' reply, got '${r.kind}'`);
  return r as Extract<Reply, { kind: K }>;
}

/** Every configuration, `warmupRounds` discarded rounds then `runs` timed ones. */
async function throughput(rig: Rig, plan: Plan): Promise<Map<string, Sample[]>> {
  const all = configs();
  const samples = new Map<string, Sample[]>(all.map((c) => [c.name, []]));
  for (let round = 0; round < plan.warmupRounds + plan.runs; round++) {
    const order = round % 2 === 0 ? all : [...all].reverse();
    for (const c of order) {
      const r = await rig.run(c, plan);
      if (round >= plan.warmupRounds) samples.get(c.name)!.push(r);
    }
  }
  return samples;
}

function summarizeRuns(name: string, runs: readonly Sample[]): BenchResult {
  const values = runs.map((r) => r.ops / (r.elapsedNs / 1e9));
  const extras = runs.map((r) => ({
    server_elu: r.serverElu,
    client_elu: r.clientElu,
    cpu_us_per_op: r.totalOps === 0 ? 0 : r.cpuUs / r.totalOps,
    ...(name.includes('.txn_') ? { retries_per_op: r.totalOps === 0 ? 0 : r.retries / r.totalOps } : {}),
  }));
  return summarize(name, 'ops/s', 'higher', values, extras);
}

/**
 * The ratio of two figures round by round (they ran next to each other in every round), as a
 * result of its own: on a loaded machine its median moves less than the ratio of the medians
 * the comparisons report.
 */
function paired(name: string, samples: ReadonlyMap<string, readonly Sample[]>, value: Config, baseline: Config): BenchResult {
  const rate = (r: Sample): number => r.ops / (r.elapsedNs / 1e9);
  const v = samples.get(value.name)!;
  const b = samples.get(baseline.name)!;
  return summarize(name, 'ratio', 'higher', v.map((r, i) => rate(r) / rate(b[i]!)));
}

async function memoryRun(nodes: number): Promise<MemoryReport> {
  const report = await workerReport<Reply>(here('memory-worker.js'), { nodes }, 'xenstore memory worker');
  if (report.kind === 'error') throw new Error(`xenstore memory worker: ${report.message}`);
  return expectKind(report, 'memory');
}

async function memory(plan: Plan): Promise<BenchResult> {
  const runs: MemoryReport[] = [];
  for (let i = 0; i < plan.memoryRuns; i++) runs.push(await memoryRun(plan.nodes));
  const per10k = (bytes: number, r: MemoryReport): number => (bytes * 10_000) / r.nodes;
  return summarize(
    'xenstore.daemon_heap_bytes_per_10k_nodes',
    'bytes',
    'lower',
    runs.map((r) => per10k(r.heapAfter - r.heapBefore, r)),
    runs.map((r) => ({ nodes_created: r.nodes, accounted_bytes_per_10k_nodes: per10k(r.accountedBytes, r), heap_before: r.heapBefore })),
  );
}

function notes(plan: Plan, load: readonly number[]): string[] {
  const req = readRequestBytes().length;
  return [
    `layout: xenstored in one worker thread (alone on its event loop); all clients (64 unix-socket connections as dom0, 64 guest domains each with its own xenstore page + event channel through the guest kernel's StoreRing, 64 echo connections) in one other worker thread; the echo server in a third thread, busy only while the echo is timed; the main thread only orchestrates. Two busy threads at a time on a 2-core machine.`,
    `echo baseline: a bare Node unix-socket server in its own thread that frames requests by the xenstore header length and answers each with ${READ_REPLY_BYTES} bytes; its clients send the ${req}-byte READ request of socket client 0 and await each whole reply (a promise per round trip, one in flight per client), as the store clients do. Its unit "ops/s" is round trips per second.`,
    'ops: read = READ of a 16-byte value; write = WRITE of 16 bytes over an existing node; directory = DIRECTORY of 8 children; txn = TRANSACTION_START, READ, WRITE counter+1, TRANSACTION_END T (retried whole on EAGAIN; retries_per_op). Each client has its own nodes; every client keeps one request in flight.',
    'ring clients: each guest is a sim domain whose client runs the guest kernel\'s StoreRing + XsClient in the clients thread (not one thread per guest: 64 threads on 2 cores would measure the scheduler); the daemon reaches the page through grant 1 and binds the start-info port (INTRODUCE), as for a booted guest.',
    'extras: server_elu is the serving thread\'s (xenstored\'s or the echo server\'s) event-loop utilization over the whole run, warm-up included; client_elu the clients thread\'s in the timed window. A thread woken but waiting for a core still counts as idle, so on a loaded machine both read low while throughput drops. cpu_us_per_op is the whole process\'s CPU time (server and client threads, user + system) per operation over the whole run: the cost of an operation, which the machine\'s load hardly changes.',
    'limits: C xenstored defaults, except the per-guest write rate limit (WRL, 200 writes/s), lifted so ring writes measure the daemon rather than the limiter.',
    `memory: heap used after GC in a fresh daemon thread, before and after creating ${plan.nodes} leaf nodes (16-byte values, 100 per directory) through an in-process dom0 connection, scaled to 10,000 nodes of the daemon's own count (leaves plus directories); accounted_bytes is the daemon's quota accounting of the same nodes.`,
    `${plan.runs} timed runs of ${plan.durationMs} ms (after ${plan.warmupMs} ms warm-up) per figure, ${plan.warmupRounds} discarded round(s); rounds alternate direction. Load average at start/end: ${load.map((l) => l.toFixed(2)).join(' / ')}.`,
  ];
}

export const xenstoreSuite: BenchSuite = {
  name: 'xenstore',
  description: 'xenstored ops/s (read, write, directory, transaction; 1 and 64 clients; socket and ring) vs a bare unix-socket echo; heap per 10,000 nodes',
  async run(options: BenchOptions): Promise<SuiteOutput> {
    const plan = options.quick ? QUICK : FULL;
    const loadStart = loadavg()[0]!;
    const rig = await Rig.start();
    let samples: Map<string, Sample[]>;
    try {
      samples = await throughput(rig, plan);
    } finally {
      await rig.close();
    }
    const results = [...samples].map(([name, runs]) => summarizeRuns(name, runs));
    const by = (name: string): BenchResult => results.find((r) => r.name === name)!;
    results.push(
      paired('xenstore.paired_ratio.read_1client_vs_echo', samples, config('socket', 'read', 1), config('echo', 'read', 1)),
      paired('xenstore.paired_ratio.read_64clients_vs_1client', samples, config('socket', 'read', MANY), config('socket', 'read', 1)),
      // The same for the bare echo: how much 64 clients can gain at all with this layout here.
      paired('xenstore.paired_ratio.echo_64clients_vs_1client', samples, config('echo', 'read', MANY), config('echo', 'read', 1)),
      await memory(plan),
    );
    const read1 = by(config('socket', 'read', 1).name);
    return {
      results,
      comparisons: [
        compare('xenstore.read_ops_per_s.1client.vs_echo', read1, by(config('echo', 'read', 1).name), 0.6),
        compare('xenstore.read_ops_per_s.64clients.vs_1client', by(config('socket', 'read', MANY).name), read1, 2),
      ],
      notes: notes(plan, [loadStart, loadavg()[0]!]),
    };
  },
};
