/**
 * The console backend (xenconsoled's per-console half): maps the guest's console page, binds
 * its port, moves the guest's output into a bounded buffer and input from the attached
 * reader into the guest's `in` ring.
 *
 * Against a hostile guest (reliability.md R6, R24):
 * - the ring indices are read once per pass and checked (`prod - cons <= sizeof(ring)`, the
 *   ring.ts byte-ring ends); a violation marks the console bad: its port and page are
 *   released and nothing more is read;
 * - events are rate-limited as xenconsoled does: RATE_LIMIT_ALLOWANCE per RATE_LIMIT_PERIOD;
 *   past the allowance the console rests until the period ends, then is serviced once;
 * - the output buffer is bounded (`limit`), policy `discard` (oldest bytes go, the reader sees
 *   a marker) or `keep` (back-pressure: the ring is not drained while the buffer is full);
 * - queued input is bounded; a writer beyond it waits (stream back-pressure).
 */
import { Duplex } from 'node:stream';
import { XENCONS_CONNECTION_OFFSET, XENCONSOLE_CONNECTED } from '../../abi/io/console.js';
import { XenpvError, type DomId, type EvtchnPort, type GrantRef } from '../../base/index.js';
import type { EvtchnBinding, GrantMapping, Platform } from '../../hv/platform.js';
import { ConsoleBackPage, type ByteRingBroken } from '../../ring/index.js';
import { OutputBuffer } from './buffer.js';
import { DEFAULT_CONSOLE_LIMIT, DEFAULT_INPUT_QUEUE, RATE_LIMIT_ALLOWANCE, RATE_LIMIT_PERIOD_MS } from './protocol.js';
import { LogFile } from './log-file.js';

export interface ConsoleBackOptions {
  /** Output buffer bound in bytes (the console's `limit`). */
  readonly capacity?: number;
  /** `discard` (default, oldest go with a marker) or `keep` (stall the ring while full). */
  readonly overflow?: 'discard' | 'keep';
  readonly rateAllowance?: number;
  readonly ratePeriodMs?: number;
  /** Append everything the guest writes to this file (xenconsoled --log=guest). */
  readonly logFile?: string;
  /** Prefix each logged line with `[YYYY-MM-DD HH:MM:SS] ` (xenconsoled --timestamp=guest). */
  readonly timestamps?: boolean;
  readonly inputQueue?: number;
  /**
   * Rate-limited periods in a row in which the events moved no data before the guest is cut
   * off as an event storm (R6: notifications are hints, but a flood of empty ones is an
   * attack); default 25 (5 s).
   */
  readonly stormPeriods?: number;
  readonly name?: string;
  readonly now?: () => number;
  readonly log?: (msg: string) => void;
  /** Called once when the guest breaks the ring protocol. */
  readonly onBad?: (reason: string) => void;
}

export interface ConsoleBackStats {
  events: number;
  services: number;
  /** Rate periods begun (each at least ratePeriodMs long). */
  periods: number;
  /** Periods in which the allowance ran out. */
  rateLimited: number;
  bytesOut: number;
  bytesIn: number;
}

const PUMP_CHUNK = 16384;

export class ConsoleBack {
  readonly stats: ConsoleBackStats = { events: 0, services: 0, periods: 0, rateLimited: 0, bytesOut: 0, bytesIn: 0 };
  readonly buffer: OutputBuffer;
  private readonly ring: ConsoleBackPage;
  private readonly input: Uint8Array[] = [];
  private inputBytes = 0;
  private binding: EvtchnBinding | undefined;
  private mapping: GrantMapping | undefined;
  private readonly logFile: LogFile | undefined;
  private periodEnd = 0;
  private eventsInPeriod = 0;
  private restTimer: NodeJS.Timeout | undefined;
  private quietLimitedPeriods = 0;
  private reader: ConsoleStream | undefined;
  private badReason: string | undefined;
  private closed = false;
  private readonly now: () => number;

  /** Map `ref` of `remote` and bind to its `remotePort`; throws XenpvError if either fails. */
  static connect(platform: Platform, remote: DomId, ref: GrantRef, remotePort: EvtchnPort, options: ConsoleBackOptions = {}): ConsoleBack {
    const mapping = platform.grants.map(remote, [ref], true);
    let back: ConsoleBack | undefined;
    try {
      back = new ConsoleBack(mapping.pages[0]!, options);
      const self = back;
      back.mapping = mapping;
      back.binding = platform.events.bindInterdomain(remote, remotePort, () => self.onEvent());
    } catch (err) {
      back?.releaseShared();
      mapping.dispose();
      throw err;
    }
    // "xenconsoled sets XENCONSOLE_CONNECTED once it services the ring" (console.h, newer Xen).
    mapping.pages[0]![XENCONS_CONNECTION_OFFSET] = XENCONSOLE_CONNECTED;
    back.service();
    return back;
  }

  /** A backend over a page and port the caller owns (tests, other transports). */
  constructor(page: Uint8Array, private readonly options: ConsoleBackOptions = {}) {
    this.now = options.now ?? Date.now;
    this.buffer = new OutputBuffer(options.capacity ?? DEFAULT_CONSOLE_LIMIT);
    this.ring = new ConsoleBackPage(page, { onBroken: (b) => this.markBad(describeBroken('out/in', b)) });
    if (options.logFile !== undefined) this.logFile = new LogFile(options.logFile, options.timestamps === true);
  }

  /** Why the guest was cut off, if it was. */
  get bad(): string | undefined {
    return this.badReason;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get isAttached(): boolean {
    return this.reader !== undefined;
  }

  /** Bytes of input waiting for the guest. */
  get inputQueued(): number {
    return this.inputBytes;
  }

  /** The event handler: rate-limited servicing. */
  onEvent(): void {
    if (this.closed || this.badReason !== undefined) return;
    this.stats.events++;
    const t = this.now();
    if (t >= this.periodEnd) {
      this.periodEnd = t + (this.options.ratePeriodMs ?? RATE_LIMIT_PERIOD_MS);
      this.eventsInPeriod = 0;
      this.stats.periods++;
    }
    if (++this.eventsInPeriod <= (this.options.rateAllowance ?? RATE_LIMIT_ALLOWANCE)) {
      this.service();
      return;
    }
    if (this.restTimer !== undefined) return;
    // Allowance spent: rest until the period ends, then look once (the events were hints).
    this.stats.rateLimited++;
    // The period is not ended here: a timer may fire before periodEnd by the wall clock (libuv
    // times it from the loop's cached time, stale after a long task), and a new period begun
    // early would give the guest a fresh allowance sooner than one per period.
    this.restTimer = setTimeout(() => {
      this.restTimer = undefined;
      const moved = this.service();
      this.quietLimitedPeriods = moved > 0 ? 0 : this.quietLimitedPeriods + 1;
      if (this.quietLimitedPeriods >= (this.options.stormPeriods ?? 25)) {
        this.markBad(`event storm: ${this.quietLimitedPeriods} rate-limited periods without data`);
      }
    }, Math.max(0, this.periodEnd - t));
  }

  /** Move output out of the ring and input into it; signal the guest if anything moved. */
  service(): number {
    if (this.closed || this.badReason !== undefined) return 0;
    this.stats.services++;
    const moved = this.drainOutput() + this.fillInput();
    if (this.badReason !== undefined) return 0;
    if (moved > 0) {
      this.quietLimitedPeriods = 0;
      this.binding?.notify();
    }
    this.pump();
    return moved;
  }

  private drainOutput(): number {
    const room = this.options.overflow === 'keep' ? this.buffer.space : Number.MAX_SAFE_INTEGER;
    const chunk = this.ring.output.read(room);
    if (chunk.length === 0) return 0;
    this.stats.bytesOut += chunk.length;
    // The log gets everything, before any discard (xenconsoled writes the log "as early as possible").
    this.logFile?.write(chunk);
    this.buffer.append(chunk);
    return chunk.length;
  }

  private fillInput(): number {
    let moved = 0;
    while (this.input.length > 0) {
      const head = this.input[0]!;
      const n = this.ring.input.write(head);
      if (n === 0) break;
      moved += n;
      this.inputBytes -= n;
      if (n === head.length) this.input.shift();
      else this.input[0] = head.subarray(n);
    }
    this.stats.bytesIn += moved;
    if (moved > 0) this.reader?.inputDrained();
    return moved;
  }

  /**
   * Queue input for the guest (copied); returns how many bytes were taken (the rest does not
   * fit the bounded input queue).
   */
  writeInput(bytes: Uint8Array): number {
    if (this.closed || this.badReason !== undefined) return 0;
    const n = Math.min(bytes.length, (this.options.inputQueue ?? DEFAULT_INPUT_QUEUE) - this.inputBytes);
    if (n <= 0) return 0;
    this.input.push(bytes.slice(0, n));
    this.inputBytes += n;
    if (this.fillInput() > 0) this.binding?.notify();
    return n;
  }

  /** Attach the one reader/writer (`xenpv console`). Throws XenpvError EBUSY if one is attached. */
  attach(): Duplex {
    if (this.closed) throw new XenpvError('ENOENT', `console ${this.options.name ?? ''} is closed`);
    if (this.reader !== undefined) throw new XenpvError('EBUSY', `console ${this.options.name ?? ''} is already attached`);
    const s = new ConsoleStream(this);
    this.reader = s;
    return s;
  }

  /** Called by the stream when it closes. */
  detach(s: ConsoleStream): void {
    if (this.reader === s) this.reader = undefined;
  }

  /** Push buffered output to the reader while it wants more; with `keep`, refill from the ring. */
  pump(): void {
    const r = this.reader;
    if (r === undefined) return;
    while (r.wants && this.buffer.readable) {
      const before = this.buffer.space;
      r.deliver(this.buffer.take(PUMP_CHUNK));
      // With back-pressure, room in the buffer may let the stalled ring move again.
      if (this.options.overflow === 'keep' && before === 0 && !this.closed) {
        if (this.drainOutput() > 0) this.binding?.notify();
      }
    }
  }

  private markBad(reason: string): void {
    if (this.badReason !== undefined) return;
    this.badReason = reason;
    this.options.log?.(`console ${this.options.name ?? ''}: ${reason}; guest cut off`);
    this.releaseShared();
    this.options.onBad?.(reason);
  }

  private releaseShared(): void {
    if (this.restTimer !== undefined) clearTimeout(this.restTimer);
    this.restTimer = undefined;
    this.binding?.dispose();
    this.binding = undefined;
    this.mapping?.dispose();
    this.mapping = undefined;
  }

  /** Release the page and port, end the reader, close the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.releaseShared();
    this.reader?.consoleClosed();
    this.reader = undefined;
    await this.logFile?.close();
  }
}

function describeBroken(which: string, b: ByteRingBroken): string {
  return `bad ${which} ring indices (prod ${b.prod}, cons ${b.cons}, size ${b.size})`;
}

/** The attached terminal: readable = guest output, writable = guest input. */
export class ConsoleStream extends Duplex {
  wants = false;
  private pendingWrite: { chunk: Uint8Array; cb: (err?: Error | null) => void } | undefined;

  constructor(private readonly back: ConsoleBack) {
    super();
  }

  override _read(): void {
    this.wants = true;
    this.back.pump();
  }

  deliver(bytes: Uint8Array): void {
    this.wants = this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.offer(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length), cb);
  }

  private offer(chunk: Uint8Array, cb: (err?: Error | null) => void): void {
    if (this.back.isClosed || this.back.bad !== undefined) return cb();
    const n = this.back.writeInput(chunk);
    if (n === chunk.length) return cb();
    this.pendingWrite = { chunk: chunk.subarray(n), cb };
  }

  /** The guest took input: a waiting write may go on. */
  inputDrained(): void {
    const p = this.pendingWrite;
    if (p === undefined) return;
    this.pendingWrite = undefined;
    this.offer(p.chunk, p.cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.pendingWrite?.cb();
    this.pendingWrite = undefined;
    this.back.detach(this);
    cb(err);
  }

  /** The console went away: end of output; input is no longer taken. */
  consoleClosed(): void {
    this.push(null);
    this.pendingWrite?.cb();
    this.pendingWrite = undefined;
    this.end();
  }
}
