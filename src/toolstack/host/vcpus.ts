/**
 * `xl vcpu-list` and `xl vcpu-pin`. A guest's vCPUs are its worker threads; Domain-0 has one,
 * the host's own thread (xenstored, the console daemon, the bridges and netbacks), whose pin
 * is Xen's `dom0_vcpus_pin`. Disk backend threads are dom0 helpers, not vCPUs, and not listed.
 */
import { XenpvError } from '../../base/index.js';
import { hostCpus, setThreadAffinity, threadAffinity, threadPlace, type ThreadPlace } from '../../hv/sim/affinity.js';
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

/** `dom0Tid`: the task id of the host's own thread (Domain-0's vCPU 0; osThreadId on it). */
export function vcpuRows(hv: Hypervisor, doms: readonly { domid: number; name: string }[], dom0Tid: number | undefined): VcpuRow[] {
  const n = hostCpus();
  const rows: VcpuRow[] = [];
  for (const d of doms) {
    if (d.domid === 0) {
      const place = dom0Tid === undefined ? undefined : threadPlace(dom0Tid);
      const hard = dom0Tid === undefined ? 'all' : formatCpuList(threadAffinity(dom0Tid), n);
      rows.push(row(d, 0, place, false, hard));
      continue;
    }
    const paused = hv.info(d.domid)?.state === 'paused';
    for (const v of hv.vcpuList(d.domid)) {
      const hard = formatCpuList(v.cpus ?? Array.from({ length: n }, (_, i) => i), n);
      rows.push({ ...row(d, v.vcpu, v.place, paused, hard), ...(v.pinError === undefined ? {} : { pinError: v.pinError }) });
    }
  }
  return rows;
}

function row(d: { domid: number; name: string }, vcpu: number, place: ThreadPlace | undefined, paused: boolean, hard: string): VcpuRow {
  const state = paused ? '--p' : place?.running === true ? 'r--' : '-b-';
  return { name: d.name, domid: d.domid, vcpu, cpu: place?.cpu, state, cpuSeconds: place?.cpuSeconds ?? 0, hard, soft: 'all' };
}

/**
 * Pin `vcpu` ("all" or a number) of domain `domid` to `cpulist` (xl's CPULIST; "all" unpins).
 * Throws EINVAL for a bad vCPU or list, EOPNOTSUPP where threads cannot be pinned.
 */
export function vcpuPin(hv: Hypervisor, domid: number, vcpu: string, cpulist: string, dom0Tid: number | undefined): void {
  const n = hostCpus();
  let cpus: number[];
  try {
    cpus = parseCpuList(cpulist, n);
  } catch (err) {
    throw new XenpvError('EINVAL', (err as Error).message, { cpulist });
  }
  const all = cpus.length === n;
  if (domid === 0) {
    if (vcpu !== 'all' && vcpu !== '0') throw new XenpvError('EINVAL', `Domain-0 has one vCPU (0), not ${vcpu}`);
    if (dom0Tid === undefined) throw new XenpvError('EOPNOTSUPP', 'this host has no thread ids to pin (not Linux)');
    setThreadAffinity(dom0Tid, cpus);
    return;
  }
  const count = hv.vcpuList(domid).length;
  const which = vcpu === 'all' ? Array.from({ length: count }, (_, i) => i) : [vcpuNumber(vcpu)];
  for (const v of which) hv.vcpuPin(domid, v, all ? undefined : cpus);
}

function vcpuNumber(text: string): number {
  if (!/^\d{1,4}$/.test(text)) throw new XenpvError('EINVAL', `\`${text}' is not a vCPU number or all`);
  return Number(text);
}
