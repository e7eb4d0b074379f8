/**
 * Where a domain's grant state lives in machine memory, and how its words are packed.
 *
 * - Grant table frames (shared with the granting guest, `grant_entry_v1` = {flags u16,
 *   domid u16, frame u32}, little endian): word 2*ref holds flags | domid << 16, so one
 *   32-bit compareExchange checks the domid and sets GTF_reading/GTF_writing together, as
 *   Xen's `_set_status_v1` does on its combined "scombo" word; word 2*ref+1 is the frame.
 * - Active entries (hypervisor-private, Xen's `struct active_grant_entry`): word 2*ref is
 *   hstr pins (bits 0-7) | hstw pins (bits 8-15) | pinning domid (bits 16-31), word 2*ref+1
 *   the frame copied at the first pin (later maps use the copy, never the shared entry).
 * - Ref bitmap: the granting domain's free-ref allocator (one bit per ref), shared by all of
 *   its threads.
 * - Maptrack (per mapping domain, Xen's maptrack): 8 words per handle: in-use, granter
 *   domid | writable << 16, ref, granter generation, and the mapping thread's id (so the
 *   host can release what a dead backend thread held).
 */
import { GRANT_ENTRY_V1 } from '../abi/grant_table.js';
import { MACHINE_PAGE_SIZE } from '../memory/index.js';

export const ENTRY_BYTES = GRANT_ENTRY_V1.layouts.x86_64.size;
export const ENTRIES_PER_FRAME = MACHINE_PAGE_SIZE / ENTRY_BYTES;

/** Xen's pin fields are 8 bits each; it refuses a pin that would reach the top bit. */
export const PIN_HSTR_INC = 1;
export const PIN_HSTW_INC = 1 << 8;
export const PIN_HSTR_MASK = 0xff;
export const PIN_HSTW_MASK = 0xff00;
export const PIN_OVERFLOW = 0x80;

export const MAPTRACK_WORDS = 8;
export const MT_INUSE = 0;
export const MT_GRANTER = 1;
export const MT_REF = 2;
export const MT_GEN = 3;
export const MT_TID = 4;

export function grantTableFrames(entries: number): number {
  return Math.ceil(entries / ENTRIES_PER_FRAME);
}

/** Frames for the active entries (same size as the table: 8 bytes per ref). */
export function activeFrames(entries: number): number {
  return grantTableFrames(entries);
}

export function refBitmapFrames(entries: number): number {
  return Math.ceil(entries / 8 / MACHINE_PAGE_SIZE);
}

export function maptrackFrames(handles: number): number {
  return Math.ceil((handles * MAPTRACK_WORDS * 4) / MACHINE_PAGE_SIZE);
}
