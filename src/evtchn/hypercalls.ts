/**
 * EVTCHNOP_* as the hypervisor performs them, callable from any thread. Port-table changes
 * hold the domain's EVT_LOCK (both domains' locks, lowest domid first, when a change links
 * or unlinks two ports, as Xen's double_evtchn_lock); `send` reads the port word lock-free.
 * Errors are XenpvErrors with Xen's errno names (EINVAL, ESRCH, ENOSPC, EEXIST).
 */
import {
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_virq,
} from '../abi/event_channel.js';
import { NR_VIRQS } from '../abi/xen.js';
import { DOMID_SELF, XenpvError, toDomId } from '../base/index.js';
import { DW, lockWord, unlockWord, type DomainTable } from '../memory/index.js';
import {
  EvtchnView,
  L_OWNER,
  LISTENER_WORDS,
  MAX_LISTENERS,
  NO_LISTENER,
  packPort,
  portRemoteDom,
  portRemotePort,
  portState,
} from './layout.js';

export class EvtchnHypercalls {
  private readonly views = new Map<number, EvtchnView>();

  constructor(
    readonly table: DomainTable,
    readonly tid: number,
  ) {}

  view(domid: number): EvtchnView {
    const gen = this.table.get(domid, DW.GEN);
    let v = this.views.get(domid);
    if (v === undefined || v.gen !== gen) {
      v = new EvtchnView(this.table, domid, gen);
      this.views.set(domid, v);
    }
    return v;
  }

  /** Run `fn` holding the EVT_LOCK of each domain in `doms` (deduplicated, ascending). */
  locked<T>(doms: readonly number[], fn: () => T): T {
    const order = [...new Set(doms)].sort((a, b) => a - b);
    for (const d of order) lockWord(this.table.words, this.table.at(d, DW.EVT_LOCK), this.tid);
    try {
      return fn();
    } finally {
      for (const d of order.reverse()) unlockWord(this.table.words, this.table.at(d, DW.EVT_LOCK));
    }
  }

  /** Lowest free port of `v`; caller holds its lock. Fresh ports are neither pending nor masked. */
  private allocPort(v: EvtchnView): number {
    for (let p = 1; p < v.maxPorts; p++) {
      if (v.port(p) === EVTCHNSTAT_closed) {
        v.testAndClearPending(p);
        v.testAndClearMask(p);
        return p;
      }
    }
    throw new XenpvError('ENOSPC', `domain ${v.domid}: no free event channel ports`, { max: v.maxPorts });
  }

  /** EVTCHNOP_alloc_unbound: a port of `dom` that `remote` may bind. */
  allocUnbound(dom: number, remote: number, listener = NO_LISTENER): number {
    const r = remote === DOMID_SELF ? dom : toDomId(remote);
    if (r === undefined) throw new XenpvError('EINVAL', `bad remote domid ${remote}`, { remote });
    const v = this.view(dom);
    return this.locked([dom], () => {
      const p = this.allocPort(v);
      v.setListener(p, listener);
      v.setPort(p, packPort(EVTCHNSTAT_unbound, 0, r));
      return p;
    });
  }

  /**
   * EVTCHNOP_bind_interdomain: only to a port of `remote` that is unbound and names `dom`
   * ("EINVAL if the remote port is not unbound or not allocated for us").
   */
  bindInterdomain(dom: number, remote: number, remotePort: number, listener = NO_LISTENER): number {
    if (toDomId(remote) === undefined) throw new XenpvError('EINVAL', `bad remote domid ${remote}`, { remote });
    const rd = this.table.require(remote, 'ESRCH');
    try {
      const lv = this.view(dom);
      const rv = this.view(remote);
      if (!Number.isInteger(remotePort) || remotePort <= 0 || remotePort >= rv.maxPorts) {
        throw new XenpvError('EINVAL', `bad remote port ${remotePort}`, { remote, remotePort });
      }
      const lp = this.locked([dom, remote], () => {
        const rw = rv.port(remotePort);
        if (portState(rw) !== EVTCHNSTAT_unbound || portRemoteDom(rw) !== dom) {
          throw new XenpvError('EINVAL', `port ${remotePort} of dom${remote} is not unbound for dom${dom}`, {
            remote,
            remotePort,
          });
        }
        const p = this.allocPort(lv);
        lv.setListener(p, listener);
        lv.setPort(p, packPort(EVTCHNSTAT_interdomain, remotePort, remote));
        rv.setPort(remotePort, packPort(EVTCHNSTAT_interdomain, p, dom));
        return p;
      });
      // Xen: "We may have lost notifications on the remote unbound port. Fix that up here by
      // conservatively always setting a notification on the local port."
      lv.setPending(lp);
      return lp;
    } finally {
      rd.release();
    }
  }

  /** EVTCHNOP_bind_virq on vCPU 0. */
  bindVirq(dom: number, virq: number, listener = NO_LISTENER): number {
    if (!Number.isInteger(virq) || virq < 0 || virq >= NR_VIRQS) {
      throw new XenpvError('EINVAL', `bad VIRQ ${virq}`, { virq });
    }
    const v = this.view(dom);
    return this.locked([dom], () => {
      if (Atomics.load(v.virqs, virq) !== 0) throw new XenpvError('EEXIST', `VIRQ ${virq} already bound`, { virq });
      const p = this.allocPort(v);
      v.setListener(p, listener);
      v.setPort(p, packPort(EVTCHNSTAT_virq, virq, 0));
      Atomics.store(v.virqs, virq, p);
      return p;
    });
  }

  /** EVTCHNOP_send from `port` of `dom`. Sending on an unbound port is dropped, as in Xen. */
  send(dom: number, port: number): void {
    this.sendFrom(this.view(dom), port);
  }

  /** `send` with the sender's view already in hand (the hot path of a bound port). */
  sendFrom(v: EvtchnView, port: number): void {
    if (!Number.isInteger(port) || port <= 0 || port >= v.maxPorts) {
      throw new XenpvError('EINVAL', `bad port ${port}`, { port });
    }
    const w = v.port(port);
    const state = portState(w);
    if (state === EVTCHNSTAT_unbound) return;
    if (state !== EVTCHNSTAT_interdomain) throw new XenpvError('EINVAL', `port ${port} cannot send`, { port, state });
    const remote = portRemoteDom(w);
    const rport = portRemotePort(w);
    const gen = this.table.enter(remote);
    if (gen < 0) return;
    try {
      let rv = this.views.get(remote);
      if (rv === undefined || rv.gen !== gen) rv = this.view(remote);
      // The link is checked from the far side too, so a send racing a close cannot hit a
      // port that was already handed to someone else.
      if (rv.port(rport) === packPort(EVTCHNSTAT_interdomain, port, v.domid)) rv.setPending(rport);
    } finally {
      this.table.exit(remote);
    }
  }

  /** Deliver a global VIRQ (VIRQ_DOM_EXC ...) to the domain that handles it: dom0. */
  sendGlobalVirq(virq: number, handler = 0): void {
    const rd = this.table.acquire(handler);
    if (rd === undefined) return;
    try {
      const v = this.view(handler);
      const p = Atomics.load(v.virqs, virq);
      if (p !== 0) v.setPending(p);
    } finally {
      rd.release();
    }
  }

  /** EVTCHNOP_close. The remote end of an interdomain channel becomes unbound, naming us. */
  close(dom: number, port: number): void {
    const v = this.view(dom);
    if (!Number.isInteger(port) || port <= 0 || port >= v.maxPorts) {
      throw new XenpvError('EINVAL', `bad port ${port}`, { port });
    }
    for (;;) {
      const w = v.port(port);
      const doms = portState(w) === EVTCHNSTAT_interdomain ? [dom, portRemoteDom(w)] : [dom];
      const done = this.locked(doms, () => {
        if (v.port(port) !== w) return false; // changed before we held both locks: retry
        this.closeLocked(v, port, w);
        return true;
      });
      if (done) return;
    }
  }

  /** Close `port` (word `w`) of `v`; caller holds the locks of `v` and of the remote end. */
  private closeLocked(v: EvtchnView, port: number, w: number): void {
    const state = portState(w);
    if (state === EVTCHNSTAT_closed || state > EVTCHNSTAT_virq) {
      throw new XenpvError('EINVAL', `port ${port} is not open`, { port, state });
    }
    if (state === EVTCHNSTAT_virq) Atomics.compareExchange(v.virqs, portRemotePort(w), port, 0);
    if (state === EVTCHNSTAT_interdomain) {
      const remote = portRemoteDom(w);
      const rv = this.view(remote);
      const rport = portRemotePort(w);
      if (rv.port(rport) === packPort(EVTCHNSTAT_interdomain, port, v.domid)) {
        rv.setPort(rport, packPort(EVTCHNSTAT_unbound, 0, v.domid));
      }
    }
    v.setPort(port, EVTCHNSTAT_closed);
    v.setListener(port, NO_LISTENER);
    v.testAndClearPending(port);
  }

  /**
   * Close every open port of `dom` (domain destruction), or only those delivered to
   * `listener` (a dead thread's). Returns how many were open.
   */
  closeAll(dom: number, listener?: number): number {
    const v = this.view(dom);
    let n = 0;
    for (let p = 1; p < v.maxPorts; p++) {
      const s = portState(v.port(p));
      if (s === EVTCHNSTAT_closed || (listener !== undefined && v.listenerOf(p) !== listener)) continue;
      this.close(dom, p);
      n++;
    }
    return n;
  }

  /**
   * Host cleanup after thread `tid` of `dom` died without disposing its platform: close the
   * ports it listened on and free its listener slot. Returns how many ports were closed.
   */
  releaseListenerOf(dom: number, tid: number): number {
    const v = this.view(dom);
    let n = 0;
    for (let l = 0; l < MAX_LISTENERS; l++) {
      const owner = l * LISTENER_WORDS + L_OWNER;
      if (Atomics.load(v.listeners, owner) !== tid) continue;
      n += this.closeAll(dom, l);
      Atomics.store(v.listeners, owner, 0);
    }
    return n;
  }

  /** EVTCHNOP_unmask: clear the mask; if the port is pending, raise it now. */
  unmask(dom: number, port: number): void {
    const v = this.view(dom);
    if (!Number.isInteger(port) || port <= 0 || port >= v.maxPorts) {
      throw new XenpvError('EINVAL', `bad port ${port}`, { port });
    }
    if (v.testAndClearMask(port) && v.isPending(port)) v.raise(port);
  }

  /** EVTCHNOP_status, reduced: the state and its remote (domid, port) or VIRQ. */
  status(dom: number, port: number): { state: number; remoteDom: number; remotePort: number } {
    const w = this.view(dom).port(port);
    return { state: portState(w), remoteDom: portRemoteDom(w), remotePort: portRemotePort(w) };
  }
}
