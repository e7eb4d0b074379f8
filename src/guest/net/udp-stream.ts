/**
 * The UDP stream tool: a sender of sequence-numbered datagrams of a fixed size for a
 * duration, and a receiver that reports throughput, packet rate, loss and reordering as a
 * JSON-able object (the guest program prints it as one JSON line).
 *
 * Datagram layout (big-endian), then filler up to `size` bytes:
 *   0  magic 'XPVS'   4  kind (1 data, 2 end)   5..7 zero
 *   8  sequence (data) or total sent (end)      12 sender duration in µs (end), else 0
 * The sender ends with END datagrams (three, since UDP may lose one) carrying the total,
 * so the receiver knows what it should have seen.
 */
import { XenpvError } from '../../base/index.js';
import type { SchedDelta } from '../../hv/sim/thread-sched.js';
import { toIpv4, type Ipv4 } from './addr.js';
import { udpPayloadBuffer, udpPayloadIn, type NetStack } from './stack.js';
import type { UdpSocket } from './udp.js';

export const STREAM_MAGIC = 0x58505653;
export const STREAM_HEADER = 16;
const KIND_DATA = 1;
const KIND_END = 2;
const END_COPIES = 3;

/**
 * A stream's figures; the guest program adds its vCPU thread's scheduler account over the
 * stream (SchedDelta: CPU, time runnable but waiting for a CPU, sleeps, preemptions).
 */
export interface StreamReport extends SchedDelta {
  readonly role: 'sender' | 'receiver';
  readonly size: number;
  /** Datagrams and bytes of the whole stream (the receiver's omitted start included). */
  readonly packets: number;
  readonly bytes: number;
  /** The window `mbps` and `pps` are over: the receiver's starts `omitMs` after the first datagram. */
  readonly durationMs: number;
  readonly mbps: number;
  readonly pps: number;
  /** Receiver: how long after the first datagram its rates start (0: at it), as iperf3's --omit. */
  readonly omitMs?: number;
  /** Receiver: expected − received (from the END total, else the highest sequence + 1). */
  readonly lost?: number;
  readonly lossPercent?: number;
  readonly reordered?: number;
  readonly duplicates?: number;
  readonly malformed?: number;
  /** Sender: datagrams the stack could not send (ARP queue or table full, no route). */
  readonly sendFailures?: number;
  readonly complete?: boolean;
  /** Event-channel upcalls the NIC's queues took during the program (added by the guest program). */
  readonly nicEvents?: number;
  /** Event-channel notifications the NIC sent to its backend (added by the guest program). */
  readonly nicNotifies?: number;
  /** Frames the NIC dropped on transmit (backlog full, link down), added by the guest program. */
  readonly nicTxDropped?: number;
}

function rates(bytes: number, packets: number, durationMs: number): { mbps: number; pps: number } {
  if (durationMs <= 0) return { mbps: 0, pps: 0 };
  return { mbps: (bytes * 8) / (durationMs * 1000), pps: (packets * 1000) / durationMs };
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = (v >>> 16) & 0xff;
  buf[off + 2] = (v >>> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}

function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

function writeHeader(buf: Uint8Array, kind: number, a: number, b: number): void {
  writeU32(buf, 0, STREAM_MAGIC);
  buf[4] = kind;
  writeU32(buf, 8, a >>> 0);
  writeU32(buf, 12, b >>> 0);
}

export interface StreamSenderOptions {
  readonly dst: Ipv4 | string;
  readonly port: number;
  /** UDP payload bytes per datagram, at least 16. */
  readonly size: number;
  readonly durationMs: number;
  /** Pace to this many datagrams per second; unpaced when absent. */
  readonly pps?: number;
  readonly srcPort?: number;
  /** Where to keep the payload (a guest page: udpPayloadIn); a buffer of its own when absent or too small. */
  readonly buffer?: Uint8Array;
}

export class UdpStreamSender {
  private readonly socket: UdpSocket;
  private readonly dst: Ipv4;
  private readonly payload: Uint8Array;
  // The options read per datagram, as own fields: `opts` is the caller's object of whatever
  // shape (a spread literal), and each load from it went through a generic IC.
  private readonly port: number;
  private readonly pps: number | undefined;
  private readonly durationMs: number;
  private startedAt: number | undefined;
  private endedAt: number | undefined;
  private sent = 0;
  private failures = 0;

  constructor(private readonly stack: NetStack, private readonly opts: StreamSenderOptions) {
    if (!Number.isInteger(opts.size) || opts.size < STREAM_HEADER || opts.size > stack.maxUdpPayload) {
      throw new XenpvError('EINVAL', `stream datagram size must be ${STREAM_HEADER}..${stack.maxUdpPayload}`, { size: opts.size });
    }
    this.dst = toIpv4(opts.dst);
    this.socket = stack.udpBind(opts.srcPort ?? 0);
    // Placed as it sits in a frame: the stack copies it into netfront's page by words.
    this.payload = ((opts.buffer === undefined ? undefined : udpPayloadIn(opts.buffer, opts.size)) ?? udpPayloadBuffer(opts.size)).fill(0x5a);
    this.port = opts.port;
    this.pps = opts.pps;
    this.durationMs = opts.durationMs;
  }

  get done(): boolean {
    return this.endedAt !== undefined;
  }

  /**
   * Send up to `budget` datagrams that are due. Returns when to call again (now, for an
   * unpaced stream), or undefined once the duration is over and the END markers are sent.
   */
  pump(budget = 64): number | undefined {
    if (this.done) return undefined;
    const now = this.stack.clock();
    this.startedAt ??= now;
    const elapsed = now - this.startedAt;
    if (elapsed >= this.durationMs) {
      this.finish(now);
      return undefined;
    }
    const pps = this.pps;
    const allowed = pps === undefined ? Infinity : Math.floor((elapsed * pps) / 1000) + 1;
    for (let i = 0; i < budget && this.sent < allowed; i++) this.sendData();
    if (pps === undefined || this.sent < allowed) return now;
    return this.startedAt + (this.sent * 1000) / pps;
  }

  private sendData(): void {
    writeHeader(this.payload, KIND_DATA, this.sent, 0);
    this.sent++;
    const r = this.socket.send(this.dst, this.port, this.payload);
    if (r === 'dropped' || r === 'no-route') this.failures++;
  }

  private finish(now: number): void {
    this.endedAt = now;
    const end = new Uint8Array(this.opts.size);
    writeHeader(end, KIND_END, this.sent, Math.round((now - this.startedAt!) * 1000));
    for (let i = 0; i < END_COPIES; i++) this.socket.send(this.dst, this.opts.port, end);
    this.socket.close();
  }

  report(): StreamReport {
    const durationMs = (this.endedAt ?? this.stack.clock()) - (this.startedAt ?? this.stack.clock());
    const bytes = this.sent * this.opts.size;
    return { role: 'sender', size: this.opts.size, packets: this.sent, bytes, durationMs, ...rates(bytes, this.sent, durationMs), sendFailures: this.failures };
  }
}

/** Duplicate detection window: the last 65536 sequence numbers. */
const WINDOW = 1 << 16;

export class UdpStreamReceiver {
  readonly socket: UdpSocket;
  private readonly seen = new Uint8Array(WINDOW / 8);
  private maxSeq = -1;
  private unique = 0;
  private bytes = 0;
  private reordered = 0;
  private duplicates = 0;
  private malformed = 0;
  private size = 0;
  private lastAt = 0;
  private expected: number | undefined;
  /** The rates' window: datagrams arriving from this time on (`omitMs` after the first one). */
  private timedFrom = Infinity;
  private timedFirstAt: number | undefined;
  private timedPackets = 0;
  private timedBytes = 0;

  /**
   * `clock`: when datagrams arrived (default the stack's). It is read per datagram, so a
   * program may give a coarser one (bridge/clock.ts `taskClock`, once per task: a stream's
   * duration is then late by at most one task's length, well under a millisecond).
   */
  constructor(
    private readonly stack: NetStack,
    port: number,
    private readonly clock: () => number = stack.clock,
    /**
     * Milliseconds after the first datagram before the rates start counting, as iperf3's
     * --omit: two fresh guests' code is still being compiled when a stream starts.
     */
    private readonly omitMs = 0,
  ) {
    // Each datagram is read as it arrives (onDatagram): no datagram object, no queue, no view;
    // its payload may lie in netfront's reused buffer (only its header is read).
    this.socket = stack.udpBind(port, { onDatagram: (f, start, end) => this.take(f, start, end - start, this.clock()) });
  }

  /** True once an END marker arrived. */
  get done(): boolean {
    return this.expected !== undefined;
  }

  /** The datagram at f[at, at + length). */
  private take(f: Uint8Array, at: number, length: number, now: number): void {
    if (length < STREAM_HEADER || readU32(f, at) !== STREAM_MAGIC) {
      this.malformed++;
      return;
    }
    const kind = f[at + 4];
    if (kind === KIND_END) {
      this.expected = readU32(f, at + 8);
      return;
    }
    if (kind !== KIND_DATA) {
      this.malformed++;
      return;
    }
    // The first datagram: the rates' window opens omitMs later.
    if (this.timedFrom === Infinity) this.timedFrom = now + this.omitMs;
    this.lastAt = now;
    this.size = length;
    if (!this.record(readU32(f, at + 8))) return;
    this.bytes += length;
    if (now < this.timedFrom) return;
    this.timedFirstAt ??= now;
    this.timedPackets++;
    this.timedBytes += length;
  }

  /** Track one sequence number; false for a duplicate. */
  private record(seq: number): boolean {
    if (seq > this.maxSeq) {
      if (seq - this.maxSeq >= WINDOW) this.seen.fill(0);
      else for (let s = this.maxSeq + 1; s < seq; s++) this.setSeen(s, false);
      this.maxSeq = seq;
    } else if (this.maxSeq - seq >= WINDOW) {
      this.reordered++; // too old to tell a duplicate from a late arrival: counted as late
      this.unique++;
      return true;
    } else if (this.isSeen(seq)) {
      this.duplicates++;
      return false;
    } else {
      this.reordered++;
    }
    this.setSeen(seq, true);
    this.unique++;
    return true;
  }

  private isSeen(seq: number): boolean {
    return (this.seen[(seq % WINDOW) >> 3]! & (1 << (seq & 7))) !== 0;
  }

  private setSeen(seq: number, on: boolean): void {
    const i = (seq % WINDOW) >> 3;
    const m = 1 << (seq & 7);
    this.seen[i] = on ? this.seen[i]! | m : this.seen[i]! & ~m;
  }

  report(): StreamReport {
    const durationMs = this.timedFirstAt === undefined ? 0 : this.lastAt - this.timedFirstAt;
    const expected = this.expected ?? this.maxSeq + 1;
    const lost = Math.max(0, expected - this.unique);
    return {
      role: 'receiver', size: this.size, packets: this.unique, bytes: this.bytes, durationMs,
      ...rates(this.timedBytes, this.timedPackets, durationMs), omitMs: this.omitMs,
      lost, lossPercent: expected === 0 ? 0 : (lost * 100) / expected,
      reordered: this.reordered, duplicates: this.duplicates, malformed: this.malformed, complete: this.done,
    };
  }

  close(): void {
    this.socket.close();
  }
}
