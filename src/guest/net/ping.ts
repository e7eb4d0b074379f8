/**
 * The logic of `builtin:ping`: N echo requests, replies matched by identifier and sequence,
 * output lines and summary in the format of iputils' ping:
 *
 *   PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.
 *   64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.045 ms
 *   --- 10.0.0.2 ping statistics ---
 *   3 packets transmitted, 3 received, 0% packet loss, time 2003ms
 *   rtt min/avg/max/mdev = 0.045/0.058/0.070/0.010 ms
 *
 * Sans-IO: `poll()` sends what is due and says when to call again; replies arrive through
 * the stack. Round-trip times come from our own send times, never from the peer's bytes.
 */
import { XenpvError, type Disposable } from '../../base/index.js';
import { formatIpv4, toIpv4, type Ipv4 } from './addr.js';
import type { EchoReply, NetStack } from './stack.js';

export interface PingOptions {
  readonly dst: Ipv4 | string;
  /** -c */
  readonly count: number;
  /** -i, milliseconds between requests (default 1000). */
  readonly intervalMs?: number;
  /** -s, data bytes per request (default 56). */
  readonly size?: number;
  /** -W, how long to wait for replies after the last request (default 10 s). */
  readonly timeoutMs?: number;
  readonly id?: number;
  /**
   * -A, adaptive: one request in flight, the next sent as soon as the reply to the last one
   * arrives (from the reply handler, no timer in between); `intervalMs` then only bounds the
   * wait for a reply that was lost.
   */
  readonly adaptive?: boolean;
}

export interface PingResult {
  readonly destination: string;
  readonly transmitted: number;
  readonly received: number;
  readonly duplicates: number;
  readonly errors: number;
  readonly corrupted: number;
  readonly lossPercent: number;
  readonly timeMs: number;
  /** Milliseconds; absent when nothing came back. */
  readonly rtt?: { readonly min: number; readonly avg: number; readonly max: number; readonly mdev: number };
}

/** iputils' reply time: 3 decimals under 1 ms, 2 under 10, 1 under 100, else whole ms. */
export function formatRtt(ms: number): string {
  const us = Math.round(ms * 1000);
  if (us >= 100_000 - 50) return String(Math.floor((us + 500) / 1000));
  if (us >= 10_000 - 5) return (Math.floor((us + 50) / 100) / 10).toFixed(1);
  if (us >= 1000) return (Math.floor((us + 5) / 10) / 100).toFixed(2);
  return (us / 1000).toFixed(3);
}

/** C's %g for the loss percentage (6 significant digits, no trailing zeros). */
function formatG(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/** Requests are matched by their 16-bit icmp_seq, so at most this many are remembered. */
const SEQ_SPACE = 0x10000;

export class Ping implements Disposable {
  /** Output not yet taken (`takeLines`); a ping that runs for ever keeps only what is unread. */
  readonly lines: string[] = [];
  private readonly dst: Ipv4;
  private readonly count: number;
  private readonly intervalMs: number;
  private readonly adaptive: boolean;
  private readonly timeoutMs: number;
  private readonly id: number;
  private readonly data: Uint8Array;
  /** Send time by 16-bit sequence, oldest first (a reused sequence moves to the end). */
  private readonly sentAt = new Map<number, number>();
  private readonly answered = new Set<number>();
  private lastSentAt = 0;
  private received = 0;
  /** Round-trip statistics kept as running sums: a ping without -c has no end. */
  private rttCount = 0;
  private rttSum = 0;
  private rttSquares = 0;
  private rttMin = Infinity;
  private rttMax = -Infinity;
  private readonly registration: Disposable;
  private readonly previousUnreachable: NetStack['onHostUnreachable'];
  private transmitted = 0;
  private duplicates = 0;
  private errors = 0;
  private corrupted = 0;
  private startedAt: number | undefined;
  private nextSendAt = 0;
  private finishedAt: number | undefined;

  constructor(private readonly stack: NetStack, opts: PingOptions) {
    this.dst = toIpv4(opts.dst);
    this.count = opts.count;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.adaptive = opts.adaptive ?? false;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    const size = opts.size ?? 56;
    if (!Number.isInteger(this.count) || this.count < 1) throw new XenpvError('EINVAL', `bad count ${opts.count}`, {});
    if (!Number.isInteger(size) || size < 0 || size > stack.mtu - 28) throw new XenpvError('EINVAL', `bad packet size ${size}`, {});
    this.id = (opts.id ?? Math.floor(Math.random() * 0x10000)) & 0xffff;
    // iputils fills the data after its timestamp with the byte's own index.
    this.data = Uint8Array.from({ length: size }, (_, i) => i & 0xff);
    this.registration = stack.onEchoReply(this.id, (r) => this.onReply(r));
    this.previousUnreachable = stack.onHostUnreachable;
    stack.onHostUnreachable = (ip, n) => {
      this.onUnreachable(n);
      this.previousUnreachable?.(ip, n);
    };
    this.lines.push(`PING ${formatIpv4(this.dst)} (${formatIpv4(this.dst)}) ${size}(${size + 28}) bytes of data.`);
  }

  /** The output lines produced since the last call. */
  takeLines(): string[] {
    return this.lines.splice(0);
  }

  get done(): boolean {
    return this.finishedAt !== undefined;
  }

  /** Send due requests; returns when to call again, or undefined once finished. */
  poll(): number | undefined {
    const now = this.stack.clock();
    this.startedAt ??= now;
    while (this.transmitted < this.count && now >= this.nextSendAt) this.sendOne(now);
    if (this.received >= this.count || (this.transmitted === this.count && now >= this.lastDeadline())) {
      this.finish(now);
    }
    if (this.done) return undefined;
    return this.transmitted < this.count ? this.nextSendAt : this.lastDeadline();
  }

  private lastDeadline(): number {
    return this.lastSentAt + this.timeoutMs;
  }

  private sendOne(now: number): void {
    const seq = this.transmitted + 1;
    this.transmitted = seq;
    const key = seq % SEQ_SPACE;
    // After 65536 requests the sequence wraps: the new request replaces the old one's record.
    this.sentAt.delete(key);
    this.answered.delete(key);
    this.sentAt.set(key, now);
    this.lastSentAt = now;
    this.nextSendAt = (this.nextSendAt === 0 || this.adaptive ? now : this.nextSendAt) + this.intervalMs;
    const r = this.stack.sendEchoRequest(this.dst, this.id, key, this.data);
    if (r === 'no-route') {
      this.errors++;
      this.lines.push(`ping: sendmsg: Network is unreachable`);
    }
  }

  private onReply(r: EchoReply): void {
    if (this.done || r.src !== this.dst) return;
    const sent = this.sentAt.get(r.seq);
    if (sent === undefined) return; // not one of ours
    const rtt = this.stack.clock() - sent;
    const dup = this.answered.has(r.seq);
    if (dup) this.duplicates++;
    else {
      this.answered.add(r.seq);
      this.received++;
    }
    this.rttCount++;
    this.rttSum += rtt;
    this.rttSquares += rtt * rtt;
    this.rttMin = Math.min(this.rttMin, rtt);
    this.rttMax = Math.max(this.rttMax, rtt);
    const intact = r.data.length === this.data.length && r.data.every((b, i) => b === this.data[i]);
    if (!intact) this.corrupted++;
    this.lines.push(
      `${r.bytes} bytes from ${formatIpv4(r.src)}: icmp_seq=${r.seq} ttl=${r.ttl} time=${formatRtt(rtt)} ms` +
        (dup ? ' (DUP!)' : '') + (intact ? '' : ' (wrong data)'),
    );
    // Adaptive: the answer to the newest request sends the next one right now.
    if (this.adaptive && !dup && r.seq === (this.transmitted & 0xffff) && this.transmitted < this.count) this.sendOne(this.stack.clock());
  }

  private onUnreachable(n: number): void {
    // The neighbour never answered ARP: the newest `n` unanswered requests were dropped.
    const unanswered = [...this.sentAt.keys()].filter((s) => !this.answered.has(s)).slice(-n);
    for (const seq of unanswered) {
      this.errors++;
      this.lines.push(`From ${formatIpv4(this.stack.address)} icmp_seq=${seq} Destination Host Unreachable`);
    }
  }

  private finish(now: number): void {
    this.finishedAt = now;
    this.lines.push(...this.summary());
    this.dispose();
  }

  result(): PingResult {
    const received = this.received;
    const n = this.rttCount;
    const base = {
      destination: formatIpv4(this.dst),
      transmitted: this.transmitted,
      received,
      duplicates: this.duplicates,
      errors: this.errors,
      corrupted: this.corrupted,
      lossPercent: this.transmitted === 0 ? 0 : ((this.transmitted - received) * 100) / this.transmitted,
      timeMs: Math.round((this.finishedAt ?? this.stack.clock()) - (this.startedAt ?? 0)),
    };
    if (n === 0) return base;
    const avg = this.rttSum / n;
    const sq = this.rttSquares / n;
    // iputils: mdev = sqrt(mean(t^2) - mean(t)^2), duplicates included.
    const mdev = Math.sqrt(Math.max(0, sq - avg * avg));
    return { ...base, rtt: { min: this.rttMin, avg, max: this.rttMax, mdev } };
  }

  summary(): string[] {
    const r = this.result();
    const extra = (r.duplicates > 0 ? `, +${r.duplicates} duplicates` : '') + (r.errors > 0 ? `, +${r.errors} errors` : '');
    const out = [
      '',
      `--- ${r.destination} ping statistics ---`,
      `${r.transmitted} packets transmitted, ${r.received} received${extra}, ${formatG(r.lossPercent)}% packet loss, time ${r.timeMs}ms`,
    ];
    if (r.rtt !== undefined) {
      const f = (v: number) => v.toFixed(3);
      out.push(`rtt min/avg/max/mdev = ${f(r.rtt.min)}/${f(r.rtt.avg)}/${f(r.rtt.max)}/${f(r.rtt.mdev)} ms`);
    }
    return out;
  }

  dispose(): void {
    this.registration.dispose();
    if (this.stack.onHostUnreachable !== this.previousUnreachable) this.stack.onHostUnreachable = this.previousUnreachable;
  }
}
