/**
 * Hypercalls a control domain makes from userspace, through Linux's /dev/xen/privcmd
 * (IOCTL_PRIVCMD_HYPERCALL). Only one today: the domain list (XEN_SYSCTL_getdomaininfolist),
 * which is how a dom0 xenstored learns, after VIRQ_DOM_EXC, which domains shut down or died.
 *
 * The hypervisor reads and writes the request through our virtual addresses, so they must be
 * present and not move while it does: Linux offers /dev/xen/hypercall for that (pages the
 * kernel allocates and keeps; libxencall's buffers), and a fault on ordinary memory would be
 * an EFAULT. Without that device (older kernels) the buffer is private memory touched before
 * each call, which is what older libxencall did.
 */
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { XenpvError } from '../../base/index.js';
import { PAGE_SIZE } from '../platform.js';
import {
  decodeDomainInfoList,
  DOMAININFO_SIZE,
  encodeDomainInfoListRequest,
  HYPERVISOR_SYSCTL,
  SYSCTL_SIZE,
  type DomainInfo,
} from './domaininfo.js';
import { check, ioc, type Native } from './ffi.js';
import { MappedRegion } from './region.js';

/** <xen/sys/privcmd.h>: struct privcmd_hypercall { __u64 op; __u64 arg[5]; }. */
export const IOCTL_PRIVCMD_HYPERCALL = ioc('P', 0, 48);

/** Entries asked for per sysctl: the buffer is one page of request plus these. */
const BATCH = 128;
/** Domain ids below DOMID_FIRST_RESERVED: the most a listing can page through. */
const DOMID_LIMIT = 0x7ff0;

export class XenHypercalls {
  private closed = false;

  private constructor(
    private readonly native: Native,
    private readonly privcmdFd: number,
    private readonly region: MappedRegion,
    private readonly bufferFd: number | undefined,
  ) {}

  /** Open privcmd and a hypercall-safe buffer. Throws XenpvError when this is not a control domain. */
  static open(native: Native, devDir = '/dev/xen'): XenHypercalls {
    const privcmd = openSync(`${devDir}/privcmd`, constants.O_RDWR);
    const length = PAGE_SIZE + Math.ceil((BATCH * DOMAININFO_SIZE) / PAGE_SIZE) * PAGE_SIZE;
    let bufferFd: number | undefined;
    try {
      let region: MappedRegion;
      if (existsSync(`${devDir}/hypercall`)) {
        bufferFd = openSync(`${devDir}/hypercall`, constants.O_RDWR);
        region = MappedRegion.map(native, bufferFd, 0n, length, true, 'hypercall buffer');
      } else region = MappedRegion.anonymous(native, length);
      return new XenHypercalls(native, privcmd, region, bufferFd);
    } catch (err) {
      if (bufferFd !== undefined) closeSync(bufferFd);
      closeSync(privcmd);
      throw err;
    }
  }

  /** Every domain the hypervisor has (XEN_SYSCTL_getdomaininfolist, paged by first_domain). */
  listDomains(): DomainInfo[] {
    if (this.closed) throw new XenpvError('EBADF', 'hypercall interface is closed');
    const bytes = new Uint8Array(this.region.buffer);
    const req = bytes.subarray(0, SYSCTL_SIZE);
    const entries = bytes.subarray(PAGE_SIZE, PAGE_SIZE + BATCH * DOMAININFO_SIZE);
    const out: DomainInfo[] = [];
    let first = 0;
    while (first < DOMID_LIMIT) {
      entries.fill(0);
      encodeDomainInfoListRequest(req, first, BATCH, this.region.address + BigInt(PAGE_SIZE));
      this.hypercall(HYPERVISOR_SYSCTL, this.region.address);
      const got = decodeDomainInfoList(req, entries, BATCH);
      out.push(...got);
      const last = got.at(-1);
      // Fewer than asked: that was all. The hypervisor lists in domid order; a list that does
      // not advance would loop, so stop there too.
      if (got.length < BATCH || last === undefined || last.domid < first) break;
      first = last.domid + 1;
    }
    return out;
  }

  /** IOCTL_PRIVCMD_HYPERCALL: the hypercall's own result, or XenpvError(errno) when negative. */
  private hypercall(op: number, arg0: bigint): number {
    const call = new Uint8Array(48);
    const dv = new DataView(call.buffer);
    dv.setBigUint64(0, BigInt(op), true);
    dv.setBigUint64(8, arg0, true);
    return check(this.native, this.native.ioctl(this.privcmdFd, IOCTL_PRIVCMD_HYPERCALL, call), `hypercall ${op}`, { op });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.region.retire();
    if (this.bufferFd !== undefined) closeSync(this.bufferFd);
    closeSync(this.privcmdFd);
  }
}
