/**
 * The `rate=` limit of a vif, as xl parses it and Linux netback enforces it.
 *
 * Config (xl-network-configuration(5), libxlu_vif.c): `RATE/s[@INTERVAL]`, RATE a number
 * with an optional `G`/`M`/`K` (powers of 1000) and `B` (bytes) or `b` (bits); INTERVAL a
 * number with `s` (also when no unit is given), `ms` or `us`; default interval 50 ms.
 * The limit is credit-based: `bytes per interval = rate * interval`, so `10Mb/s@20ms`
 * gives 1250000 B/s * 0.02 s = 25000 bytes every 20 ms. libxl writes backend key `rate`
 * as `"<bytes>,<usecs>"`; netback reads it (absent or malformed = unlimited).
 *
 * Enforcement (Linux netback `tx_credit_exceeded` / `tx_add_credit`), applied to the
 * guest's transmit side before a packet is taken off the ring:
 * - a packet no larger than the remaining credit passes and spends it;
 * - otherwise, if an interval has passed since the window started, the window restarts
 *   now and credit is added: `remaining = min(remaining + credit, max(credit, 128 KiB))`;
 * - a packet still larger than the credit waits for a timer at the window's end, and the
 *   window moves there. The 128 KiB burst cap means credit keeps accumulating over several
 *   intervals until even a 64 KiB GSO packet fits: a packet larger than one interval's
 *   credit is delayed, never dropped, so the interface cannot seize up.
 * - A renewal that still cannot fit the packet arms the timer at the *old* window end,
 *   already past, so a second credit follows at once: a large packet gets two credits
 *   at that instant. Kept as netback does it; sustained throughput is still one credit
 *   per interval (see the tests).
 * Netback turns the interval to whole milliseconds (`msecs_to_jiffies(usec / 1000)`); so
 * does this model, with a millisecond clock instead of jiffies.
 */
import { XenpvError } from '../../base/index.js';

export const DEFAULT_RATE_INTERVAL_USECS = 50_000;
/** tx_add_credit: "Allow a burst big enough to transmit a jumbo packet of up to 128kB." */
export const MAX_BURST_BYTES = 131_072;
const UINT32_MAX = 0xffffffffn;
const UINT64_MAX = 0xffffffffffffffffn;

export interface VifRate {
  /** u64 in libxl; bigint so huge rates stay exact. */
  readonly bytesPerInterval: bigint;
  readonly intervalUsecs: number;
}

/** C's strtoull(s, &end, 0) on a string of digits: a leading 0 means octal. */
function strtoull0(s: string): { value: bigint; rest: string } {
  const octal = s.length > 1 && s[0] === '0';
  const digits = octal ? /^[0-7]*/.exec(s)![0] : /^[0-9]*/.exec(s)![0];
  const value = digits.length === 0 ? 0n : octal ? BigInt('0o' + digits) : BigInt(digits);
  return { value, rest: s.slice(digits.length) };
}

function rateError(code: 'EINVAL' | 'EOVERFLOW', msg: string, spec: string): XenpvError {
  return new XenpvError(code, `config parsing error in vif: ${msg} in \`${spec}'`, { rate: spec });
}

function parseBytesPerSec(text: string): bigint {
  if (!/^[0-9]+[GMK]?[Bb]\/s$/.test(text)) throw rateError('EINVAL', 'invalid rate', text);
  const { value, rest } = strtoull0(text);
  if (value === 0n || value > UINT32_MAX) throw rateError('EOVERFLOW', 'rate overflow', text);
  let v = value;
  if (rest[0] === 'G') v *= 1_000_000_000n;
  else if (rest[0] === 'M') v *= 1_000_000n;
  else if (rest[0] === 'K') v *= 1_000n;
  if (rest[0] === 'b' || rest[1] === 'b') v /= 8n;
  return v;
}

function parseIntervalUsecs(text: string): number {
  if (!/^[0-9]+[mu]?s?$/.test(text)) throw rateError('EINVAL', 'invalid replenishment interval', text);
  const { value, rest } = strtoull0(text);
  if (value === 0n || value > UINT32_MAX) throw rateError('EOVERFLOW', 'replenishment interval overflow', text);
  let v = value;
  if (rest[0] === 's' || rest.length === 0) v *= 1_000_000n;
  else if (rest[0] === 'm') v *= 1_000n;
  if (v > UINT32_MAX) throw rateError('EOVERFLOW', 'replenishment interval overflow', text);
  return Number(v);
}

/** Parse a `rate=` value exactly as xl does; errors are XenpvError EINVAL / EOVERFLOW. */
export function parseVifRate(spec: string): VifRate {
  const at = spec.indexOf('@');
  const rate = at < 0 ? spec : spec.slice(0, at);
  if (rate === '') throw rateError('EINVAL', 'no rate specified', spec);
  const bytesPerSec = parseBytesPerSec(rate);
  const intervalUsecs = at < 0 ? DEFAULT_RATE_INTERVAL_USECS : parseIntervalUsecs(spec.slice(at + 1));
  if (bytesPerSec > UINT64_MAX / BigInt(intervalUsecs)) throw rateError('EOVERFLOW', 'rate overflow', spec);
  return { bytesPerInterval: (bytesPerSec * BigInt(intervalUsecs)) / 1_000_000n, intervalUsecs };
}

/** The backend `rate` key libxl writes: `"<bytes_per_interval>,<interval_usecs>"`. */
export function formatRateKey(rate: VifRate): string {
  return `${rate.bytesPerInterval},${rate.intervalUsecs}`;
}

/**
 * Read the backend `rate` key as netback does (two decimal numbers, comma-separated,
 * nothing else). Undefined means unlimited: the key is absent or malformed
 * ("Failed to parse network rate limit. Traffic unlimited.").
 */
export function parseRateKey(value: string | undefined): { creditBytes: number; creditUsecs: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^([0-9]+),([0-9]+)$/.exec(value);
  if (m === null) return undefined;
  // unsigned long is 64-bit; above 2^53 the limit is unreachable anyway, so clamp.
  const clamp = (s: string): number => Math.min(Number(s), Number.MAX_SAFE_INTEGER);
  return { creditBytes: clamp(m[1]!), creditUsecs: clamp(m[2]!) };
}

export interface CreditLimiterOptions {
  readonly creditBytes: number;
  readonly creditUsecs: number;
  /** Milliseconds, monotonic. */
  readonly clock: () => number;
}

/** Netback's per-queue transmit credit. Sans-IO: the caller owns the timer (`retryAt`). */
export class CreditLimiter {
  private readonly creditBytes: number;
  private readonly intervalMs: number;
  private readonly clock: () => number;
  private remaining: number;
  private windowStart: number;
  private timerAt: number | undefined;
  /**
   * `unlimited`: every packet passes at once, nothing is spent. Spending from MAX_SAFE_INTEGER,
   * beyond V8's small integers, stored a new heap number per packet: the largest of dom0's
   * allocations during a UDP stream (a sampling heap profile, 27 November).
   */
  private readonly unbounded: boolean;
  /** Times a packet had to wait (netback's `rate_limited`). */
  deferrals = 0;

  constructor(opts: CreditLimiterOptions) {
    if (!(opts.creditBytes >= 0) || !(opts.creditUsecs >= 0)) {
      throw new XenpvError('EINVAL', 'credit limits must be non-negative', { ...opts, clock: undefined });
    }
    this.creditBytes = opts.creditBytes;
    this.intervalMs = Math.floor(opts.creditUsecs / 1000);
    this.clock = opts.clock;
    this.remaining = opts.creditBytes;
    this.windowStart = opts.clock();
    this.unbounded = opts.creditBytes >= Number.MAX_SAFE_INTEGER;
  }

  /** No limit: what netback uses when the `rate` key is absent. */
  static unlimited(clock: () => number): CreditLimiter {
    return new CreditLimiter({ creditBytes: Number.MAX_SAFE_INTEGER, creditUsecs: 0, clock });
  }

  get remainingCredit(): number {
    return this.remaining;
  }

  /** When a deferred packet may be retried (the credit timer), or undefined if none is pending. */
  retryAt(): number | undefined {
    return this.timerAt;
  }

  /**
   * May a packet of `size` bytes go now? If yes its size is spent. If no, nothing is
   * spent: stop taking packets and call again at `retryAt()`.
   */
  tryConsume(size: number): boolean {
    if (this.unbounded) return true;
    // The clock is read only when time matters (a pending timer, credit short of `size`):
    // not per packet of a queue with credit to spare.
    if (this.timerAt !== undefined) {
      if (this.clock() < this.timerAt) return false;
      this.timerAt = undefined;
      this.addCredit(); // the credit timer fired
    }
    if (this.remaining < size && this.exceeded(size, this.clock())) {
      this.deferrals++;
      return false;
    }
    this.remaining -= size;
    return true;
  }

  private exceeded(size: number, now: number): boolean {
    const nextCredit = this.windowStart + this.intervalMs;
    if (now >= nextCredit) {
      this.windowStart = now;
      this.addCredit();
    }
    if (size <= this.remaining) return false;
    this.timerAt = nextCredit;
    this.windowStart = nextCredit;
    return true;
  }

  private addCredit(): void {
    const maxBurst = Math.max(MAX_BURST_BYTES, this.creditBytes);
    this.remaining = Math.min(this.remaining + this.creditBytes, maxBurst);
  }
}
