/**
 * The clients' thread in `xenpv bench xenstore`: socket clients (dom0 tools, one connection
 * each), guest clients (one guest domain each, talking through its own xenstore page and event
 * channel with the guest kernel's `StoreRing`), and the echo baseline's clients, all on this
 * one event loop, so the daemon's thread (or the echo server's) has the other core.
 *
 * Every client keeps exactly one request in flight: it sends the next when the last is answered.
 */
import { createConnection, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { SimPlatform } from '../../hv/sim/platform.js';
import { StoreRing } from '../../guest/store-ring.js';
import { connectSocket, XsClient } from '../../xenstore/client/index.js';
import { serve, type ClientJob, type Reply, type Request, type RunReport, type XsBenchOp } from './messages.js';
import { GUEST_BASE, prepare, READ_REPLY_BYTES, readRequestBytes, runOp, socketBase } from './workload.js';

const STALL_MS = 10_000;

interface StoreClient {
  readonly xs: XsClient;
  readonly base: string;
}

interface Guest extends StoreClient {
  readonly platform: SimPlatform;
  readonly ring: StoreRing;
}

/** A raw socket client of the echo server: one request, then wait for one whole reply. */
class EchoClient {
  private got = 0;
  private done: (() => void) | undefined;

  constructor(readonly sock: Socket, private readonly request: Uint8Array) {
    sock.on('data', (chunk: Buffer) => {
      this.got += chunk.length;
      if (this.got < READ_REPLY_BYTES) return;
      this.got -= READ_REPLY_BYTES;
      const d = this.done;
      this.done = undefined;
      d?.();
    });
  }

  roundTrip(): Promise<void> {
    return new Promise((resolve) => {
      this.done = resolve;
      this.sock.write(this.request);
    });
  }
}

const job = workerData as ClientJob;
const sockets: StoreClient[] = [];
const guests: Guest[] = [];
const echoes: EchoClient[] = [];

function connectRaw(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

function attachGuest(domid: number): Guest {
  const platform = SimPlatform.attach({ hv: job.hv, domid });
  const ring = new StoreRing(platform);
  const xs = new XsClient(ring.openClient(), { label: `bench guest ${domid}` });
  platform.events.startAsync();
  return { platform, ring, xs, base: GUEST_BASE };
}

async function setup(): Promise<void> {
  const request = readRequestBytes();
  for (let i = 0; i < job.sockets; i++) {
    sockets.push({ xs: new XsClient(await connectSocket(job.daemonPath), { label: `bench socket ${i}` }), base: socketBase(i) });
    echoes.push(new EchoClient(await connectRaw(job.echoPath), request));
  }
  for (const domid of job.guests) guests.push(attachGuest(domid));
  await Promise.all([...sockets, ...guests].map((c) => prepare(c.xs, c.base)));
}

/** One client's closed loop until `stop()` says so; counts in `counts[i]`. */
type Loop = (i: number, stop: () => boolean, counts: number[]) => Promise<number>;

function storeLoop(clients: readonly StoreClient[], op: XsBenchOp): Loop {
  return async (i, stop, counts) => {
    const c = clients[i]!;
    let retries = 0;
    while (!stop()) {
      retries += await runOp(c.xs, c.base, op);
      counts[i]!++;
    }
    return retries;
  };
}

const echoLoop: Loop = async (i, stop, counts) => {
  const c = echoes[i]!;
  while (!stop()) {
    await c.roundTrip();
    counts[i]!++;
  }
  return 0;
};

async function timed(n: number, loop: Loop, warmupMs: number, durationMs: number): Promise<RunReport> {
  let stopped = false;
  const counts = new Array<number>(n).fill(0);
  const sum = (): number => counts.reduce((a, b) => a + b, 0);
  const loops = Array.from({ length: n }, (_, i) => loop(i, () => stopped, counts));
  await sleep(warmupMs);
  const [c0, t0, e0] = [sum(), process.hrtime.bigint(), performance.eventLoopUtilization()];
  await sleep(durationMs);
  // The window lasts until at least one operation ends in it (a short run on a loaded machine
  // can see none); a path that completes nothing for STALL_MS is broken, not slow.
  for (let waited = 0; sum() === c0; waited += 5) {
    if (waited >= STALL_MS) {
      stopped = true;
      void Promise.allSettled(loops); // they fail when the connections close: not unhandled
      throw new Error(`no operation completed in ${STALL_MS} ms`);
    }
    await sleep(5);
  }
  const [c1, t1, e1] = [sum(), process.hrtime.bigint(), performance.eventLoopUtilization(e0)];
  stopped = true;
  const retries = (await Promise.all(loops)).reduce((a, b) => a + b, 0);
  return { kind: 'run', ops: c1 - c0, elapsedNs: Number(t1 - t0), totalOps: sum(), retries, clientElu: e1.utilization };
}

async function run(req: Extract<Request, { kind: 'run' }>): Promise<RunReport> {
  const pool = req.target === 'socket' ? sockets : req.target === 'ring' ? guests : echoes;
  if (req.clients > pool.length) throw new Error(`${req.clients} ${req.target} clients asked, ${pool.length} set up`);
  const loop = req.target === 'echo' ? echoLoop : storeLoop(pool as StoreClient[], req.op);
  return timed(req.clients, loop, req.warmupMs, req.durationMs);
}

function close(): void {
  for (const c of sockets) c.xs.close();
  for (const e of echoes) e.sock.destroy();
  for (const g of guests) {
    g.xs.close();
    g.ring.close();
    g.platform.events.stopAsync();
    g.platform.dispose();
  }
  setImmediate(() => parentPort!.close());
}

serve(parentPort!, async (req): Promise<Reply> => {
  switch (req.kind) {
    case 'setup':
      await setup();
      return { kind: 'ok' };
    case 'run':
      return run(req);
    case 'close':
      close();
      return { kind: 'ok' };
    default:
      throw new Error(`client worker: unexpected request ${req.kind}`);
  }
});
parentPort!.postMessage({ kind: 'ready' } satisfies Reply);
