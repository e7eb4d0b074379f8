/**
 * What the host reports: xl list rows, xl info fields, and its own accounting (what a test
 * checks after every domain is gone: no domain, no zombie frames, no open dom0 port, no
 * mapping, no node left in the store beyond dom0's own).
 */
import { cpus, totalmem, freemem, release, hostname, arch } from 'node:os';
import { LISTENER_WORDS, L_OWNER, MAX_LISTENERS, NR_PORTS, PORT_WORDS, STATE_RESERVED } from '../../evtchn/index.js';
import { DW } from '../../memory/index.js';
import type { DomainInfo } from '../../hv/sim/hypervisor.js';
import type { Domain } from '../domain/domain.js';
import type { Host } from './host.js';

export interface DomainRow {
  readonly name: string;
  readonly domid: number;
  readonly memMiB: number;
  readonly vcpus: number;
  /** xl's six state letters: r b p s <reason> d. */
  readonly state: string;
  readonly cpuSeconds: number;
  readonly uuid?: string;
  readonly config?: unknown;
}

/** The reason letter of xl list's fifth column ("-rscwS" by shutdown code). */
const REASON_LETTERS = '-rscwS';

/** `blocked`: a running domain whose vCPUs were mostly idle since the last sample ('b', not 'r'). */
export function stateLetters(info: DomainInfo, blocked = false): string {
  const r = info.state === 'running' && !blocked ? 'r' : '-';
  const b = info.state === 'running' && blocked ? 'b' : '-';
  const p = info.state === 'paused' ? 'p' : '-';
  const s = info.state === 'shutdown' ? 's' : '-';
  const reason = info.state === 'shutdown' ? (REASON_LETTERS[info.shutdownCode ?? 0] ?? '-') : '-';
  const d = info.state === 'dying' ? 'd' : '-';
  return `${r}${b}${p}${s}${reason}${d}`;
}

export function domainRow(info: DomainInfo, cpuSeconds: number, d?: Domain, blocked = false): DomainRow {
  return {
    name: info.name,
    domid: info.domid,
    memMiB: Math.floor((info.memoryPages * 4) / 1024),
    vcpus: info.vcpus,
    state: stateLetters(info, blocked),
    cpuSeconds,
    ...(d === undefined ? {} : { uuid: d.config.uuid, config: summary(d) }),
  };
}

function summary(d: Domain): unknown {
  const c = d.config;
  return {
    name: c.name, type: c.type, uuid: c.uuid, memory: c.memoryMiB, maxmem: c.maxmemMiB, vcpus: c.vcpus,
    kernel: c.kernel, cmdline: c.cmdline ?? '', on_poweroff: c.onPoweroff, on_reboot: c.onReboot, on_crash: c.onCrash,
    disks: [...d.disks.values()].map((x) => ({ vdev: x.spec.vdev, target: x.target, format: x.spec.format, readwrite: x.spec.readwrite })),
    nics: [...d.nics.values()].map((n) => ({ devid: n.vif.devid, mac: n.vif.mac, bridge: n.vif.bridge, vifname: n.name })),
  };
}

export type HostInfo = ReadonlyArray<readonly [string, string]>;

export function hostInfo(host: Host): HostInfo {
  const c = cpus();
  const mib = (b: number): string => String(Math.floor(b / 2 ** 20));
  const machine = (host.options.maxMachineBytes ?? 2 ** 31);
  const used = host.hv.framesInUse * 4096;
  return [
    ['host', hostname()],
    ['release', release()],
    ['version', process.version],
    ['machine', arch()],
    ['nr_cpus', String(c.length)],
    ['max_cpu_id', String(c.length - 1)],
    ['nr_nodes', '1'],
    ['cores_per_socket', String(c.length)],
    ['threads_per_core', '1'],
    ['cpu_mhz', String(c[0]?.speed ?? 0)],
    ['hw_caps', '00000000:00000000:00000000:00000000:00000000:00000000:00000000:00000000'],
    ['virt_caps', 'pv (emulated: xenpv sim)'],
    ['total_memory', mib(machine)],
    ['free_memory', mib(machine - used)],
    ['sharing_freed_memory', '0'],
    ['sharing_used_memory', '0'],
    ['outstanding_claims', '0'],
    ['free_cpus', '0'],
    ['xen_major', '4'],
    ['xen_minor', '17'],
    ['xen_extra', '-xenpv'],
    ['xen_version', '4.17-xenpv'],
    ['xen_caps', 'xen-3.0-x86_64 (xenpv sim: PV only)'],
    ['xen_scheduler', 'node-worker-threads'],
    ['xen_pagesize', '4096'],
    ['platform_params', 'virt_start=0x0'],
    ['xen_changeset', 'xenpv'],
    ['xen_commandline', ''],
    ['cc_compiler', `node ${process.version}`],
    ['cc_compile_by', 'xenpv'],
    ['cc_compile_domain', ''],
    ['cc_compile_date', ''],
    ['build_id', ''],
    ['xend_config_format', '4'],
    ['host_total_memory', mib(totalmem())],
    ['host_free_memory', mib(freemem())],
  ];
}

export interface HostAccounting {
  readonly domains: number;
  readonly zombies: number;
  /** Machine frames beyond dom0's own. */
  readonly guestFrames: number;
  readonly dom0Ports: number;
  readonly dom0Listeners: number;
  readonly dom0Maptrack: number;
  readonly foreignPins: number;
  readonly storeConnections: number;
  readonly storeDomains: number;
  /** Store paths a guest left behind (/local/domain/<d>, /vm/*, /libxl/*, dom0's backend dirs). */
  readonly storeLeftovers: readonly string[];
  readonly consoles: number;
  readonly storeAccounting: readonly string[];
  /** Watches and open transactions held by dom0's store connections (the host's own baseline stays). */
  readonly dom0Watches: number;
  readonly dom0Transactions: number;
}

export async function accounting(host: Host, dom0Frames: number): Promise<HostAccounting> {
  const t = host.hv.table;
  const ports = t.machine.words(t.get(0, DW.R_PORTS), (NR_PORTS * PORT_WORDS * 4) / 4096);
  let open = 0;
  for (let p = 1; p < NR_PORTS; p++) {
    const s = Atomics.load(ports, p * PORT_WORDS) & 0xf;
    if (s !== 0 && s !== STATE_RESERVED) open++;
  }
  const listeners = t.machine.words(t.get(0, DW.R_LISTENERS), 1);
  let claimed = 0;
  for (let l = 0; l < MAX_LISTENERS; l++) if (Atomics.load(listeners, l * LISTENER_WORDS + L_OWNER) !== 0) claimed++;
  const ls = async (p: string): Promise<string[]> => (await host.store.directory(p).catch(() => [] as string[])).map((n) => `${p}/${n}`);
  const leftovers = [
    ...(await ls('/local/domain')).filter((p) => !p.endsWith('/0')),
    ...(await ls('/vm')),
    ...(await ls('/libxl')),
    ...(await ls('/local/domain/0/backend/vbd')),
    ...(await ls('/local/domain/0/backend/vif')),
  ];
  return {
    domains: host.domains.size,
    zombies: host.hv.zombies.length,
    guestFrames: host.hv.framesInUse - dom0Frames,
    dom0Ports: open,
    dom0Listeners: claimed,
    dom0Maptrack: t.get(0, DW.MAPTRACK_USED),
    foreignPins: t.get(0, DW.FOREIGN_PINS),
    storeConnections: host.xs.daemon.connections.size,
    storeDomains: [...host.xs.daemon.domains.all()].filter((r) => r.introduced).length,
    storeLeftovers: leftovers,
    consoles: host.consoles.list().length,
    storeAccounting: host.xs.daemon.checkAccounting(),
    dom0Watches: host.xs.daemon.watchUsage(0).count,
    dom0Transactions: host.xs.daemon.transactionCount(0),
  };
}
