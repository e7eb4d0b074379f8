/**
 * The guest kernel's command line (xl.cfg `extra`): module parameters for the kernel's own
 * drivers, the rest for the program, as Linux splits its command line between the kernel
 * and init.
 *
 * `xen_blkfront.<param>=<value>` sets a parameter of blkfront for every disk the kernel probes
 * (and for fio's own frontend where the kernel probes none), with Linux's names and meanings
 * (drivers/block/xen-blkfront.c):
 * - `max_indirect_segments`: segments per indirect request (default 32); below 11, the
 *   segments a plain request carries, no indirect requests at all (Linux since 4.10);
 * - `max_ring_page_order`: ring pages to ask for, as a power of two (default 0);
 * - `max_queues`: queues to ask for (default 4 here; Linux: the vCPU count);
 * - `feature_persistent`: offer persistent grants (default on).
 * Each is bounded by what the backend offers. Raising the first is the usual tuning for large
 * sequential I/O: a 1 MiB request then takes one ring slot instead of eight.
 *
 * `cpuidle_haltpoll.force=1` turns on guest halt polling (haltpoll.ts), tuned by the haltpoll
 * governor's parameters under Linux's names: `haltpoll.guest_halt_poll_ns`,
 * `guest_halt_poll_grow`, `guest_halt_poll_shrink`, `guest_halt_poll_grow_start`,
 * `guest_halt_poll_allow_shrink`.
 *
 * A parameter it does not know or a value it cannot take is reported and ignored, the default
 * staying, as Linux warns about a bad parameter and boots on.
 */
import { BLKIF_MAX_SEGMENTS_PER_REQUEST } from '../abi/io/blkif.js';
import type { Writable } from '../base/index.js';
import type { BlkFrontOptions } from '../devices/blk/index.js';
import { MAX_INDIRECT_SEGMENTS_CEILING, MAX_QUEUES_CEILING, MAX_RING_PAGE_ORDER } from '../devices/blk/protocol.js';
import { HALTPOLL_DEFAULTS, MAX_HALT_POLL_NS, type HaltPollParams } from './haltpoll.js';

export interface KernelCmdline {
  /** The blkfront parameters given (the others stay the frontend's defaults). */
  readonly blkfront: Pick<BlkFrontOptions, 'maxIndirectSegments' | 'maxRingPageOrder' | 'maxQueues' | 'persistent'>;
  /** Guest halt polling's parameters when `cpuidle_haltpoll.force` turned it on; else undefined. */
  readonly haltpoll: HaltPollParams | undefined;
  /** The program's part: `extra` as given when it holds no kernel parameter, else its other words. */
  readonly args: string;
  readonly argv: readonly string[];
  /** One line per parameter ignored, for the console. */
  readonly warnings: readonly string[];
}

const BLKFRONT = 'xen_blkfront.';
const HALTPOLL_DRIVER = 'cpuidle_haltpoll.';
const HALTPOLL = 'haltpoll.';
const MODULES = [BLKFRONT, HALTPOLL_DRIVER, HALTPOLL];

export function parseKernelCmdline(extra: string): KernelCmdline {
  const words = extra.split(/\s+/).filter((s) => s !== '');
  const argv: string[] = [];
  const warnings: string[] = [];
  const p: Parsed = { blkfront: {}, haltpoll: { ...HALTPOLL_DEFAULTS }, force: false, tuned: false };
  for (const word of words) {
    const module = MODULES.find((m) => word.startsWith(m));
    if (module === undefined) {
      argv.push(word);
      continue;
    }
    const eq = word.indexOf('=');
    const why = setParam(p, module, word.slice(module.length, eq < 0 ? undefined : eq), eq < 0 ? undefined : word.slice(eq + 1));
    if (why !== undefined) warnings.push(`${module.slice(0, -1)}: ignoring '${word}': ${why}`);
  }
  if (p.tuned && !p.force) warnings.push('haltpoll: parameters given without cpuidle_haltpoll.force=1: halt polling stays off');
  return { blkfront: p.blkfront, haltpoll: p.force ? p.haltpoll : undefined, args: argv.length === words.length ? extra : argv.join(' '), argv, warnings };
}

/** What the parameters set so far; `tuned`: a haltpoll parameter was taken. */
interface Parsed {
  readonly blkfront: MutableBlkfront;
  readonly haltpoll: MutableHaltpoll;
  force: boolean;
  tuned: boolean;
}

/** One `module.name[=value]`; why not when it cannot be taken. */
function setParam(p: Parsed, module: string, name: string, value: string | undefined): string | undefined {
  if (module === BLKFRONT) return setBlkfront(p.blkfront, name, value);
  if (module === HALTPOLL) {
    const why = setHaltpoll(p.haltpoll, name, value);
    p.tuned ||= why === undefined;
    return why;
  }
  if (name !== 'force') return 'unknown parameter';
  const on = boolean(value);
  if (typeof on === 'string') return on;
  p.force = on;
  return undefined;
}

type MutableBlkfront = Writable<KernelCmdline['blkfront']>;
type MutableHaltpoll = Writable<HaltPollParams>;

/** Set one parameter; why not when it cannot be taken. */
function setBlkfront(o: MutableBlkfront, name: string, value: string | undefined): string | undefined {
  switch (name) {
    case 'max_indirect_segments': {
      const n = integer(value, 0, MAX_INDIRECT_SEGMENTS_CEILING);
      if (typeof n === 'string') return n;
      o.maxIndirectSegments = n < BLKIF_MAX_SEGMENTS_PER_REQUEST ? 0 : n;
      return undefined;
    }
    case 'max_ring_page_order': {
      const n = integer(value, 0, MAX_RING_PAGE_ORDER);
      if (typeof n === 'string') return n;
      o.maxRingPageOrder = n;
      return undefined;
    }
    case 'max_queues': {
      const n = integer(value, 1, MAX_QUEUES_CEILING);
      if (typeof n === 'string') return n;
      o.maxQueues = n;
      return undefined;
    }
    case 'feature_persistent': {
      const on = boolean(value);
      if (typeof on === 'string') return on;
      o.persistent = on;
      return undefined;
    }
    default:
      return 'unknown parameter';
  }
}

/** The haltpoll governor's numeric parameters (a Map: a name like `constructor` must miss). */
const HALTPOLL_NUMBERS = new Map<string, 'maxNs' | 'grow' | 'shrink' | 'growStartNs'>([
  ['guest_halt_poll_ns', 'maxNs'],
  ['guest_halt_poll_grow', 'grow'],
  ['guest_halt_poll_shrink', 'shrink'],
  ['guest_halt_poll_grow_start', 'growStartNs'],
]);

/** One parameter of the haltpoll governor; why not when it cannot be taken. */
function setHaltpoll(o: MutableHaltpoll, name: string, value: string | undefined): string | undefined {
  if (name === 'guest_halt_poll_allow_shrink') {
    const on = boolean(value);
    if (typeof on === 'string') return on;
    o.allowShrink = on;
    return undefined;
  }
  const field = HALTPOLL_NUMBERS.get(name);
  if (field === undefined) return 'unknown parameter';
  const n = integer(value, 0, field === 'grow' || field === 'shrink' ? 1000 : MAX_HALT_POLL_NS);
  if (typeof n === 'string') return n;
  o[field] = n;
  return undefined;
}

/** The spellings of a Linux bool parameter (kstrtobool); a bare name means on. */
function boolean(value: string | undefined): boolean | string {
  const v = value === undefined ? 'y' : value.toLowerCase();
  if (['y', '1', 'on'].includes(v)) return true;
  if (['n', '0', 'off'].includes(v)) return false;
  return 'not a boolean (y/n, 1/0, on/off)';
}

/** A decimal integer in [min, max], or why not. */
function integer(value: string | undefined, min: number, max: number): number | string {
  if (value === undefined || !/^\d{1,9}$/.test(value)) return `needs a number from ${min} to ${max}`;
  const n = Number(value);
  return n < min || n > max ? `${n} is not from ${min} to ${max}` : n;
}
