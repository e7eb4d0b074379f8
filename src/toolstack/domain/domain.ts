/**
 * Domain creation and destruction as libxl does them (libxl_create.c, libxl_domain.c):
 *
 * create: build the domain paused (memory, vCPUs, start info: store and console pages and
 * ports), write its xenstore tree (tree.ts), plug its disks and NICs (devices.ts; a missing
 * image fails there), INTRODUCE it to the store, then unpause unless asked to stay paused.
 * Any failure undoes everything done so far (destroyDomain).
 *
 * destroy: stop the vCPUs (the hypervisor releases the guest's own mappings and ports),
 * stop the backends (they unmap the guest's pages), RELEASE it from the store (xenstored
 * unmaps its ring, the console daemon its console), remove its nodes. The frames go back to
 * the machine once the last mapping is gone.
 */
import { XenpvError, type DomId } from '../../base/index.js';
import type { Hypervisor } from '../../hv/sim/hypervisor.js';
import type { DomainConfig } from '../config/index.js';
import { plugDisk, plugNic, stopBackend, type Dom0Services, type DiskDevice, type NicDevice } from './devices.js';
import { removeDomainTree, writeDomainTree } from './tree.js';
import { isAbsolute, resolve } from 'node:path';

export interface Domain {
  readonly domid: DomId;
  readonly config: DomainConfig;
  /** Where relative disk targets are resolved (the config file's directory). */
  readonly baseDir: string;
  readonly createdAt: number;
  readonly disks: Map<number, DiskDevice>;
  readonly nics: Map<number, NicDevice>;
  /** Set once the shutdown action for its current shutdown has been taken. */
  handled: boolean;
}

export interface CreateOptions {
  readonly paused?: boolean;
  readonly baseDir?: string;
}

export interface DomainEnv extends Dom0Services {
  readonly hv: Hypervisor;
  readonly kernelFallback: string;
}

const PAGES_PER_MIB = 256;

export function diskTarget(baseDir: string, target: string | undefined): string {
  if (target === undefined || target === '') throw new XenpvError('EINVAL', 'disk has no target');
  return isAbsolute(target) ? target : resolve(baseDir, target);
}

/** The guest program: `builtin:<name>`, or a module path (relative: beside the config file). */
function kernelOf(cfg: DomainConfig, fallback: string, baseDir: string): string {
  if (cfg.kernel === undefined) return fallback;
  if (cfg.kernel.kind === 'builtin') return `builtin:${cfg.kernel.program}`;
  const p = cfg.kernel.path;
  return p.startsWith('file:') || isAbsolute(p) ? p : resolve(baseDir, p);
}

export async function createDomain(env: DomainEnv, cfg: DomainConfig, opts: CreateOptions = {}): Promise<Domain> {
  if (cfg.type !== 'pv') throw new XenpvError('EOPNOTSUPP', `type "${cfg.type}" guests are not supported yet (only "pv")`);
  const baseDir = opts.baseDir ?? process.cwd();
  const domid = env.hv.createDomain({
    name: cfg.name,
    memoryPages: cfg.memoryMiB * PAGES_PER_MIB,
    vcpus: cfg.vcpus,
    ...(cfg.cpus.length === 0 ? {} : { cpus: cfg.cpus }),
    kernel: kernelOf(cfg, env.kernelFallback, baseDir),
    extra: cfg.cmdline ?? '',
    paused: true,
    maxGrantFrames: Math.min(cfg.maxGrantFrames, 4096),
    maxEventChannels: Math.min(cfg.maxEventChannels, 4096),
  });
  const d: Domain = { domid, config: cfg, baseDir, createdAt: Date.now(), disks: new Map(), nics: new Map(), handled: false };
  try {
    await writeDomainTree(env.store, {
      domid, name: cfg.name, uuid: cfg.uuid, type: cfg.type,
      memoryKiB: cfg.memoryMiB * 1024, maxmemKiB: cfg.maxmemMiB * 1024,
      vcpus: cfg.vcpus, maxvcpus: cfg.maxvcpus, startInfo: env.hv.startInfo(domid)!,
    });
    for (const disk of cfg.disks) {
      d.disks.set(disk.vdev.devid, await plugDisk(env, domid, disk.vdev.devid, disk.spec, diskTarget(baseDir, disk.spec.target)));
    }
    for (const vif of cfg.vifs) d.nics.set(vif.devid, await plugNic(env, domid, vif));
    const si = env.hv.startInfo(domid)!;
    await env.store.introduce(domid, si.storeFrame, si.storePort);
    if (opts.paused !== true) env.hv.unpause(domid);
    return d;
  } catch (err) {
    await destroyDomain(env, d).catch(() => undefined);
    throw err;
  }
}

export async function destroyDomain(env: DomainEnv, d: Domain): Promise<void> {
  if (env.hv.info(d.domid) !== undefined) await env.hv.destroy(d.domid);
  for (const dev of [...d.disks.values(), ...d.nics.values()]) await stopBackend(dev);
  d.disks.clear();
  d.nics.clear();
  if (await env.store.isDomainIntroduced(d.domid).catch(() => false)) await env.store.release(d.domid);
  await removeDomainTree(env.store, d.domid, d.config.uuid);
  env.hv.reap();
}
