/**
 * Domain lifecycle (C domain.c): INTRODUCE starts serving a guest's ring, RELEASE ends it and
 * removes what the domain owned, and the special watches @introduceDomain / @releaseDomain
 * tell privileged (or explicitly permitted) watchers about both.
 */
import { DOM0 } from '../../base/index.js';
import { XsError } from '../protocol/index.js';
import { ChangeSet } from './changeset.js';
import { removeSubtree } from './ops-data.js';
import { RingTransport } from './ring.js';
import { deliver } from './watches.js';
import type { Xenstored } from './xenstored.js';

export function introduceDomain(d: Xenstored, domid: number, gfn: number, port: number): void {
  const rec = d.domains.get(domid);
  if (rec?.introduced === true) {
    // "Use XS_INTRODUCE for recreating the xenbus event-channel": same page, new port.
    if (rec.gfn !== gfn) throw new XsError('EINVAL', 'domain already introduced with another page');
    for (const c of d.connections) if (c.domid === domid && c.transport instanceof RingTransport) c.transport.rebind(port);
    rec.port = port;
    return;
  }
  const dom = rec ?? d.domains.ensure(domid);
  const mapper = d.options.ringMapper;
  if (mapper !== undefined) {
    let transport: RingTransport;
    try {
      transport = new RingTransport(mapper(domid, gfn, port), dom.features);
    } catch (e) {
      d.log(`INTRODUCE d${domid}: cannot map the ring: ${String(e)}`);
      throw new XsError('EINVAL', 'cannot map the ring page');
    }
    transport.start(d, d.attach(transport, domid));
  }
  dom.introduced = true;
  dom.shutdown = false;
  dom.gfn = gfn;
  dom.port = port;
  if (!d.domains.isPrivileged(domid)) fireSpecial(d, '@introduceDomain', domid);
}

/**
 * The domain is gone: close its connections, delete the nodes it owns (XSA-419: not handed to
 * dom0, which has no quota), forget its record and quota settings so a domain reusing the id
 * inherits nothing, and fire @releaseDomain.
 */
export function releaseDomain(d: Xenstored, domid: number): void {
  for (const c of [...d.connections]) if (c.domid === domid && c.transport.kind === 'ring') d.transportClosed(c);
  const cs = new ChangeSet(d.db.store, false);
  const owned = [...d.db.store.entries()].filter(([p, n]) => n.perms[0]!.domid === domid && p !== '/').map(([p]) => p);
  owned.sort((a, b) => a.length - b.length);
  for (const p of owned) {
    const node = cs.get(p);
    if (node === undefined) continue; // already gone with an ancestor
    if (p.startsWith('@')) cs.put(p, { ...node, perms: [{ domid: DOM0, access: 'n' }] });
    else removeSubtree(cs, p);
  }
  d.applyChanges(cs);
  d.domains.delete(domid);
  d.quotas.forget(domid);
  fireSpecial(d, '@releaseDomain', domid);
  d.afterBatch();
}

/**
 * The hypervisor reported the domain shut down or crashed (the toolstack's VIRQ_DOM_EXC
 * handler calls this): @releaseDomain fires once, and again only after RESUME.
 */
export function domainShutdown(d: Xenstored, domid: number): void {
  const rec = d.domains.get(domid);
  if (rec === undefined || !rec.introduced || rec.shutdown) return;
  rec.shutdown = true;
  fireSpecial(d, '@releaseDomain', domid);
  d.afterBatch();
}

/**
 * @introduceDomain / @releaseDomain: plain to watches without depth (or depth 0); with the
 * domid appended (`@releaseDomain/<domid>`) to watches with depth ≥ 1 and to watches on
 * exactly that path (WATCHDEPTH, domain.c fire_special_watches). Readers of the special
 * node only: privileged callers, or domains given read by SET_PERMS.
 */
export function fireSpecial(d: Xenstored, name: string, domid: number): void {
  const node = d.db.store.get(name);
  if (node === undefined) return;
  const withDom = `${name}/${domid}`;
  for (const conn of d.connections) {
    if (conn.watches.size === 0 || conn.bad) continue;
    const caller = d.callerOf(conn);
    if (!d.domains.accessFor(caller, node).read) continue;
    const deadline = d.eventDeadline(caller);
    const plain = deliver(conn, { path: name, exact: true }, deadline, (w) => w.path === name && (w.depth ?? 0) === 0);
    const dom = deliver(conn, { path: withDom, exact: true }, deadline, (w) => (w.path === name && (w.depth ?? 0) >= 1) || w.path === withDom);
    if (plain + dom > 0) d.markDirty(conn);
  }
}
