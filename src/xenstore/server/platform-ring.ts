/**
 * INTRODUCE through a `Platform` (hv/platform.ts): map the guest's xenstore page and bind to
 * its unbound event channel, as C xenstored does with xengnttab + xenevtchn.
 *
 * The page is found through grant entry GNTTAB_RESERVED_XENSTORE (1), "the preferred way to
 * find the page" (xenstore.txt, docs/misc/grant-tables); the builder grants it to dom0 there.
 * The INTRODUCE gfn is recorded (a re-INTRODUCE must name the same one) but not mapped by
 * frame number: our platforms have no foreign-frame mapping, only grants.
 */
import { toDomId, toEvtchnPort, XenpvError, type DomId, type GrantRef } from '../../base/index.js';
import { GNTTAB_RESERVED_XENSTORE } from '../../abi/grant_table.js';
import type { EvtchnBinding, Platform } from '../../hv/platform.js';
import type { RingEndpoint, RingMapper } from './ring.js';

export function platformRingMapper(platform: Platform): RingMapper {
  return (domid, _gfn, port) => {
    const remote = toDomId(domid);
    if (remote === undefined) throw new XenpvError('EINVAL', `bad domain ${domid}`);
    const mapping = platform.grants.map(remote, [GNTTAB_RESERVED_XENSTORE as GrantRef], true);
    try {
      return ringEndpoint(platform, remote, mapping.pages[0]!, port, () => mapping.dispose());
    } catch (e) {
      mapping.dispose();
      throw e;
    }
  };
}

/**
 * A ring endpoint over a page we already have (a guest's mapped page, or dom0's own store
 * page) and an interdomain channel bound to `port` of `remote`; `release` frees the page.
 */
export function ringEndpoint(platform: Platform, remote: DomId, page: Uint8Array, port: number, release: () => void): RingEndpoint {
  const remotePort = toEvtchnPort(port);
  if (remotePort === undefined) throw new XenpvError('EINVAL', `bad port ${port}`);
  let handler: () => void = () => {};
  let binding: EvtchnBinding = platform.events.bindInterdomain(remote, remotePort, () => handler());
  let boundTo: number = remotePort;
  return {
    page,
    notify: () => binding.notify(),
    onEvent: (h) => {
      handler = h;
    },
    rebind: (newPort) => {
      const p = toEvtchnPort(newPort);
      if (p === undefined) return;
      const next = platform.events.bindInterdomain(remote, p, () => handler());
      binding.dispose();
      binding = next;
      boundTo = p;
    },
    dispose: () => {
      binding.dispose();
      release();
    },
    describe: () => `local port ${binding.port} to d${remote} port ${boundTo}`,
  };
}
