/**
 * What a control domain asks the hypervisor about other domains: XEN_SYSCTL_getdomaininfolist
 * (sysctl.h) filling an array of `struct xen_domctl_getdomaininfo` (domctl.h), Xen 4.17's
 * interface versions. Pure encoding and decoding here; the hypercall itself is hypercall.ts.
 *
 * Offsets are those gcc computes from /usr/include/xen (x86_64); domaininfo.test.ts compares
 * every one of them with the compiler.
 */
import { HYPERCALL } from '../../abi/xen.js';

/** <xen/xen.h> (abi/xen.ts, checked against the header with every constant there). */
export const HYPERVISOR_SYSCTL = HYPERCALL.__HYPERVISOR_sysctl;
/** <xen/sysctl.h> XEN_SYSCTL_INTERFACE_VERSION of Xen 4.17 (checked against the header). */
export const SYSCTL_INTERFACE_VERSION = 0x15;
export const SYSCTL_GETDOMAININFOLIST = 6;

/** sizeof(struct xen_sysctl) and where getdomaininfolist's fields sit in it. */
export const SYSCTL_SIZE = 136;
export const SYSCTL_OFF = { cmd: 0, interfaceVersion: 4, firstDomain: 8, maxDomains: 12, buffer: 16, numDomains: 24 } as const;

/** sizeof(struct xen_domctl_getdomaininfo) on x86 and the fields we read. */
export const DOMAININFO_SIZE = 112;
export const DOMAININFO_OFF = { domain: 0, flags: 4, totPages: 8, maxVcpuId: 68 } as const;

/** XEN_DOMINF_* (domctl.h) */
export const DOMINF_DYING = 1 << 0;
export const DOMINF_SHUTDOWN = 1 << 2;
export const DOMINF_SHUTDOWN_SHIFT = 16;
export const DOMINF_SHUTDOWN_MASK = 255;

/** One domain as the hypervisor reports it. */
export interface DomainInfo {
  readonly domid: number;
  /** Scheduled to die (being destroyed): its resources are going. */
  readonly dying: boolean;
  /** Shut down by the guest (any reason) or crashed. */
  readonly shutdown: boolean;
  /** SHUTDOWN_* reason when `shutdown`. */
  readonly shutdownReason: number;
}

/** Fill `req` (SYSCTL_SIZE bytes) with a getdomaininfolist request for `buffer`'s address. */
export function encodeDomainInfoListRequest(req: Uint8Array, firstDomain: number, maxDomains: number, buffer: bigint): void {
  if (req.length < SYSCTL_SIZE) throw new RangeError(`sysctl buffer of ${req.length} bytes`);
  req.fill(0, 0, SYSCTL_SIZE);
  const dv = new DataView(req.buffer, req.byteOffset, SYSCTL_SIZE);
  dv.setUint32(SYSCTL_OFF.cmd, SYSCTL_GETDOMAININFOLIST, true);
  dv.setUint32(SYSCTL_OFF.interfaceVersion, SYSCTL_INTERFACE_VERSION, true);
  dv.setUint16(SYSCTL_OFF.firstDomain, firstDomain, true);
  dv.setUint32(SYSCTL_OFF.maxDomains, maxDomains, true);
  dv.setBigUint64(SYSCTL_OFF.buffer, buffer, true);
}

/**
 * The entries the hypervisor wrote. `num_domains` is its answer, bounded here by what we
 * asked for and by the buffer: it is trusted for nothing else.
 */
export function decodeDomainInfoList(req: Uint8Array, entries: Uint8Array, maxDomains: number): DomainInfo[] {
  const rdv = new DataView(req.buffer, req.byteOffset, SYSCTL_SIZE);
  const n = Math.min(rdv.getUint32(SYSCTL_OFF.numDomains, true), maxDomains, Math.floor(entries.length / DOMAININFO_SIZE));
  const out: DomainInfo[] = [];
  for (let i = 0; i < n; i++) out.push(decodeDomainInfo(entries.subarray(i * DOMAININFO_SIZE, (i + 1) * DOMAININFO_SIZE)));
  return out;
}

export function decodeDomainInfo(entry: Uint8Array): DomainInfo {
  const dv = new DataView(entry.buffer, entry.byteOffset, DOMAININFO_SIZE);
  const flags = dv.getUint32(DOMAININFO_OFF.flags, true);
  return {
    domid: dv.getUint16(DOMAININFO_OFF.domain, true),
    dying: (flags & DOMINF_DYING) !== 0,
    shutdown: (flags & DOMINF_SHUTDOWN) !== 0,
    shutdownReason: (flags >>> DOMINF_SHUTDOWN_SHIFT) & DOMINF_SHUTDOWN_MASK,
  };
}
