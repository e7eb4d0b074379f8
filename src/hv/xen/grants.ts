/**
 * Grant operations on a real Xen domain, through Linux's /dev/xen/gntdev:
 *
 * - map: IOCTL_GNTDEV_MAP_GRANT_REF reserves an offset in the device for the refs, mmap of
 *   that offset maps the granter's pages (the kernel does GNTTABOP_map_grant_ref);
 *   dispose retires the region (region.ts) and IOCTL_GNTDEV_UNMAP_GRANT_REF frees the slot.
 * - copy: IOCTL_GNTDEV_GRANT_COPY (the kernel's GNTTABOP_copy), our side through a native
 *   staging page per op, since the op names our memory by virtual address.
 * - grantAccess / endAccess: a gntalloc page per grant, mapped under our frame (memory.ts).
 */
import { GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTST } from '../../abi/grant_table.js';
import { XenpvError, trackResource, type DomId, type Frame, type GrantRef } from '../../base/index.js';
import { PAGE_SIZE, type CopyPtr, type GrantCopyOp, type GrantMapping, type GrantOps } from '../platform.js';
import { check, ioc, type Native } from './ffi.js';
import type { XenDomainMemory } from './memory.js';
import { MappedRegion } from './region.js';

// <xen/sys/gntdev.h>
export const IOCTL_GNTDEV_MAP_GRANT_REF = ioc('G', 0, 24);
export const IOCTL_GNTDEV_UNMAP_GRANT_REF = ioc('G', 1, 16);
export const IOCTL_GNTDEV_GRANT_COPY = ioc('G', 8, 16);
/** sizeof(struct ioctl_gntdev_grant_copy_segment): two 8-byte unions, len, flags, status. */
const SEGMENT_SIZE = 24;
/** Ops per GRANT_COPY ioctl: bounds the staging memory (one page per op). */
const COPY_BATCH = 32;
/**
 * XENPV_XEN_KEEP_MAPS=1 (diagnosis only): a disposed mapping stays mapped for the life of the
 * process (no retire, no IOCTL_GNTDEV_UNMAP_GRANT_REF), to tell unmap-lifetime faults apart.
 */
const keepMaps = process.env['XENPV_XEN_KEEP_MAPS'] === '1';

class XenGrantMapping implements GrantMapping {
  readonly pages: readonly Uint8Array[];
  private readonly untrack: () => void;
  private disposed = false;

  constructor(
    private readonly ops: XenGrantOps,
    private readonly region: MappedRegion,
    private readonly index: bigint,
    readonly domid: DomId,
    readonly refs: readonly GrantRef[],
    readonly writable: boolean,
  ) {
    this.pages = region.pages(PAGE_SIZE);
    this.untrack = trackResource('grant-mapping', `xen: dom${domid} refs ${refs.join(',')}`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (keepMaps) return this.untrack();
    this.region.retire();
    this.ops.releaseSlot(this.index, this.refs.length);
    this.untrack();
  }
}

export class XenGrantOps implements GrantOps {
  private staging: { region: MappedRegion; base: bigint } | undefined;

  constructor(
    private readonly native: Native,
    private readonly gntdevFd: number,
    private readonly memory: XenDomainMemory,
  ) {}

  grantAccess(remote: DomId, frame: Frame, readonly: boolean): GrantRef {
    return this.memory.grantOf(remote, frame, readonly);
  }

  endAccess(ref: GrantRef): boolean {
    return this.memory.endGrant(ref);
  }

  map(remote: DomId, refs: readonly GrantRef[], writable: boolean): GrantMapping {
    if (refs.length === 0) throw new XenpvError('EINVAL', 'no grant refs to map');
    const req = new Uint8Array(16 + 8 * refs.length);
    const dv = new DataView(req.buffer);
    dv.setUint32(0, refs.length, true);
    refs.forEach((ref, i) => {
      dv.setUint32(16 + 8 * i, remote, true);
      dv.setUint32(20 + 8 * i, ref, true);
    });
    check(this.native, this.native.ioctl(this.gntdevFd, IOCTL_GNTDEV_MAP_GRANT_REF, req), 'IOCTL_GNTDEV_MAP_GRANT_REF', { remote });
    const index = dv.getBigUint64(8, true);
    let region: MappedRegion;
    try {
      region = MappedRegion.map(this.native, this.gntdevFd, index, refs.length * PAGE_SIZE, writable, `grants of dom${remote}`);
    } catch (err) {
      this.releaseSlot(index, refs.length);
      // gntdev's mmap fails as a whole when Xen refuses any of the refs; the per-ref GNTST
      // status stays inside the kernel, so this is the general error.
      throw new XenpvError('GNTST_general_error', `dom${remote} refs ${refs.join(',')} did not map`, { remote, refs }, { cause: err });
    }
    return new XenGrantMapping(this, region, index, remote, [...refs], writable);
  }

  /** @internal Free gntdev's slot for a map once its pages are unmapped. */
  releaseSlot(index: bigint, count: number): void {
    const req = new Uint8Array(16);
    const dv = new DataView(req.buffer);
    dv.setBigUint64(0, index, true);
    dv.setUint32(8, count, true);
    this.native.ioctl(this.gntdevFd, IOCTL_GNTDEV_UNMAP_GRANT_REF, req);
  }

  copy(ops: readonly GrantCopyOp[], count = ops.length, status?: number[]): number[] {
    const n = Math.min(count, ops.length);
    const out = status ?? new Array<number>(n);
    for (let i = 0; i < n; i += COPY_BATCH) {
      const part = this.copyBatch(ops.slice(i, Math.min(n, i + COPY_BATCH)));
      for (let k = 0; k < part.length; k++) out[i + k] = part[k]!;
    }
    return out;
  }

  private copyBatch(ops: readonly GrantCopyOp[]): number[] {
    const status: number[] = ops.map((op) => (validOp(op) ? 0 : GNTST.GNTST_bad_copy_arg));
    // Only ops naming a grant go to the kernel; a local-to-local op is a plain copy.
    const kernelOps: number[] = [];
    ops.forEach((op, i) => {
      if (status[i] !== 0) return;
      if (op.source.kind === 'local' && op.dest.kind === 'local') {
        op.dest.buf.set(op.source.buf.subarray(op.source.offset, op.source.offset + op.len), op.dest.offset);
      } else kernelOps.push(i);
    });
    if (kernelOps.length === 0) return status;
    const stage = this.stagingArea();
    const bytes = new Uint8Array(stage.region.buffer);
    const segAt = COPY_BATCH * PAGE_SIZE;
    const dv = new DataView(stage.region.buffer, segAt, SEGMENT_SIZE * COPY_BATCH);
    kernelOps.forEach((opIndex, slot) => {
      const op = ops[opIndex]!;
      const at = slot * SEGMENT_SIZE;
      const local = stage.base + BigInt(slot * PAGE_SIZE);
      encodePtr(dv, at, op.source, local);
      encodePtr(dv, at + 8, op.dest, local);
      dv.setUint16(at + 16, op.len, true);
      const flags = (op.source.kind === 'grant' ? GNTCOPY_source_gref : 0) | (op.dest.kind === 'grant' ? GNTCOPY_dest_gref : 0);
      dv.setUint16(at + 18, flags, true);
      dv.setInt16(at + 20, 0, true);
      if (op.source.kind === 'local') bytes.set(op.source.buf.subarray(op.source.offset, op.source.offset + op.len), slot * PAGE_SIZE);
    });
    const failed = this.runCopy(stage.base + BigInt(segAt), kernelOps.length);
    kernelOps.forEach((opIndex, slot) => {
      const op = ops[opIndex]!;
      const st = failed ?? dv.getInt16(slot * SEGMENT_SIZE + 20, true);
      status[opIndex] = st;
      if (st === 0 && op.dest.kind === 'local') {
        op.dest.buf.set(bytes.subarray(slot * PAGE_SIZE, slot * PAGE_SIZE + op.len), op.dest.offset);
      }
    });
    return status;
  }

  /** The ioctl; a failed ioctl (not a per-segment failure) is a general error for every op. */
  private runCopy(segments: bigint, count: number): number | undefined {
    const req = new Uint8Array(16);
    const dv = new DataView(req.buffer);
    dv.setUint32(0, count, true);
    dv.setBigUint64(8, segments, true);
    const rc = this.native.ioctl(this.gntdevFd, IOCTL_GNTDEV_GRANT_COPY, req);
    return rc < 0 ? GNTST.GNTST_general_error : undefined;
  }

  /** Native pages for copy ops: one data page per op, then the segment array. */
  private stagingArea(): { region: MappedRegion; base: bigint } {
    if (this.staging === undefined) {
      const region = MappedRegion.anonymous(this.native, (COPY_BATCH + 1) * PAGE_SIZE);
      this.staging = { region, base: region.address };
    }
    return this.staging;
  }

  dispose(): void {
    this.staging?.region.retire();
    this.staging = undefined;
  }
}

function validOp(op: GrantCopyOp): boolean {
  const sideOk = (p: CopyPtr): boolean =>
    Number.isInteger(p.offset) && p.offset >= 0 && p.offset + op.len <= (p.kind === 'grant' ? PAGE_SIZE : p.buf.length);
  return Number.isInteger(op.len) && op.len > 0 && op.len <= PAGE_SIZE && sideOk(op.source) && sideOk(op.dest);
}

/** One union of a copy segment: `foreign {ref, offset, domid}` or `virt` (our staging page). */
function encodePtr(dv: DataView, at: number, p: CopyPtr, local: bigint): void {
  if (p.kind === 'grant') {
    dv.setUint32(at, p.ref, true);
    dv.setUint16(at + 4, p.offset, true);
    dv.setUint16(at + 6, p.domid, true);
  } else {
    dv.setBigUint64(at, local, true);
  }
}
