/**
 * `rate=RATE/s[@INTERVAL]`, xl-network-configuration(5), computed exactly as libxlu_vif.c:
 *
 * - RATE matches `^[0-9]+[GMK]?[Bb]/s$`; its number is read by strtoull(…, 0) (so a leading
 *   0 means octal) and must be 1..2^32-1; G, M, K multiply by 10^9, 10^6, 10^3; `b` (bits)
 *   divides by 8, rounding down.
 * - INTERVAL matches `^[0-9]+[mu]?s?$`, also 1..2^32-1 before scaling; no unit or `s` means
 *   seconds, `m` milliseconds, `u` microseconds; at most 2^32-1 µs after scaling. Default 50 ms.
 * - bytes per interval = bytes_per_sec * interval_usecs / 10^6 in 64-bit arithmetic,
 *   refused if the product would overflow.
 *
 * "Vif rate limiting is credit-based ... for 1MB/s@20ms ... a credit of 20,000 bytes
 * replenished every 20,000 us." libxl writes them to the backend as `rate = "BYTES,USECS"`.
 */
import { ConfigError, type Origin } from './config-error.js';

export const DEFAULT_RATE_INTERVAL_USECS = 50_000;
const U32_MAX = 0xffff_ffffn;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Plain numbers, so a config serialises to JSON: libxl accepts rates up to 2^64 bytes per
 * interval, so with a 1 µs interval up to 2^64 bytes per second; xenpv refuses rates above
 * 2^53 bytes (9 PB) per second instead of carrying bigints around.
 */
export interface VifRate {
  /** The text as written, kept so a printed spec reads back the same. */
  readonly text: string;
  readonly bytesPerSecond: number;
  readonly bytesPerInterval: number;
  readonly intervalUsecs: number;
}

/** strtoull(s, &end, 0) over a digits-first string: the value and the characters used. */
function strtoull0(s: string): [bigint, number] {
  const hex = /^0[xX]([0-9a-fA-F]+)/.exec(s);
  if (hex !== null) return [BigInt(`0x${hex[1]}`), hex[0].length];
  const oct = /^0[0-7]*/.exec(s);
  if (oct !== null) return [oct[0].length > 1 ? BigInt(`0o${oct[0].slice(1)}`) : 0n, oct[0].length];
  const dec = /^[0-9]+/.exec(s) as RegExpExecArray;
  return [BigInt(dec[0]), dec[0].length];
}

function rateError(origin: Origin, at: number, msg: string, text: string): ConfigError {
  return ConfigError.within(origin, at, `vif spec: ${msg} in \`${text}'`);
}

function bytesPerSecond(s: string, origin: Origin, at: number): bigint {
  if (!/^[0-9]+[GMK]?[Bb]\/s$/.test(s)) throw rateError(origin, at, 'invalid rate', s);
  const [n, used] = strtoull0(s);
  if (n === 0n || n > U32_MAX) throw rateError(origin, at, 'rate overflow', s);
  const unit = s[used];
  let v = n;
  if (unit === 'G') v *= 1_000_000_000n;
  else if (unit === 'M') v *= 1_000_000n;
  else if (unit === 'K') v *= 1_000n;
  if (unit === 'b' || s[used + 1] === 'b') v /= 8n;
  return v;
}

function intervalUsecs(s: string, origin: Origin, at: number): number {
  if (!/^[0-9]+[mu]?s?$/.test(s)) throw rateError(origin, at, 'invalid replenishment interval', s);
  const [n, used] = strtoull0(s);
  if (n === 0n || n > U32_MAX) throw rateError(origin, at, 'replenishment interval overflow', s);
  const unit = s[used];
  let v = n;
  if (unit === 's' || unit === undefined) v *= 1_000_000n;
  else if (unit === 'm') v *= 1_000n;
  if (v > U32_MAX) throw rateError(origin, at, 'replenishment interval overflow', s);
  return Number(v);
}

/** Parses the value of `rate=`; `origin` is where that value starts. */
export function parseVifRate(text: string, origin: Origin): VifRate {
  const atSign = text.indexOf('@');
  const rate = atSign < 0 ? text : text.slice(0, atSign);
  if (rate === '') throw rateError(origin, 0, 'no rate specified', text);
  const bps = bytesPerSecond(rate, origin, 0);
  const usecs = atSign < 0 ? DEFAULT_RATE_INTERVAL_USECS : intervalUsecs(text.slice(atSign + 1), origin, atSign + 1);
  if (bps > U64_MAX / BigInt(usecs)) throw rateError(origin, 0, 'rate overflow', text);
  const perInterval = (bps * BigInt(usecs)) / 1_000_000n;
  // After libxl's own check the product is below 2^64, so per interval is below 2^64 / 10^6.
  if (bps > MAX_SAFE) throw rateError(origin, 0, 'rate too large for xenpv (above 2^53 bytes per second)', text);
  return { text, bytesPerSecond: Number(bps), bytesPerInterval: Number(perInterval), intervalUsecs: usecs };
}

/** The backend's `rate` key as libxl writes it: "BYTES_PER_INTERVAL,INTERVAL_USECS". */
export function vifRateXenstoreValue(r: VifRate): string {
  return `${r.bytesPerInterval},${r.intervalUsecs}`;
}
