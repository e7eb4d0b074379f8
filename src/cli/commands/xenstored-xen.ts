/**
 * `xenpv xenstored --xen`: the store as a real Xen control domain's xenstored, in place of
 * C xenstored. It serves dom0's own ring (the kernel's local store page and port), guests'
 * rings on INTRODUCE (grant 1 + their store port, on the `xen` platform), the unix socket of
 * libxenstore's clients (xl, xenconsoled, xen-init-dom0, xenstore-*), and follows domain
 * deaths through VIRQ_DOM_EXC and the hypervisor's domain list (xenstore/server/dom0.ts).
 */
import { XenpvError } from '../../base/index.js';
import { loadXenPlatform, openLocalStoreRing, XenHypercalls, type XenPlatform } from '../../hv/xen/index.js';
import {
  dom0RingMapper,
  serveDom0,
  startXenstored,
  type DomainChanges,
  type RunningXenstored,
  type StartOptions,
} from '../../xenstore/server/index.js';

export interface XenDom0Store {
  readonly xs: RunningXenstored;
  /** Where dom0's ring came from (diagnostics). */
  readonly localSource: string;
  close(): Promise<void>;
}

/** Open the platform, dom0's ring and the hypercall interface, then start and wire the daemon. */
export async function startXenDom0Store(opts: StartOptions, log: (m: string) => void): Promise<XenDom0Store> {
  const r = await loadXenPlatform({ domid: 0, onError: (err, port) => log(`event handler error on port ${port}: ${String(err)}`) });
  if (!r.ok) throw new XenpvError('ENODEV', `the xen platform is unavailable: ${r.reason}`);
  const platform: XenPlatform = r.platform;
  let hypercalls: XenHypercalls | undefined;
  let local: ReturnType<typeof openLocalStoreRing> | undefined;
  try {
    hypercalls = XenHypercalls.open(platform.native);
    local = openLocalStoreRing(platform.native);
    const hc = hypercalls;
    // Startup steps in the log: a daemon that hangs while dom0 boots says where.
    log(`dom0's store ring: port ${local.port} (${local.source}); hypervisor lists ${hc.listDomains().length} domain(s)`);
    // One hypercall per command at most, a refused one included: a guest's SET_PERMS may name
    // hundreds of domain ids, and the answer is only kept until the current command's
    // synchronous work is done (a domain created in between is seen by the next command).
    let listed: Set<number> | 'unknown' | undefined;
    const exists = (domid: number): boolean => {
      if (listed === undefined) {
        try {
          listed = new Set(hc.listDomains().map((d) => d.domid));
        } catch {
          listed = 'unknown';
        }
        queueMicrotask(() => (listed = undefined));
      }
      // Cannot ask: do not mark a permission ignored on a guess.
      return listed === 'unknown' || listed.has(domid);
    };
    const xs = await startXenstored({ ...opts, ringMapper: dom0RingMapper(platform, local), domainExists: exists });
    let serving;
    try {
      serving = serveDom0(xs.daemon, {
        platform,
        localRing: local,
        listDomains: () => hc.listDomains(),
        onChanges: (c: DomainChanges) => log(`domains: shutdown [${c.shutdown.join(' ')}] released [${c.released.join(' ')}] forgotten [${c.forgotten.join(' ')}]`),
      });
    } catch (e) {
      await xs.close();
      throw e;
    }
    return {
      xs,
      localSource: local.source,
      async close() {
        serving.dispose();
        await xs.close();
        hc.close();
        await platform.close();
      },
    };
  } catch (e) {
    local?.dispose();
    hypercalls?.close();
    await platform.close();
    throw e;
  }
}
