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
import { DOMID_FIRST_RESERVED } from '../../abi/xen.js';
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

/**
 * /dev/xen/privcmd and a hypercall-safe buffer of `length` bytes (see above), shared by every
 * user of privcmd here (the domain list below, grant-status.ts's view of our grant table).
 */
export class PrivcmdChannel {
  private constructor(
    private readonly native: Native,
    /** The privcmd fd, for its other ioctls and mmap. */
    readonly fd: number,
    readonly buffer: MappedRegion,
    private readonly bufferFd: number | undefined,
  ) {}

  /** Throws (ENOENT and the like from open, or the mmap's XenpvError); leaks no fd. */
  static open(native: Native, devDir: string, length: number): PrivcmdChannel {
    const privcmd = openSync(`${devDir}/privcmd`, constants.O_RDWR);
    let bufferFd: number | undefined;
    try {
      let buffer: MappedRegion;
      if (existsSync(`${devDir}/hypercall`)) {
        bufferFd = openSync(`${devDir}/hypercall`, constants.O_RDWR);
        buffer = MappedRegion.map(native, bufferFd, 0n, length, true, 'hypercall buffer');
      } else buffer = MappedRegion.anonymous(native, length);
      return new PrivcmdChannel(native, privcmd, buffer, bufferFd);
    } catch (err) {
      if (bufferFd !== undefined) closeSync(bufferFd);
      closeSync(privcmd);
      throw err;
    }
  }

  /**
   * IOCTL_PRIVCMD_HYPERCALL `op(args...)`: the hypercall's own result, or XenpvError(errno)
   * named `what` when it is refused (every caller wants that, so it is checked here).
   */
  hypercall(what: string, op: number, ...args: bigint[]): number {
    const call = new Uint8Array(48);
    const dv = new DataView(call.buffer);
    dv.setBigUint64(0, BigInt(op), true);
    args.forEach((a, i) => dv.setBigUint64(8 * (i + 1), a, true));
    return check(this.native, this.native.ioctl(this.fd, IOCTL_PRIVCMD_HYPERCALL, call), what, { op });
  }

  close(): void {
    this.buffer.retire();
    if (this.bufferFd !== undefined) closeSync(this.bufferFd);
    closeSync(this.fd);
  }
}

/** Entries asked for per sysctl: the buffer is one page of request plus these. */
const BATCH = 128;

export class XenHypercalls {
  private closed = false;

  private constructor(private readonly channel: PrivcmdChannel) {}

  /** Open privcmd and a hypercall-safe buffer. Throws XenpvError when this is not a control domain. */
  static open(native: Native, devDir = '/dev/xen'): XenHypercalls {
    const length = PAGE_SIZE + Math.ceil((BATCH * DOMAININFO_SIZE) / PAGE_SIZE) * PAGE_SIZE;
    return new XenHypercalls(PrivcmdChannel.open(native, devDir, length));
  }

  /** Every domain the hypervisor has (XEN_SYSCTL_getdomaininfolist, paged by first_domain). */
  listDomains(): DomainInfo[] {
    if (this.closed) throw new XenpvError('EBADF', 'hypercall interface is closed');
    const region = this.channel.buffer;
    const bytes = new Uint8Array(region.buffer);
    const req = bytes.subarray(0, SYSCTL_SIZE);
    const entries = bytes.subarray(PAGE_SIZE, PAGE_SIZE + BATCH * DOMAININFO_SIZE);
    const out: DomainInfo[] = [];
    let first = 0;
    // Domain ids below DOMID_FIRST_RESERVED: the most a listing can page through.
    while (first < DOMID_FIRST_RESERVED) {
      entries.fill(0);
      encodeDomainInfoListRequest(req, first, BATCH, region.address + BigInt(PAGE_SIZE));
      this.channel.hypercall(`hypercall ${HYPERVISOR_SYSCTL}`, HYPERVISOR_SYSCTL, region.address);
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
  }
}
