/**
 * `xenpv bench net` in the layout the toolstack runs: a `Host` in this process (hypervisor
 * model, xenstored, xenbr0 and both netbacks on dom0's event loop), each guest a vCPU worker
 * thread running a built-in program over its own netfront and NetStack:
 *
 *   udp-send (worker) → netfront → netback (dom0) → xenbr0 → netback → netfront → udp-recv (worker)
 *
 * The guests are created from the bundled example config as `xenpv create` would (the demo's
 * `startGuest`), and print one JSON line each. Kicks per packet are counted at both ends of
 * both hops: events netback took from the sender's netfront, events the receiver's netfront
 * took from its netback (the guest program reports its NIC's upcalls).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { schedSince, threadSched, type SchedDelta } from '../hv/sim/thread-sched.js';
import type { PingResult } from '../guest/net/ping.js';
import type { StreamReport } from '../guest/net/udp-stream.js';
import { Host } from '../toolstack/index.js';
import { occupancyExtras, occupancyOf } from './demo/cpu.js';
import { startGuest, type DemoContext, type RunningGuest } from './demo/guests.js';
import { latencyFigures } from './harness.js';

const PORT = 5001;

/**
 * Where the stream's threads run: xl CPU lists for Domain-0's vCPU (the host thread, where
 * netback and the bridge run) and for both guests' vCPUs; undefined leaves them unpinned.
 */
export interface NetLayout {
  readonly dom0?: string;
  readonly guests?: string;
}

export const UNPINNED: NetLayout = {};

export interface WorkerSample {
  value: number;
  extra: Record<string, number>;
}

/** One Host for all worker-layout runs of a bench; guests are created and destroyed per run. */
export class WorkerBed {
  private constructor(
    private readonly host: Host,
    private readonly dir: string,
    private readonly ctx: DemoContext,
  ) {}

  static async start(): Promise<WorkerBed> {
    const dir = await mkdtemp(join(tmpdir(), 'xenpv-bench-net-'));
    const host = await Host.start({ runDir: join(dir, 'run'), storeSocket: false, maxMachineBytes: 2 ** 30 });
    return new WorkerBed(host, dir, { host, baseDir: dir, commands: new Map(), step: () => undefined });
  }

  get hv(): Host['hv'] {
    return this.host.hv;
  }

  async close(): Promise<void> {
    await this.host.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async receiver(name: string, timeoutMs: number, omitMs = 0, cpus?: string): Promise<RunningGuest> {
    const g = await startGuest(this.ctx, { name, program: 'udp-recv', extra: `port=${PORT} timeout=${timeoutMs} omit=${omitMs}`, noDisk: true, ...(cpus === undefined ? {} : { cpus }) });
    await g.line(/^udp-recv: listening/, 30_000);
    return g;
  }

  /** Counters of the vif of `g` in dom0 (netback events, bridge port drops). */
  private vif(g: RunningGuest): { notifies: number; txQueueFull: number } {
    const nic = this.host.domains.get(g.domid)?.nics.get(0);
    const st = nic?.back.stats();
    return { notifies: st?.back.notifies ?? 0, txQueueFull: st?.port?.txQueueFull ?? 0 };
  }

  /**
   * A UDP stream of `size`-byte payloads between two fresh guests: `omitMs` uncounted (the
   * receiver's rates start then), then `durationMs` measured. CPU per packet is over the whole stream.
   */
  async udp(size: number, durationMs: number, omitMs = 0, layout: NetLayout = UNPINNED): Promise<WorkerSample> {
    const guests: RunningGuest[] = [];
    const streamMs = omitMs + durationMs;
    if (layout.dom0 !== undefined) this.host.vcpuPin('Domain-0', '0', layout.dom0);
    try {
      const recv = await this.receiver('bench-net-recv', streamMs + 5000, omitMs, layout.guests);
      guests.push(recv);
      const send = await startGuest(this.ctx, {
        name: 'bench-net-send', program: 'udp-send', extra: `dst=10.0.0.${recv.domid} port=${PORT} size=${size} duration=${streamMs}`, noDisk: true,
        ...(layout.guests === undefined ? {} : { cpus: layout.guests }),
      });
      guests.push(send);
      await send.line(/^udp-send: streaming/, 30_000);
      // dom0's share: this thread (netbacks, xenbr0, xenstored) over the stream.
      const dom0From = threadSched();
      const dom0T0 = performance.now();
      const tx = (await send.json<StreamReport>('udp', streamMs + 30_000)).value;
      const dom0 = schedSince(dom0From);
      const dom0Ms = performance.now() - dom0T0;
      const rx = (await recv.json<StreamReport>('udp', streamMs + 30_000)).value;
      const sendVif = this.vif(send);
      const recvVif = this.vif(recv);
      const frame = size + 42;
      return {
        value: (rx.pps * frame * 8) / 1e6,
        extra: {
          pps: rx.pps,
          sent: tx.packets,
          received: rx.packets,
          lost: rx.lost ?? 0,
          loss_percent: rx.lossPercent ?? 0,
          sender_nic_drops: tx.nicTxDropped ?? 0,
          bridge_drops: recvVif.txQueueFull,
          // Kicks (event-channel notifications sent) per datagram on each ring, after ring.h's
          // suppression: the sender's tx requests, netback's tx responses, netback's rx
          // responses to the receiver, the receiver's rx buffer posts.
          kicks_per_packet_tx_req: per(tx.nicNotifies ?? 0, tx.packets),
          kicks_per_packet_tx_rsp: per(sendVif.notifies, tx.packets),
          kicks_per_packet_rx_rsp: per(recvVif.notifies, rx.packets),
          kicks_per_packet_rx_post: per(rx.nicNotifies ?? 0, rx.packets),
          upcalls_per_packet_sender: per(tx.nicEvents ?? 0, tx.packets),
          upcalls_per_packet_receiver: per(rx.nicEvents ?? 0, rx.packets),
          // CPU µs per datagram on each thread (/proc/thread-self/schedstat), 0 where unknown.
          cpu_us_per_packet_sender: per((tx.cpuMs ?? 0) * 1000, tx.packets),
          cpu_us_per_packet_dom0: per((dom0.cpuMs ?? 0) * 1000, tx.packets),
          cpu_us_per_packet_receiver: per((rx.cpuMs ?? 0) * 1000, rx.packets),
          // Where each thread was (hv/sim/thread-sched.ts), the guests' over the sender's stream.
          ...occupancy('sender', tx, tx.durationMs),
          ...occupancy('dom0', dom0, dom0Ms),
          ...occupancy('receiver', rx, tx.durationMs),
        },
      };
    } finally {
      for (const g of guests) await g.finish();
      if (layout.dom0 !== undefined) this.host.vcpuPin('Domain-0', '0', 'all');
    }
  }

  /** `count` sequential pings `intervalMs` apart (one in flight) from a fresh guest to a listener; median RTT in µs. */
  async ping(count: number, intervalMs: number): Promise<WorkerSample> {
    const guests: RunningGuest[] = [];
    try {
      const target = await this.receiver('bench-net-echo', 600_000);
      guests.push(target);
      const pinger = await startGuest(this.ctx, {
        name: 'bench-net-ping', program: 'ping', extra: `dst=10.0.0.${target.domid} count=${count} interval=${intervalMs} timeout=2000`, noDisk: true,
      });
      guests.push(pinger);
      const r = (await pinger.json<PingResult>('ping', count * 50 + 30_000)).value;
      const times = replyTimesUs(pinger.consoleLines());
      if (times.length === 0) throw new Error(`bench net: no ping replies (${JSON.stringify(r)})`);
      // harness.median, as its paced baseline uses (the mean of the two middle samples when even).
      const t = latencyFigures(times);
      return { value: t.median, extra: { mean_us: (r.rtt?.avg ?? 0) * 1000, max_us: (r.rtt?.max ?? 0) * 1000, p90_us: t.p90, loss_percent: r.lossPercent } };
    } finally {
      for (const g of guests) await g.finish();
    }
  }
}

/**
 * A thread's part of a span: the percent of it on a CPU and runnable but waiting for one, and
 * its sleeps a second (each one a wake-up some other thread paid for). Nothing where unknown.
 */
function occupancy(thread: string, s: SchedDelta, spanMs: number): Record<string, number> {
  if (s.cpuMs === undefined || s.runqMs === undefined) return {};
  return occupancyExtras(occupancyOf({ ns: s.cpuMs * 1e6, runqNs: s.runqMs * 1e6, sleeps: s.sleeps }, spanMs), (what) => `${what}_${thread}`);
}

function per(n: number, packets: number): number {
  return packets > 0 ? n / packets : 0;
}

/** Per-reply round trips in µs from ping's lines ("... time=0.245 ms"). */
function replyTimesUs(lines: readonly string[]): number[] {
  return lines.flatMap((l) => {
    const m = /icmp_seq=\d+ ttl=\d+ time=(\d+(?:\.\d+)?) ms/.exec(l);
    return m === null ? [] : [Number(m[1]) * 1000];
  });
}
