/**
 * `builtin:udp-send`, extra = `dst=<ip> [port=5001] [size=1472] [duration=1000] [pps=N] [csum=offload|full] [arpwait=10000]`
 * (checksum offload by default, as Linux netfront), and
 * `builtin:udp-recv`, extra = `[port=5001] [timeout=30000] [omit=0]`: the UDP stream tool over eth0
 * (`omit`: milliseconds after the first datagram before the receiver's rates start counting, as iperf3's --omit).
 * Each ends with one JSON line `{"udp": <StreamReport>}` (throughput, packet rate, loss).
 */
import { XenpvError, type Frame } from '../../base/index.js';
import { taskClock } from '../../devices/net/bridge/clock.js';
import { schedSince, threadSched } from '../../hv/sim/thread-sched.js';
import { formatIpv4, toIpv4 } from '../net/addr.js';
import { UdpStreamReceiver, UdpStreamSender, type StreamReport } from '../net/udp-stream.js';
import type { GuestContext } from '../program.js';
import { bringUpEth0, numberOption, options, requiredOption, withNetEnv, type Eth0, type NetProgramEnv } from './net-common.js';

export async function runUdpSend(env: NetProgramEnv): Promise<StreamReport> {
  const o = options(env.argv);
  // Checksum offload unless `csum=full`, as a Linux guest's netfront sends (NETIF_F_IP_CSUM):
  // the datagram leaves csum_blank, netback passes it on data_validated, nobody sums 1.5 KB twice.
  if (!o.has('csum')) o.set('csum', 'offload');
  const eth = await bringUpEth0(env, o);
  let payloadFrame: Frame | undefined;
  try {
    const dst = requiredOption(o, 'dst');
    await resolveNeighbour(eth, dst, numberOption(o, 'arpwait', ARP_WAIT_MS, 1));
    const pps = o.has('pps') ? numberOption(o, 'pps', 0, 1) : undefined;
    // The payload in a page of guest memory (when it fits one): copied into netfront's granted
    // page with a memmove on the sim (DomainMemory.copy), not V8's word loop.
    [payloadFrame] = env.platform.memory.allocPages(1);
    const sender = new UdpStreamSender(eth.stack, {
      dst, port: numberOption(o, 'port', 5001, 1, 65535), size: numberOption(o, 'size', 1472, 16, 65507),
      durationMs: numberOption(o, 'duration', 1000, 1), ...(pps !== undefined ? { pps } : {}),
      buffer: env.platform.memory.page(payloadFrame!),
    });
    const events0 = eth.front.counters.events;
    const notifies0 = eth.front.counters.notifies;
    const dropped0 = eth.front.counters.txDropped;
    env.log('udp-send: streaming');
    const sched0 = threadSched();
    while (!sender.done && (await env.running())) {
      // Back-pressure: while frames wait for ring slots, wait for the backend to take some
      // (a full socket send buffer) instead of growing the backlog until netfront drops.
      if (eth.front.txBacklogged) {
        await eth.front.waitTxRoom(20);
        continue;
      }
      // No more than the ring takes now: a frame over it would be copied into the backlog
      // first (one copy more); at least one, so a full ring backlogs one and we wait above.
      // One burst: the ring is pushed once for the datagrams of this pump (xmit_more).
      const budget = Math.max(1, Math.min(64, eth.front.txSpace()));
      const next = eth.front.txBurst(() => sender.pump(budget));
      eth.stack.tick();
      const wait = next === undefined ? 0 : next - performance.now();
      await (wait > 1 ? env.sleep(wait) : new Promise<void>((r) => setImmediate(r)));
    }
    const report: StreamReport = {
      ...sender.report(), nicEvents: eth.front.counters.events - events0, nicNotifies: eth.front.counters.notifies - notifies0, nicTxDropped: eth.front.counters.txDropped - dropped0,
      ...schedSince(sched0),
    };
    env.log(JSON.stringify({ udp: report }));
    return report;
  } finally {
    if (payloadFrame !== undefined) env.platform.memory.freePages([payloadFrame]);
    await eth.close();
  }
}

/** How long udp-send waits for its destination's ARP reply by default (`arpwait=` ms). */
const ARP_WAIT_MS = 10_000;
/**
 * One round of ARP resolution: an entry's 3 probes 1 s apart (arp.ts, as Linux) and a margin, so
 * that the entry was given up (at 3 s) and the next datagram starts a new one.
 */
const ARP_ROUND_MS = 3500;

/**
 * Resolve `dst` before streaming: the ARP queue holds a few datagrams, so a stream started
 * unresolved would drop all but those. A datagram starts the probes; when an entry's probes go
 * unanswered another datagram starts new ones, until `waitMs`. Unresolved then, the stream
 * fails (EHOSTUNREACH, as a Linux sender's socket would report) instead of sending into the
 * void: a stream that once reached no one was seen as a run of 0 Mbit/s, cause unknown.
 */
async function resolveNeighbour(eth: Eth0, dst: string, waitMs: number): Promise<void> {
  const target = toIpv4(dst);
  const resolved = (): boolean => eth.stack.arp.lookup(target) !== undefined;
  const probe = eth.stack.udpBind(0);
  try {
    const end = performance.now() + waitMs;
    for (let left = waitMs; !resolved() && left > 0; left = end - performance.now()) {
      probe.send(dst, 9, new Uint8Array(1));
      await eth.until(resolved, Math.min(ARP_ROUND_MS, left));
    }
  } finally {
    probe.close();
  }
  if (!resolved()) throw new XenpvError('EHOSTUNREACH', `udp-send: no ARP reply from ${dst} in ${waitMs} ms`, { dst });
}

export async function runUdpRecv(env: NetProgramEnv): Promise<StreamReport> {
  const o = options(env.argv);
  const eth = await bringUpEth0(env, o);
  try {
    // Arrival times once per task, not per datagram (the receiver takes each one as it arrives: onDatagram).
    const rx = new UdpStreamReceiver(eth.stack, numberOption(o, 'port', 5001, 1, 65535), taskClock, numberOption(o, 'omit', 0, 0));
    const events0 = eth.front.counters.events;
    const notifies0 = eth.front.counters.notifies;
    env.log(`udp-recv: listening on ${formatIpv4(eth.stack.address)}`);
    const sched0 = threadSched();
    // rx.done only reads a field: checked per datagram, the loop wakes once, at the END marker.
    await eth.until(() => rx.done, numberOption(o, 'timeout', 30_000, 1), undefined, true);
    const report: StreamReport = { ...rx.report(), nicEvents: eth.front.counters.events - events0, nicNotifies: eth.front.counters.notifies - notifies0, ...schedSince(sched0) };
    env.log(JSON.stringify({ udp: report }));
    return report;
  } finally {
    await eth.close();
  }
}

export async function udpSend(ctx: GuestContext): Promise<void> {
  await withNetEnv(ctx, async (env) => void (await runUdpSend(env)));
}

export async function udpRecv(ctx: GuestContext): Promise<void> {
  await withNetEnv(ctx, async (env) => void (await runUdpRecv(env)));
}
