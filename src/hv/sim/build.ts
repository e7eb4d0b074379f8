/**
 * The domain builder: lays out a new domain's control regions and memory in machine frames
 * and fills its row of the domain table. Host only.
 */
import { GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE, GTF_permit_access } from '../../abi/grant_table.js';
import { XenpvError, type DomId } from '../../base/index.js';
import { EvtchnHypercalls, listenersFrames, portsFrames, STATE_RESERVED, virqFrames } from '../../evtchn/index.js';
import { activeFrames, ENTRIES_PER_FRAME, grantTableFrames, maptrackFrames, refBitmapFrames } from '../../grant/index.js';
import { DW, DomainState, MACHINE_PAGE_SIZE, SimDomainMemory, type DomainTable, type ExtentAllocator } from '../../memory/index.js';
import { writeStartInfo, type StartInfo } from './start-info.js';

export interface DomainLimits {
  /** xl `max_grant_frames`: grant table size in 4 KiB frames of 512 v1 entries. */
  readonly maxGrantFrames: number;
  /** xl `max_maptrack_frames`, as a count of live mappings this domain may hold. */
  readonly maxMaptrack: number;
  /** xl `max_event_channels`: ports below this may be allocated (2-level ABI: at most 4096). */
  readonly maxEventChannels: number;
}

export const DEFAULT_LIMITS: DomainLimits = { maxGrantFrames: 64, maxMaptrack: 16384, maxEventChannels: 1023 };

export interface BuildSpec extends DomainLimits {
  readonly memoryPages: number;
  readonly vcpus: number;
  readonly paused: boolean;
}

export interface Extents {
  readonly ctlBase: number;
  readonly ctlFrames: number;
  readonly memBase: number;
  readonly memFrames: number;
}

const REGIONS = [
  DW.R_SHARED_INFO,
  DW.R_GNT_TABLE,
  DW.R_GNT_ACTIVE,
  DW.R_GREF_BITMAP,
  DW.R_MAPTRACK,
  DW.R_PORTS,
  DW.R_LISTENERS,
  DW.R_VIRQS,
  DW.R_PAGE_BITMAP,
  DW.R_START_INFO,
] as const;

function regionFrames(spec: BuildSpec): number[] {
  const entries = spec.maxGrantFrames * ENTRIES_PER_FRAME;
  return [
    1,
    grantTableFrames(entries),
    activeFrames(entries),
    refBitmapFrames(entries),
    maptrackFrames(spec.maxMaptrack),
    portsFrames(),
    listenersFrames(),
    virqFrames(),
    Math.max(1, Math.ceil(spec.memoryPages / (MACHINE_PAGE_SIZE * 8))),
    1,
  ];
}

export function validateSpec(spec: BuildSpec): void {
  const bad = (what: string, v: number): never => {
    throw new XenpvError('EINVAL', `bad ${what}: ${v}`, { [what]: v });
  };
  if (!Number.isInteger(spec.memoryPages) || spec.memoryPages < 4) bad('memoryPages', spec.memoryPages);
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1 || spec.vcpus > 32) bad('vcpus', spec.vcpus);
  if (!Number.isInteger(spec.maxGrantFrames) || spec.maxGrantFrames < 1 || spec.maxGrantFrames > 4096) {
    bad('maxGrantFrames', spec.maxGrantFrames);
  }
  if (!Number.isInteger(spec.maxMaptrack) || spec.maxMaptrack < 1) bad('maxMaptrack', spec.maxMaptrack);
  if (!Number.isInteger(spec.maxEventChannels) || spec.maxEventChannels < 2 || spec.maxEventChannels > 4096) {
    bad('maxEventChannels', spec.maxEventChannels);
  }
}

/** Allocate and initialise domain `domid` (its row must be FREE). Leaves it ALIVE. */
export function buildDomain(table: DomainTable, alloc: ExtentAllocator, domid: number, spec: BuildSpec): Extents {
  validateSpec(spec);
  const frames = regionFrames(spec);
  const ctlFrames = frames.reduce((a, b) => a + b, 0);
  const ctlBase = alloc.alloc(ctlFrames);
  let memBase: number;
  try {
    memBase = alloc.alloc(spec.memoryPages);
  } catch (err) {
    alloc.release(ctlBase, ctlFrames);
    throw err;
  }
  table.set(domid, DW.STATE, DomainState.CREATING);
  for (let f = 0; f < 64; f++) if (f !== DW.STATE && f !== DW.GEN && f !== DW.CONTROL_SEQ) table.set(domid, f, 0);
  table.add(domid, DW.GEN, 1);
  let at = ctlBase;
  REGIONS.forEach((r, i) => {
    table.set(domid, r, at);
    at += frames[i]!;
  });
  table.set(domid, DW.CTL_BASE, ctlBase);
  table.set(domid, DW.CTL_FRAMES, ctlFrames);
  table.set(domid, DW.MEM_BASE, memBase);
  table.set(domid, DW.NR_PAGES, spec.memoryPages);
  table.set(domid, DW.PAGES_FREE, spec.memoryPages);
  table.set(domid, DW.NR_VCPUS, spec.vcpus);
  table.set(domid, DW.GNT_ENTRIES, spec.maxGrantFrames * ENTRIES_PER_FRAME);
  table.set(domid, DW.MAPTRACK_MAX, spec.maxMaptrack);
  table.set(domid, DW.EVTCHN_MAX, spec.maxEventChannels);
  table.set(domid, DW.PAUSE, spec.paused ? 1 : 0);
  // Port 0 is never handed out (Xen marks it ECS_RESERVED).
  Atomics.store(table.machine.words(table.get(domid, DW.R_PORTS)), 0, STATE_RESERVED);
  table.set(domid, DW.SHUTDOWN_CODE, 0); // none yet (a reused row must not keep the last one)
  table.set(domid, DW.STATE, DomainState.ALIVE);
  return { ctlBase, ctlFrames, memBase, memFrames: spec.memoryPages };
}

/**
 * The builder's part of a PV guest's boot: a xenstore and a console ring page, granted to
 * dom0 at the reserved refs, and an unbound port for each whose remote is dom0.
 */
export function setupStartInfo(table: DomainTable, domid: number, tid: number): StartInfo {
  const mem = new SimDomainMemory(table, domid as DomId);
  const [consoleFrame = 0, storeFrame = 0] = mem.allocPages(2);
  const gnt = table.machine.words(table.get(domid, DW.R_GNT_TABLE), 1);
  for (const [ref, frame] of [
    [GNTTAB_RESERVED_CONSOLE, consoleFrame],
    [GNTTAB_RESERVED_XENSTORE, storeFrame],
  ] as const) {
    Atomics.store(gnt, ref * 2 + 1, frame);
    Atomics.store(gnt, ref * 2, GTF_permit_access | (0 << 16));
  }
  const hc = new EvtchnHypercalls(table, tid);
  const info: StartInfo = {
    storeFrame,
    storePort: hc.allocUnbound(domid, 0),
    consoleFrame,
    consolePort: hc.allocUnbound(domid, 0),
  };
  writeStartInfo(table, domid, info);
  return info;
}
