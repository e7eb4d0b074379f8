/**
 * The daemon as a real control domain's xenstored (C xenstored's dom0_init + domain_cleanup):
 *
 * - dom0's own ring: the kernel of a dom0 booted without a store domain makes its ring page
 *   and an unbound port and waits for a local xenstored to signal it (Linux's XS_LOCAL). We
 *   serve that page as domain 0, privileged, like any guest ring; it is INTRODUCEd at start.
 * - domain death: the hypervisor raises VIRQ_DOM_EXC when some domain shuts down, crashes or
 *   dies, without saying which; we then ask it for every domain's state and reconcile:
 *   a domain shut down (or crashed) fires @releaseDomain once (until RESUME), a domain dying
 *   or gone is released (its connection closed, its nodes removed, @releaseDomain fired), and
 *   records of domains that were never introduced and no longer exist are forgotten.
 *
 * What the hypervisor reports comes in through `listDomains` (the `xen` platform's
 * getdomaininfolist, or the sim's domain list in tests), so this file needs no native code.
 */
import { DOM0, type Disposable } from '../../base/index.js';
import { VIRQ } from '../../abi/xen.js';
import type { Platform } from '../../hv/platform.js';
import { platformRingMapper, ringEndpoint } from './platform-ring.js';
import type { RingMapper } from './ring.js';
import type { Xenstored } from './xenstored.js';

/** One domain as the hypervisor reports it. */
export interface DomainState {
  readonly domid: number;
  /** Being destroyed. */
  readonly dying: boolean;
  /** Shut down by the guest, or crashed. */
  readonly shutdown: boolean;
}

/** dom0's store ring as its kernel offers it (hv/xen/local-store.ts). */
export interface LocalRing {
  readonly page: Uint8Array;
  readonly port: number;
  dispose(): void;
}

export interface DomainChanges {
  readonly shutdown: number[];
  readonly released: number[];
  readonly forgotten: number[];
}

/** Guests through their grant 1 (platformRingMapper); domain 0 through its local ring. */
export function dom0RingMapper(platform: Platform, local: LocalRing | undefined): RingMapper {
  const guests = platformRingMapper(platform);
  return (domid, gfn, port) => {
    if (domid !== DOM0 || local === undefined) return guests(domid, gfn, port);
    const ep = ringEndpoint(platform, DOM0, local.page, port, () => local.dispose());
    // dom0's kernel probes its xenbus devices on the first event from its store (Linux's
    // xenbus_probe_thread waits for "any trigger of xb_waitq"); an empty ring at our start
    // would otherwise leave it waiting. So signal once as soon as the transport listens, as
    // C xenstored's dom0_init does. A spurious event only makes the kernel re-check its ring.
    return {
      ...ep,
      onEvent: (h) => {
        ep.onEvent(h);
        queueMicrotask(() => ep.notify());
      },
    };
  };
}

/** Bring the store's domain records in line with the hypervisor's list (C check_domain). */
export function reconcileDomains(d: Xenstored, states: readonly DomainState[]): DomainChanges {
  const byId = new Map(states.map((s) => [s.domid, s]));
  const changes: DomainChanges = { shutdown: [], released: [], forgotten: [] };
  for (const rec of [...d.domains.all()]) {
    if (d.domains.isPrivileged(rec.domid)) continue;
    const now = byId.get(rec.domid);
    if (!rec.introduced) {
      // Named by a permission or a quota, never a guest of ours: forget it once it is gone,
      // so that a new domain reusing the id is a stranger to old permissions (XSA-322).
      if (now === undefined) {
        d.domains.delete(rec.domid);
        d.quotas.forget(rec.domid);
        changes.forgotten.push(rec.domid);
      }
      continue;
    }
    if (now !== undefined && !now.dying) {
      if (now.shutdown && !rec.shutdown) {
        d.domainShutdown(rec.domid);
        changes.shutdown.push(rec.domid);
      }
      continue;
    }
    d.releaseDomain(rec.domid);
    changes.released.push(rec.domid);
  }
  return changes;
}

export interface Dom0Options {
  readonly platform: Platform;
  /** dom0's own ring: INTRODUCEd as domain 0 (the daemon's ringMapper must be dom0RingMapper). */
  readonly localRing?: LocalRing;
  /** The hypervisor's domain list; throws when it cannot be had. */
  readonly listDomains: () => readonly DomainState[];
  /** Each reconcile that changed something, or failed (diagnostics). */
  readonly onChanges?: (changes: DomainChanges) => void;
}

/** Serve dom0's ring and follow domain deaths until disposed. */
export function serveDom0(d: Xenstored, opts: Dom0Options): Disposable {
  const check = (): void => {
    let states: readonly DomainState[];
    try {
      states = opts.listDomains();
    } catch (e) {
      // Keep every domain as it is: releasing on a failed query would cut live guests off.
      d.log(`domain list failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const changes = reconcileDomains(d, states);
    if (changes.shutdown.length + changes.released.length + changes.forgotten.length > 0) opts.onChanges?.(changes);
  };
  const virq = opts.platform.events.bindVirq(VIRQ.VIRQ_DOM_EXC, check);
  try {
    if (opts.localRing !== undefined) d.introduceDomain(DOM0, 0, opts.localRing.port);
  } catch (e) {
    virq.dispose();
    throw e;
  }
  // Domains that changed before we were listening (a restarted daemon's restored records).
  check();
  return { dispose: () => virq.dispose() };
}
