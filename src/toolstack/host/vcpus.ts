/**
 * `xl vcpu-list` and `xl vcpu-pin` over the hypervisor's vCPUs. A guest's vCPUs are its worker
 * threads; Domain-0's one vCPU is the host's own thread (xenstored, the console daemon, the
 * bridges and netbacks), whose pin is Xen's `dom0_vcpus_pin`. Disk backend threads are dom0
 * helpers, not vCPUs, and not listed.
 */
import { XenpvError } from '../../base/index.js';
import { allCpus, hostCpus } from '../../hv/sim/affinity.js';
import type { Hypervisor } from '../../hv/sim/hypervisor.js';
import { formatCpuList, parseCpuList } from '../config/cpulist.js';

export interface VcpuRow {
  readonly name: string;
  readonly domid: number;
  readonly vcpu: number;
  /** The CPU it last ran on; undefined before its thread is up. */
  readonly cpu: number | undefined;
  /** xl's three letters: r-- running, -b- blocked, --p paused. */
  readonly state: string;
  readonly cpuSeconds: number;
  /** Hard affinity as xl prints it ("all", "1", "0-2,5"), and soft (always "all" here). */
  readonly hard: string;
  readonly soft: string;
  /** Why the pin the config asked for could not be made. */
  readonly pinError?: string;
}

export function vcpuRows(hv: Hypervisor, doms: readonly { domid: number; name: string }[]): VcpuRow[] {
  const n = hostCpus();
  return doms.flatMap((d) => {
    const paused = hv.info(d.domid)?.state === 'paused';
    return hv.vcpuList(d.domid).map((v): VcpuRow => ({
      name: d.name,
      domid: d.domid,
      vcpu: v.vcpu,
      cpu: v.place?.cpu,
      state: paused ? '--p' : v.place?.running === true ? 'r--' : '-b-',
      cpuSeconds: v.place?.cpuSeconds ?? 0,
      hard: formatCpuList(v.cpus ?? allCpus(), n),
      soft: 'all',
      ...(v.pinError === undefined ? {} : { pinError: v.pinError }),
    }));
  });
}

/**
 * Pin `vcpu` ("all" or a number) of domain `domid` to `cpulist` (xl's CPULIST; "all" unpins).
 * Throws EINVAL for a bad vCPU or list, EOPNOTSUPP where threads cannot be pinned.
 */
export function vcpuPin(hv: Hypervisor, domid: number, vcpu: string, cpulist: string): void {
  const n = hostCpus();
  let cpus: number[];
  try {
    cpus = parseCpuList(cpulist, n);
  } catch (err) {
    throw new XenpvError('EINVAL', (err as Error).message, { cpulist });
  }
  const which = vcpu === 'all' ? hv.vcpuList(domid).map((v) => v.vcpu) : [vcpuNumber(vcpu)];
  for (const v of which) hv.vcpuPin(domid, v, cpus.length === n ? undefined : cpus);
}

function vcpuNumber(text: string): number {
  if (!/^\d{1,4}$/.test(text)) throw new XenpvError('EINVAL', `\`${text}' is not a vCPU number or all`);
  return Number(text);
}
