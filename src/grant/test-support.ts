/**
 * Test support for the grant layer alone: a machine with a few ALIVE domains laid out the way
 * the hypervisor model's builder does it (grant table, active entries, ref bitmap, maptrack
 * and guest memory), without the rest of the hypervisor.
 */
import { DomainState, DomainTable, DW } from '../memory/index.js';
import { activeFrames, ENTRIES_PER_FRAME, grantTableFrames, maptrackFrames, refBitmapFrames } from './layout.js';

export const TEST_PAGES = 16;
const ENTRIES = ENTRIES_PER_FRAME;
const MAPTRACK = 64;

/** A table whose domains 0..count-1 exist, each with TEST_PAGES pages and one grant frame. */
export function grantTestTable(count: number): DomainTable {
  const table = DomainTable.create(count + 1, 64 * 2 ** 20);
  const regions: [number, number][] = [
    [DW.R_GNT_TABLE, grantTableFrames(ENTRIES)],
    [DW.R_GNT_ACTIVE, activeFrames(ENTRIES)],
    [DW.R_GREF_BITMAP, refBitmapFrames(ENTRIES)],
    [DW.R_MAPTRACK, maptrackFrames(MAPTRACK)],
  ];
  let next = 0;
  for (let d = 0; d < count; d++) {
    for (const [field, frames] of regions) {
      table.set(d, field, next);
      next += frames;
    }
    table.set(d, DW.MEM_BASE, next);
    table.set(d, DW.NR_PAGES, TEST_PAGES);
    next += TEST_PAGES;
    table.set(d, DW.GNT_ENTRIES, ENTRIES);
    table.set(d, DW.MAPTRACK_MAX, MAPTRACK);
    table.set(d, DW.GEN, 1);
    table.set(d, DW.STATE, DomainState.ALIVE);
  }
  table.machine.checkFrames(next);
  return table;
}
