/**
 * The in-process platform (`Platform` of hv/platform.ts) for one domain on one thread.
 *
 * Any thread can build one from the structured-cloneable `HvHandle` (machine memory and
 * domain table, both SharedArrayBuffers): the host's main thread for dom0, a dom0 backend
 * worker, a guest vCPU worker. Hypercalls then run synchronously on the calling thread.
 */
import { SHUTDOWN_MAX, VIRQ_DOM_EXC } from '../../abi/xen.js';
import { XenpvError, waitAsyncWhileEqual, type Disposable, type DomId } from '../../base/index.js';
import { EvtchnView, SimEventOps, type EvtchnHypercalls, type ListenerOptions } from '../../evtchn/index.js';
import { SimGrantOps } from '../../grant/index.js';
import { DomainState, DomainTable, DW, SimDomainMemory, type HvHandle } from '../../memory/index.js';
import type { Platform, StoreTransport } from '../platform.js';
import { readStartInfo, type StartInfo } from './start-info.js';

/** What a worker needs to build a `SimPlatform`: post it with `postMessage`/`workerData`. */
export interface PlatformHandle {
  readonly hv: HvHandle;
  readonly domid: number;
  /** Thread id for lock ownership; given by the host to the vCPU workers it may terminate. */
  readonly tid?: number;
  /** The thread's reference slot (DomainTable.bindRefSlot), with `tid` from the host. */
  readonly refSlot?: number;
}

let threadTable: DomainTable | undefined;
let threadTid: number | undefined;

/** This thread's DomainTable and lock-owner id (one per thread and hypervisor). */
function threadContext(hv: HvHandle, tid?: number, refSlot?: number): { table: DomainTable; tid: number } {
  if (threadTable === undefined || threadTable.handle.table !== hv.table) {
    threadTable = new DomainTable(hv);
    threadTid = undefined;
  }
  if (refSlot !== undefined) threadTable.bindRefSlot(refSlot);
  if (tid !== undefined) threadTid = tid;
  threadTid ??= threadTable.newTid();
  return { table: threadTable, tid: threadTid };
}

export class SimPlatform implements Platform, Disposable {
  readonly kind = 'sim' as const;
  readonly memory: SimDomainMemory;
  readonly grants: SimGrantOps;
  readonly events: SimEventOps;
  readonly table: DomainTable;
  readonly tid: number;
  private disposed = false;

  private constructor(
    table: DomainTable,
    readonly domid: DomId,
    tid: number,
    listener: ListenerOptions,
  ) {
    this.table = table;
    this.tid = tid;
    this.memory = new SimDomainMemory(table, domid);
    this.grants = new SimGrantOps(table, domid, tid);
    this.events = new SimEventOps(table, domid, tid, { blocked: () => this.paused, ...listener });
  }

  static attach(handle: PlatformHandle, listener: ListenerOptions = {}): SimPlatform {
    const { table, tid } = threadContext(handle.hv, handle.tid, handle.refSlot);
    const s = table.state(handle.domid);
    if (s !== DomainState.ALIVE && s !== DomainState.SHUTDOWN) {
      throw new XenpvError('ESRCH', `no such domain ${handle.domid}`, { domid: handle.domid });
    }
    return new SimPlatform(table, handle.domid as DomId, tid, listener);
  }

  get handle(): PlatformHandle {
    return { hv: this.table.handle, domid: this.domid };
  }

  /** The toolstack's start info: xenstore and console ring frames and ports, if set up. */
  get startInfo(): StartInfo | undefined {
    return readStartInfo(this.table, this.domid);
  }

  static startInfoOf(table: DomainTable, domid: number): StartInfo | undefined {
    return readStartInfo(table, domid);
  }

  openStore(): Promise<StoreTransport> {
    return Promise.reject(new XenpvError('ENOTSUP', 'the sim platform has no store connection yet'));
  }

  /** True while the domain is paused, shut down or being destroyed: no event delivery. */
  get paused(): boolean {
    return (
      this.table.get(this.domid, DW.PAUSE) > 0 ||
      this.table.get(this.domid, DW.KILL) !== 0 ||
      this.table.get(this.domid, DW.STATE) !== DomainState.ALIVE
    );
  }

  /** The host asked this domain's vCPUs to stop (destroy). */
  get killed(): boolean {
    return this.table.get(this.domid, DW.KILL) !== 0;
  }

  /** Block up to `timeoutMs` for events of this thread and deliver them (vCPU loops). */
  poll(timeoutMs: number): number {
    return this.events.poll(timeoutMs);
  }

  /** Resolves when the domain is running (not paused), or false when it is being killed. */
  async whileRunning(): Promise<boolean> {
    const idx = this.table.at(this.domid, DW.CONTROL_SEQ);
    for (;;) {
      if (this.killed) return false;
      if (!this.paused) return true;
      await waitAsyncWhileEqual(this.table.words, idx, Atomics.load(this.table.words, idx), 1000);
    }
  }

  /** Wait (event loop) until the control word changes; for the guest kernel's watcher. */
  async controlChanged(timeoutMs: number): Promise<void> {
    const idx = this.table.at(this.domid, DW.CONTROL_SEQ);
    await waitAsyncWhileEqual(this.table.words, idx, Atomics.load(this.table.words, idx), timeoutMs);
  }

  /**
   * SCHEDOP_shutdown: record the reason, stop event delivery and tell dom0 (VIRQ_DOM_EXC).
   * The domain keeps existing until the toolstack destroys it. A second shutdown is ignored,
   * as Xen keeps the first reason.
   */
  shutdown(reason: number): void {
    shutdownDomain(this.table, this.events.hc, this.domid, reason);
  }

  describe(): string {
    return `sim dom${this.domid} (tid ${this.tid}${this.paused ? ', paused' : ''})`;
  }

  /** Close this thread's ports and free its listener slot. Mappings are the owner's to dispose. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.events.dispose();
    // A destroyed domain's grants went with its table.
    if (!this.grants.alive()) this.grants.forgetAll();
  }
}

/**
 * SCHEDOP_shutdown (or the host's SCHEDOP_remote_shutdown): record the reason, stop event
 * delivery and tell dom0 with VIRQ_DOM_EXC. The domain exists until the toolstack destroys
 * it. Only the first shutdown counts, as Xen keeps the first reason. Returns whether this
 * call shut the domain down.
 */
export function shutdownDomain(table: DomainTable, hc: EvtchnHypercalls, domid: number, reason: number): boolean {
  if (!Number.isInteger(reason) || reason < 0 || reason > SHUTDOWN_MAX) {
    throw new XenpvError('EINVAL', `bad shutdown reason ${reason}`, { reason });
  }
  const at = table.at(domid, DW.STATE);
  if (Atomics.compareExchange(table.words, at, DomainState.ALIVE, DomainState.SHUTDOWN) !== DomainState.ALIVE) {
    return false;
  }
  // Stored as reason + 1 after the state is claimed: a reader that sees SHUTDOWN with the word
  // still 0 is between the two stores, not looking at a poweroff (code 0).
  table.set(domid, DW.SHUTDOWN_CODE, reason + 1);
  bumpControl(table, domid);
  hc.sendGlobalVirq(VIRQ_DOM_EXC);
  return true;
}

/** Bump the control word and wake everything waiting on the domain. */
export function bumpControl(table: DomainTable, domid: number): void {
  const idx = table.at(domid, DW.CONTROL_SEQ);
  Atomics.add(table.words, idx, 1);
  Atomics.notify(table.words, idx);
  new EvtchnView(table, domid, table.get(domid, DW.GEN)).wakeAll();
}

