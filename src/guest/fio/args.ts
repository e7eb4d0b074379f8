/**
 * `builtin:fio` arguments: fio's own option names, `key=value` words of xl.cfg `extra`:
 *
 *   rw=read|write|randread|randwrite|randrw   what to do (default read)
 *   rwmixread=N       randrw: percent of reads (default 50, fio's default)
 *   bs=4k             block size: a multiple of 512, at most 16M (sizes take k/m/g/t, powers of 1024)
 *   iodepth=N         requests kept in flight (default 1, at most 1024)
 *   size=256M         bytes of the disk the job covers, from `offset` (default: to the end)
 *   offset=0          where the job's region starts (a multiple of 512)
 *   runtime=10        seconds (decimals allowed); 0 or absent: no time limit
 *   ramp_time=1       seconds the workload runs before anything is counted (decimals allowed);
 *                     as fio's, it comes before `runtime` and adds to it: a fresh guest's first
 *                     moments (its code and its backend's still being compiled) stay out of the figures
 *   time_based        keep going (wrapping around the region) until `runtime`; without it a job
 *                     ends once it has moved `size` bytes or `runtime` has passed, as fio does
 *   verify=crc32c|none  blocks written carry a header (offset, generation, crc32c); see verify.ts
 *   seed=N            seed of the random offsets and the data pattern (default 1)
 *   direct=0|1        accepted and ignored: the PV disk has no guest page cache to bypass
 *   name=...          accepted and ignored (fio's job name)
 *
 * Anything else is refused with a message naming it: a typo must not silently run a
 * different benchmark.
 */
import { XenpvError } from '../../base/index.js';

export const RW_MODES = ['read', 'write', 'randread', 'randwrite', 'randrw'] as const;
export type RwMode = (typeof RW_MODES)[number];

export interface FioJob {
  readonly rw: RwMode;
  readonly bs: number;
  readonly iodepth: number;
  /** Bytes; undefined = from `offset` to the end of the disk. */
  readonly size: number | undefined;
  readonly offset: number;
  /** Milliseconds; 0 = no limit. */
  readonly runtimeMs: number;
  /** Milliseconds of uncounted lead-in before the timed phase (fio's ramp_time). */
  readonly rampMs: number;
  readonly timeBased: boolean;
  readonly verify: 'crc32c' | 'none';
  readonly seed: number;
  /** Percent of reads in randrw. */
  readonly rwmixread: number;
}

export const MAX_BS = 16 * 1024 * 1024;
export const MAX_IODEPTH = 1024;
const MAX_RUNTIME_S = 24 * 3600;

function bad(message: string, context: Record<string, unknown> = {}): XenpvError {
  return new XenpvError('EINVAL', `fio: ${message}`, context);
}

/** "4k", "1M", "256m", "1g", "4096" → bytes (fio's default kb_base=1024). */
export function parseFioSize(key: string, text: string): number {
  const m = /^(\d+)([kmgt]?)(i?b)?$/i.exec(text);
  if (m === null) throw bad(`${key}=${text} is not a size (like 4k, 1M, 256M)`, { key });
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const n = Number(m[1]) * scale;
  if (!Number.isSafeInteger(n)) throw bad(`${key}=${text} is too large`, { key });
  return n;
}

function parseInt(key: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw bad(`${key}=${text} is not a whole number`, { key });
  const n = Number(text);
  if (n < min || n > max) throw bad(`${key}=${text} out of range (${min}..${max})`, { key });
  return n;
}

function parseBool(key: string, text: string): boolean {
  if (text === '1' || text === 'true') return true;
  if (text === '0' || text === 'false') return false;
  throw bad(`${key}=${text}: use 0 or 1`, { key });
}

/** Seconds, decimals allowed, at most a day. */
function parseSeconds(key: string, text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text) || Number(text) > MAX_RUNTIME_S) throw bad(`${key}=${text} must be seconds (0..${MAX_RUNTIME_S})`, { key });
  return Number(text);
}

/** `key=value` words (a bare `time_based` is fio's spelling of time_based=1). */
function words(argv: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const w of argv) {
    if (w === 'time_based') {
      m.set('time_based', '1');
      continue;
    }
    const i = w.indexOf('=');
    if (i <= 0) throw bad(`'${w}' is not key=value`, { word: w });
    m.set(w.slice(0, i), w.slice(i + 1));
  }
  return m;
}

const KNOWN = new Set(['rw', 'rwmixread', 'bs', 'iodepth', 'size', 'offset', 'runtime', 'ramp_time', 'time_based', 'verify', 'seed', 'direct', 'name']);

/** Parse and check the job. Throws XenpvError('EINVAL', 'fio: ...') naming the bad word. */
export function parseFioArgs(argv: readonly string[]): FioJob {
  const o = words(argv);
  for (const k of o.keys()) if (!KNOWN.has(k)) throw bad(`unknown option '${k}' (known: ${[...KNOWN].join(', ')})`, { key: k });
  const rw = o.get('rw') ?? 'read';
  if (!(RW_MODES as readonly string[]).includes(rw)) throw bad(`rw=${rw}: use one of ${RW_MODES.join(', ')}`, { key: 'rw' });
  const bs = o.has('bs') ? parseFioSize('bs', o.get('bs')!) : 4096;
  if (bs < 512 || bs > MAX_BS || bs % 512 !== 0) throw bad(`bs=${o.get('bs')} must be a multiple of 512 up to 16M`, { key: 'bs' });
  const size = o.has('size') ? parseFioSize('size', o.get('size')!) : undefined;
  if (size !== undefined && (size < bs || size % bs !== 0)) throw bad(`size=${o.get('size')} must be a whole number of blocks (bs=${bs})`, { key: 'size' });
  const offset = o.has('offset') ? parseFioSize('offset', o.get('offset')!) : 0;
  if (offset % 512 !== 0) throw bad(`offset=${o.get('offset')} must be a multiple of 512`, { key: 'offset' });
  const runtime = parseSeconds('runtime', o.get('runtime') ?? '0');
  const ramp = parseSeconds('ramp_time', o.get('ramp_time') ?? '0');
  const timeBased = o.has('time_based') ? parseBool('time_based', o.get('time_based')!) : false;
  if (timeBased && runtime === 0) throw bad('time_based needs runtime=', { key: 'time_based' });
  const verify = o.get('verify') ?? 'none';
  if (verify !== 'crc32c' && verify !== 'none') throw bad(`verify=${verify}: use crc32c or none`, { key: 'verify' });
  if (o.has('direct')) parseBool('direct', o.get('direct')!);
  return {
    rw: rw as RwMode,
    bs,
    iodepth: o.has('iodepth') ? parseInt('iodepth', o.get('iodepth')!, 1, MAX_IODEPTH) : 1,
    size,
    offset,
    runtimeMs: runtime * 1000,
    rampMs: ramp * 1000,
    timeBased,
    verify,
    seed: o.has('seed') ? parseInt('seed', o.get('seed')!, 0, 0xffffffff) : 1,
    rwmixread: o.has('rwmixread') ? parseInt('rwmixread', o.get('rwmixread')!, 0, 100) : 50,
  };
}
