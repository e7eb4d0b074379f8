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
 * A parameter it does not know or a value it cannot take is reported and ignored, the default
 * staying, as Linux warns about a bad parameter and boots on.
 */
import { BLKIF_MAX_SEGMENTS_PER_REQUEST } from '../abi/io/blkif.js';
import type { BlkFrontOptions } from '../devices/blk/index.js';
import { MAX_INDIRECT_SEGMENTS_CEILING, MAX_QUEUES_CEILING, MAX_RING_PAGE_ORDER } from '../devices/blk/protocol.js';

export interface KernelCmdline {
  /** The blkfront parameters given (the others stay the frontend's defaults). */
  readonly blkfront: Pick<BlkFrontOptions, 'maxIndirectSegments' | 'maxRingPageOrder' | 'maxQueues' | 'persistent'>;
  /** The program's part: `extra` as given when it holds no kernel parameter, else its other words. */
  readonly args: string;
  readonly argv: readonly string[];
  /** One line per parameter ignored, for the console. */
  readonly warnings: readonly string[];
}

const BLKFRONT = 'xen_blkfront.';

export function parseKernelCmdline(extra: string): KernelCmdline {
  const words = extra.split(/\s+/).filter((s) => s !== '');
  const argv: string[] = [];
  const warnings: string[] = [];
  const blkfront: MutableBlkfront = {};
  for (const word of words) {
    if (!word.startsWith(BLKFRONT)) {
      argv.push(word);
      continue;
    }
    const eq = word.indexOf('=');
    const name = word.slice(BLKFRONT.length, eq < 0 ? undefined : eq);
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    const why = setBlkfront(blkfront, name, value);
    if (why !== undefined) warnings.push(`xen_blkfront: ignoring '${word}': ${why}`);
  }
  return { blkfront, args: argv.length === words.length ? extra : argv.join(' '), argv, warnings };
}

type MutableBlkfront = { -readonly [K in keyof KernelCmdline['blkfront']]: KernelCmdline['blkfront'][K] };

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
      // The spellings of a Linux bool parameter (kstrtobool); a bare name means on.
      const v = value === undefined ? 'y' : value.toLowerCase();
      if (['y', '1', 'on'].includes(v)) o.persistent = true;
      else if (['n', '0', 'off'].includes(v)) o.persistent = false;
      else return 'not a boolean (y/n, 1/0, on/off)';
      return undefined;
    }
    default:
      return 'unknown parameter';
  }
}

/** A decimal integer in [min, max], or why not. */
function integer(value: string | undefined, min: number, max: number): number | string {
  if (value === undefined || !/^\d{1,9}$/.test(value)) return `needs a number from ${min} to ${max}`;
  const n = Number(value);
  return n < min || n > max ? `${n} is not from ${min} to ${max}` : n;
}
