/**
 * The demo's network work, through PV and natively:
 *
 * - PV: guests from the example config, their vif on one bridge (xenbr0): a pinger
 *   (`builtin:ping`, sequential ICMP echoes) against a guest with its stack up, then a receiver
 *   (`builtin:udp-recv`) and a sender (`builtin:udp-send`, 1472-byte payloads = 1514-byte
 *   frames, unpaced). Each frame
 *   goes guest stack → netfront → netback → bridge → netback → netfront → guest stack.
 * - native: the host's own kernel path, in this process: a loopback UDP socket pair for the
 *   stream (same payload, same bounded window of datagrams in flight as bench net), and a UDP
 *   echo on loopback for the round trip (no raw sockets for ICMP without privileges).
 *
 * dom0 CPU per GiB: for PV, every thread but the guests' over the receiver's window (cpu.ts);
 * natively, the whole process (it is sender, kernel path and receiver at once).
 */
import { createSocket, type Socket } from 'node:dgram';
import type { StreamReport } from '../../guest/net/udp-stream.js';
import type { PingResult } from '../../guest/net/ping.js';
import { cpuSecondsPerGiB, processCpuNs } from '../block-cpu.js';
import { median } from '../harness.js';
import { Dom0CpuSampler } from './cpu.js';
import type { DemoSamples } from './figures.js';
import { startGuest, type DemoContext, type RunningGuest } from './guests.js';
import type { DemoPlan } from './plan.js';

export const UDP_PAYLOAD = 1472;
const PORT = 5001;
/** Datagrams in flight at most in the native stream (bench net's WINDOW). */
const WINDOW = 128;

const ipOf = (g: RunningGuest): string => `10.0.0.${g.domid}`;

/**
 * Round trips from ping's per-reply lines ("64 bytes from ...: icmp_seq=1 ttl=64 time=0.245 ms"),
 * in µs. The demo takes their median: the first echo also waits for ARP, and a neighbour's
 * burst on this shared machine can stall one reply for milliseconds; the mean would show those.
 */
export function replyTimesUs(lines: readonly string[]): number[] {
  return lines.flatMap((l) => {
    const m = /^\d+ bytes from [\d.]+: icmp_seq=\d+ ttl=\d+ time=(\d+(?:\.\d+)?) ms/.exec(l);
    return m === null ? [] : [Number(m[1]) * 1000];
  });
}

/** Step lines one PV network round shows. */
export const PV_NET_STEPS = 2;

/** One PV round: pings between two guests, then a UDP stream between two others. */
export async function pvNetRound(ctx: DemoContext, plan: DemoPlan, s: DemoSamples): Promise<void> {
  await pvPing(ctx, plan, s);
  await pvStream(ctx, plan, s);
}

/** A guest with eth0 up and its stack answering echoes (udp-recv waits for a stream on `port`). */
async function listener(ctx: DemoContext, name: string, port: number, timeoutMs: number, guests: RunningGuest[]): Promise<RunningGuest> {
  const g = await startGuest(ctx, { name, program: 'udp-recv', extra: `port=${port} timeout=${timeoutMs}`, noDisk: true });
  guests.push(g);
  await g.line(/^udp-recv: listening/, 20_000);
  return g;
}

async function pvPing(ctx: DemoContext, plan: DemoPlan, s: DemoSamples): Promise<void> {
  ctx.step(`network through PV: ${plan.pings} pings guest to guest`);
  const guests: RunningGuest[] = [];
  try {
    const target = await listener(ctx, 'demo-net-echo', PORT + 1, 600_000, guests);
    const pinger = await startGuest(ctx, {
      name: 'demo-net-ping', program: 'ping', extra: `dst=${ipOf(target)} count=${plan.pings} interval=${plan.pingIntervalMs} timeout=2000`, noDisk: true,
    });
    guests.push(pinger);
    const ping = (await pinger.json<PingResult>('ping', plan.pings * (plan.pingIntervalMs + 20) + 30_000)).value;
    const rtts = replyTimesUs(pinger.consoleLines());
    if (ping.rtt !== undefined && rtts.length > 0) {
      s.add('net.rtt_us', 'pv', median(rtts), { mean_us: ping.rtt.avg * 1000, min_us: ping.rtt.min * 1000, max_us: ping.rtt.max * 1000, loss_percent: ping.lossPercent });
    }
  } finally {
    for (const g of guests) await g.finish();
  }
}

/**
 * The receiver gets a timeout of the stream plus a grace: the sender ends with three END
 * datagrams, and when the receiver is overloaded all three can be dropped; it then reports at
 * its timeout (complete: false) instead of never.
 */
async function pvStream(ctx: DemoContext, plan: DemoPlan, s: DemoSamples): Promise<void> {
  ctx.step(`network through PV: UDP stream for ${plan.udpMs} ms`);
  const sampler = new Dom0CpuSampler();
  const guests: RunningGuest[] = [];
  try {
    const recv = await listener(ctx, 'demo-net-recv', PORT, plan.udpMs + 4000, guests);
    const sender = await startGuest(ctx, {
      name: 'demo-net-send', program: 'udp-send', extra: `dst=${ipOf(recv)} port=${PORT} size=${UDP_PAYLOAD} duration=${plan.udpMs}`, noDisk: true,
    });
    guests.push(sender);
    const { value: tx, at } = await sender.json<StreamReport>('udp', plan.udpMs + 30_000);
    const rx = (await recv.json<StreamReport>('udp', plan.udpMs + 30_000)).value;
    if (rx.packets === 0) throw new Error(`demo: the PV UDP stream delivered nothing (sender: ${JSON.stringify(tx)})`);
    s.add('net.udp_1500_mbps', 'pv', rx.mbps, {
      pps: rx.pps, loss_percent: rx.lossPercent ?? 0, sent: tx.packets, send_failures: tx.sendFailures ?? 0, complete: rx.complete === true ? 1 : 0,
    });
    // dom0's CPU over the sender's window (the receiver's may end at its timeout), per GiB delivered.
    s.add('cpu.net_udp_s_per_gib', 'pv', cpuSecondsPerGiB(sampler.between(at - tx.durationMs, at), rx.bytes));
  } finally {
    sampler.stop();
    for (const g of guests) await g.finish();
  }
}

function bindLoopback(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => resolve(sock));
  });
}

const closeSocket = (s: Socket): Promise<void> => new Promise((r) => s.close(() => r()));
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Loopback UDP stream for `ms`: payload Mbit/s as the guests count it (UDP payload bytes). */
async function nativeStream(ms: number): Promise<{ mbps: number; pps: number; lost: number; cpuNs: number; bytes: number }> {
  const rx = await bindLoopback();
  const tx = await bindLoopback();
  try {
    const port = rx.address().port;
    const data = Buffer.alloc(UDP_PAYLOAD, 0x5a);
    let got = 0;
    rx.on('message', () => void got++);
    let sent = 0;
    const cpu0 = processCpuNs();
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      while (sent - got < WINDOW) {
        tx.send(data, port, '127.0.0.1');
        sent++;
      }
      await tick();
    }
    const drainEnd = performance.now() + 200;
    while (got < sent && performance.now() < drainEnd) await tick();
    const secs = (performance.now() - t0) / 1000;
    const bytes = got * UDP_PAYLOAD;
    return { mbps: (bytes * 8) / secs / 1e6, pps: got / secs, lost: sent - got, cpuNs: processCpuNs() - cpu0, bytes };
  } finally {
    await closeSocket(rx);
    await closeSocket(tx);
  }
}

/** Sequential 56-byte UDP echoes on loopback (one in flight, as ping): median µs per round trip. */
async function nativeEcho(count: number): Promise<number> {
  const echo = await bindLoopback();
  const client = await bindLoopback();
  try {
    echo.on('message', (m, from) => echo.send(m, from.port, from.address));
    const port = echo.address().port;
    const data = Buffer.alloc(56, 0x42);
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('demo: loopback UDP echo lost')), 2000);
        client.once('message', () => {
          clearTimeout(t);
          resolve();
        });
        client.send(data, port, '127.0.0.1');
      });
      times.push((performance.now() - t0) * 1000);
    }
    return median(times);
  } finally {
    await closeSocket(echo);
    await closeSocket(client);
  }
}

export async function nativeNetRound(plan: DemoPlan, s: DemoSamples): Promise<void> {
  const st = await nativeStream(plan.udpMs);
  s.add('net.udp_1500_mbps', 'native', st.mbps, { pps: st.pps, lost: st.lost });
  s.add('cpu.net_udp_s_per_gib', 'native', cpuSecondsPerGiB(st.cpuNs, st.bytes));
  s.add('net.rtt_us', 'native', await nativeEcho(plan.pings));
}
