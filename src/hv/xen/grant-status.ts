/**
 * Whether a grantee maps one of our grants now: the GTF_reading/GTF_writing bits Xen sets in
 * our own grant entry (grant_table.h: "[XEN]" flags) while a mapping is live. That is what
 * gnttab_end_foreign_access_ref checks before it ends a grant, and what `endAccess` must
 * check (reliability.md R8); Linux's gntalloc checks it too but tells userspace nothing.
 *
 * Our grant table is shared between Xen and our kernel, not userspace. A PV domain's root can
 * still read it: GNTTABOP_query_size and GNTTABOP_setup_table (DOMID_SELF, through
 * IOCTL_PRIVCMD_HYPERCALL) name the table's frames, and IOCTL_PRIVCMD_MMAPBATCH_V2 with
 * DOMID_SELF maps them read-only into a privcmd mapping (the frames are shared with this
 * domain, so Xen lets it map them). In a domU, Linux (6.1 with the 2024 privcmd restriction)
 * blocks every privcmd hypercall unless a target domain is set: EPERM, so there the grantee's
 * mappings cannot be observed. Where any step is refused (no privcmd, not root, an
 * auto-translated domain, a kernel that keeps the table elsewhere), `open` says why and
 * `endAccess` cannot observe the grantee (memory.ts says what it does then).
 */
import { existsSync } from 'node:fs';
import { GNTTAB_QUERY_SIZE, GNTTAB_SETUP_TABLE, GNTTABOP, GRANT_ENTRY_V1, GTF } from '../../abi/grant_table.js';
import { DOMID_SELF, HYPERCALL } from '../../abi/xen.js';
import { XenpvError, type DomId, type GrantRef } from '../../base/index.js';
import { PAGE_SIZE } from '../platform.js';
import { check, ioc, type Native } from './ffi.js';
import { PrivcmdChannel } from './hypercall.js';
import { MappedRegion } from './region.js';

/** <xen/sys/privcmd.h>: privcmd_mmapbatch_v2 {u32 num; u16 dom; u64 addr; pfn *arr; int *err}. */
export const IOCTL_PRIVCMD_MMAPBATCH_V2 = ioc('P', 4, 32);
export const MMAPBATCH_V2_LAYOUT = { size: 32, num: 0, dom: 4, addr: 8, arr: 16, err: 24 } as const;
/** abi's struct gnttab_query_size (x86_64), under the names this file uses. */
const QS = GNTTAB_QUERY_SIZE.layouts.x86_64;
export const QUERY_SIZE_LAYOUT = { size: QS.size, dom: QS.fields.dom, nrFrames: QS.fields.nr_frames, maxNrFrames: QS.fields.max_nr_frames, status: QS.fields.status } as const;
/** abi's struct gnttab_setup_table (x86_64), under the names this file uses. */
const ST = GNTTAB_SETUP_TABLE.layouts.x86_64;
export const SETUP_TABLE_LAYOUT = { size: ST.size, dom: ST.fields.dom, nrFrames: ST.fields.nr_frames, status: ST.fields.status, frameList: ST.fields.frame_list } as const;
const HYPERVISOR_GRANT_TABLE_OP = HYPERCALL.__HYPERVISOR_grant_table_op;
/** grant_entry_v1: flags u16 @0, domid u16 @2, frame u32 @4. */
const ENTRY = GRANT_ENTRY_V1.layouts.x86_64;
const ENTRY_SIZE = ENTRY.size;
/** Frames we map at most: the frame list and its error codes fit the one-page buffer. */
const MAX_FRAMES = 224;
const FRAMES_AT = 64;
const ERRS_AT = FRAMES_AT + 8 * MAX_FRAMES;

export class GrantTableView {
  private table: MappedRegion | undefined;

  private constructor(
    private readonly native: Native,
    private readonly privcmd: PrivcmdChannel,
  ) {}

  /** Map our grant table, or the reason it cannot be read here. Never throws. */
  static open(native: Native, devDir = '/dev/xen'): { ok: true; view: GrantTableView } | { ok: false; reason: string } {
    if (!existsSync(`${devDir}/privcmd`)) return { ok: false, reason: `${devDir}/privcmd is missing` };
    let privcmd: PrivcmdChannel | undefined;
    try {
      privcmd = PrivcmdChannel.open(native, devDir, PAGE_SIZE);
      const view = new GrantTableView(native, privcmd);
      view.remap();
      return { ok: true, view };
    } catch (err) {
      privcmd?.close();
      return { ok: false, reason: `our grant table cannot be mapped: ${(err as Error).message}` };
    }
  }

  /**
   * true while `remote` maps `ref` (GTF_reading or GTF_writing), false when it does not;
   * undefined when the entry is not a grant of ours to `remote` as far as the table shows.
   */
  inUse(ref: GrantRef, remote: DomId): boolean | undefined {
    if ((ref + 1) * ENTRY_SIZE > (this.table?.length ?? 0)) {
      // The kernel grew its table since we mapped it (gnttab_expand).
      try {
        this.remap();
      } catch {
        return undefined;
      }
    }
    const table = this.table;
    if (table === undefined || (ref + 1) * ENTRY_SIZE > table.length) return undefined;
    // flags and domid in one read: Xen sets GTF_reading/GTF_writing and our kernel rewrites
    // the entry meanwhile, so two reads could pair one grant's domid with another's flags.
    const head = new DataView(table.buffer).getUint32(ref * ENTRY_SIZE + ENTRY.fields.flags, true);
    const flags = head & 0xffff;
    const domid = head >>> 16;
    if ((flags & GTF.GTF_type_mask) !== GTF.GTF_permit_access || domid !== remote) return undefined;
    return (flags & (GTF.GTF_reading | GTF.GTF_writing)) !== 0;
  }

  close(): void {
    this.table?.retire();
    this.table = undefined;
    this.privcmd.close();
  }

  /** Ask Xen for the table's frames and map them all, replacing an older mapping. */
  private remap(): void {
    const frames = this.frames();
    const bytes = new Uint8Array(this.buffer.buffer);
    const len = frames * PAGE_SIZE;
    const region = MappedRegion.map(this.native, this.privcmd.fd, 0n, len, false, 'our grant table');
    try {
      const req = new Uint8Array(MMAPBATCH_V2_LAYOUT.size);
      const dv = new DataView(req.buffer);
      dv.setUint32(MMAPBATCH_V2_LAYOUT.num, frames, true);
      dv.setUint16(MMAPBATCH_V2_LAYOUT.dom, DOMID_SELF, true);
      dv.setBigUint64(MMAPBATCH_V2_LAYOUT.addr, region.address, true);
      dv.setBigUint64(MMAPBATCH_V2_LAYOUT.arr, this.buffer.address + BigInt(FRAMES_AT), true);
      dv.setBigUint64(MMAPBATCH_V2_LAYOUT.err, this.buffer.address + BigInt(ERRS_AT), true);
      check(this.native, this.native.ioctl(this.privcmd.fd, IOCTL_PRIVCMD_MMAPBATCH_V2, req), 'IOCTL_PRIVCMD_MMAPBATCH_V2 (own grant table)');
      const errs = new DataView(bytes.buffer, ERRS_AT, 4 * frames);
      for (let i = 0; i < frames; i++) {
        if (errs.getInt32(4 * i, true) !== 0) throw new XenpvError('EIO', `grant table frame ${i} did not map (${errs.getInt32(4 * i, true)})`);
      }
    } catch (err) {
      region.retire();
      throw err;
    }
    this.table?.retire();
    this.table = region;
  }

  /** GNTTABOP_query_size then GNTTABOP_setup_table for DOMID_SELF: the frame list, in the buffer. */
  private frames(): number {
    const bytes = new Uint8Array(this.buffer.buffer);
    const dv = new DataView(this.buffer.buffer);
    bytes.fill(0);
    dv.setUint16(QUERY_SIZE_LAYOUT.dom, DOMID_SELF, true);
    this.grantTableOp(GNTTABOP.GNTTABOP_query_size, dv, QUERY_SIZE_LAYOUT.status, 'query_size');
    const nr = dv.getUint32(QUERY_SIZE_LAYOUT.nrFrames, true);
    if (nr === 0 || nr > MAX_FRAMES) throw new XenpvError('E2BIG', `grant table of ${nr} frames (at most ${MAX_FRAMES} are read)`);
    bytes.fill(0);
    dv.setUint16(SETUP_TABLE_LAYOUT.dom, DOMID_SELF, true);
    dv.setUint32(SETUP_TABLE_LAYOUT.nrFrames, nr, true);
    dv.setBigUint64(SETUP_TABLE_LAYOUT.frameList, this.buffer.address + BigInt(FRAMES_AT), true);
    this.grantTableOp(GNTTABOP.GNTTABOP_setup_table, dv, SETUP_TABLE_LAYOUT.status, 'setup_table');
    return nr;
  }

  private grantTableOp(cmd: number, dv: DataView, statusAt: number, what: string): void {
    this.privcmd.hypercall(`GNTTABOP_${what} refused`, HYPERVISOR_GRANT_TABLE_OP, BigInt(cmd), this.buffer.address, 1n);
    const status = dv.getInt16(statusAt, true);
    if (status !== 0) throw new XenpvError('EIO', `GNTTABOP_${what}: status ${status}`);
  }

  /** The one-page buffer the hypervisor reads our requests from and writes the frame list to. */
  private get buffer(): MappedRegion {
    return this.privcmd.buffer;
  }
}
