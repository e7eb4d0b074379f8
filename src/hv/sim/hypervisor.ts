/**
 * The hypervisor model's host side: creates, pauses, shuts down and destroys domains, runs
 * one worker thread per guest vCPU, and reclaims a destroyed domain's frames once nothing
 * maps them any more. Domain 0 is the host process itself.
 *
 * Everything hypercalls touch lives in SharedArrayBuffers (`handle`), so this object only
 * keeps what is host-private: the extent allocator, the vCPU workers, console lines.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { shutdownReasonName, SHUTDOWN_crash, VIRQ_DOM_EXC } from '../../abi/xen.js';
import { DOM0, XenpvError, trackResource, type DomId } from '../../base/index.js';
import { EvtchnHypercalls } from '../../evtchn/index.js';
import { SimGrantOps } from '../../grant/index.js';
import { breakLockOf, DomainState, DomainTable, DW, ExtentAllocator, REF_SLOTS, type HvHandle } from '../../memory/index.js';
import { allCpus, osThreadId, setThreadAffinity, threadPlace, type ThreadPlace } from './affinity.js';
import { adviseHugePages } from './huge-pages.js';
import { buildDomain, DEFAULT_LIMITS, setupStartInfo, type DomainLimits, type Extents } from './build.js';
import { bumpControl, shutdownDomain, SimPlatform, type PlatformHandle } from './platform.js';
import type { StartInfo } from './start-info.js';
import type { GuestMessage, VcpuBoot } from './vcpu-protocol.js';

export interface HypervisorOptions {
  readonly maxDomains?: number;
  /** The size of machine memory, reserved whole at start (memory/machine.ts); 64 KiB to 4 GiB. */
  readonly maxMachineBytes?: number;
  readonly dom0Pages?: number;
  readonly dom0Limits?: Partial<DomainLimits>;
  /** The vCPU worker entry (the guest kernel: guest/kernel.js). Needed to boot kernels. */
  readonly vcpuEntry?: URL;
  /** How long a vCPU gets to stop on its own at destroy before it is terminated. */
  readonly killGraceMs?: number;
}

export interface DomainConfig extends Partial<DomainLimits> {
  readonly name?: string;
  /** Memory in 4 KiB pages (default 256 = 1 MiB). */
  readonly memoryPages?: number;
  readonly vcpus?: number;
  /** `builtin:<program>` or a module path; boots one worker per vCPU when given. */
  readonly kernel?: string;
  /** The program's arguments (xl.cfg `extra`). */
  readonly extra?: string;
  /** Create the domain paused (the toolstack unpauses it). */
  readonly paused?: boolean;
  /** Set up the xenstore and console pages and ports (default true). */
  readonly startInfo?: boolean;
  /** Host CPUs of each vCPU (xl's `cpus=`), index = vCPU; absent or undefined: every CPU. */
  readonly cpus?: readonly (readonly number[] | undefined)[];
}

/** One vCPU as `xl vcpu-list` shows it. */
export interface VcpuInfo {
  readonly vcpu: number;
  /** Its thread's Linux task id, once the thread is up. */
  readonly osTid: number | undefined;
  /** Hard affinity; undefined: every CPU. */
  readonly cpus: readonly number[] | undefined;
  /** Why the affinity asked for at boot could not be set. */
  readonly pinError?: string;
  /** Where it runs (thread state from /proc), when known. */
  readonly place?: ThreadPlace;
}

/** What the host keeps of one vCPU's thread (vcpu-pin, vcpu-list). */
interface VcpuState {
  /** The thread said it is up (its first `vcpu-up`; later ones are ignored). */
  up: boolean;
  osTid: number | undefined;
  /** Hard affinity; undefined: every CPU. */
  cpus: readonly number[] | undefined;
  pinError: string | undefined;
  /** Pinned (vcpu-pin) before the thread was up: applied when it is. */
  pinLater: boolean;
}

export type DomainRunState = 'running' | 'paused' | 'shutdown' | 'dying';

export interface DomainInfo {
  readonly domid: DomId;
  readonly name: string;
  readonly state: DomainRunState;
  readonly shutdownCode?: number;
  readonly shutdownReason?: string;
  /** A crashed guest's last words (the exception message). */
  readonly message?: string;
  readonly memoryPages: number;
  readonly vcpus: number;
}

interface DomainRecord {
  readonly domid: DomId;
  readonly name: string;
  readonly extents: Extents;
  readonly workers: Worker[];
  readonly tids: number[];
  /** The vCPU threads' reference slots, freed when the domain is destroyed. */
  readonly refSlots: number[];
  /** Per vCPU. Domain-0's one vCPU is the host thread. */
  readonly vcpus: VcpuState[];
  readonly console: string[];
  message?: string;
  readonly untrack: () => void;
}

const CONSOLE_LINES = 200;

/**
 * dom0's maptrack (live grant mappings): the backends of every guest map into it. A blkback
 * queue may keep 9248 grants mapped persistently (devices/blk BACK_LIMITS), so 16384 would
 * not hold one 4-queue disk; Xen's own default (max_maptrack_frames 1024) holds 262144.
 */
export const DOM0_MAX_MAPTRACK = 131072;

export class Hypervisor extends EventEmitter {
  readonly table: DomainTable;
  private readonly alloc: ExtentAllocator;
  private readonly hostTid: number;
  private readonly hc: EvtchnHypercalls;
  private readonly records = new Map<number, DomainRecord>();
  private readonly dying = new Map<number, Extents>();
  /** Reference slots (DomainTable.bindRefSlot) not given to a thread. */
  private readonly freeRefSlots: number[] = Array.from({ length: REF_SLOTS }, (_, i) => REF_SLOTS - 1 - i);
  private reapTimer: NodeJS.Timeout | undefined;
  private nextDomid = 1;
  private dom0Platform: SimPlatform | undefined;
  private closed = false;
  /** Why machine memory is not on transparent huge pages (undefined: it asked for them). */
  readonly hugePagesRefused: string | undefined;

  constructor(private readonly options: HypervisorOptions = {}) {
    super();
    this.table = DomainTable.create(options.maxDomains ?? 64, options.maxMachineBytes ?? 2 ** 30);
    // Before any frame is touched: dom0's pages are the first (huge-pages.ts).
    this.hugePagesRefused = adviseHugePages(this.table.machine);
    this.alloc = new ExtentAllocator(this.table.machine);
    this.hostTid = this.table.newTid();
    this.hc = new EvtchnHypercalls(this.table, this.hostTid);
    const limits = { ...DEFAULT_LIMITS, maxMaptrack: DOM0_MAX_MAPTRACK, ...options.dom0Limits };
    const extents = buildDomain(this.table, this.alloc, 0, {
      ...limits,
      memoryPages: options.dom0Pages ?? 1024,
      vcpus: 1,
      paused: false,
    });
    const dom0 = this.record(DOM0, 'Domain-0', extents);
    dom0.vcpus.push({ up: true, osTid: osThreadId(), cpus: undefined, pinError: undefined, pinLater: false });
    this.records.set(0, dom0);
  }

  /** Structured-cloneable: post it to a worker and `SimPlatform.attach` there. */
  get handle(): HvHandle {
    return this.table.handle;
  }

  platformHandle(domid: number): PlatformHandle {
    return { hv: this.handle, domid };
  }

  /**
   * A handle for a worker thread (a dom0 backend) with a thread id the host knows, so that
   * `reclaimThread` can release what the thread held if it dies without disposing.
   */
  threadHandle(domid: number): PlatformHandle {
    this.live(domid);
    const refSlot = this.freeRefSlots.pop();
    return { hv: this.handle, domid, tid: this.table.newTid(), ...(refSlot === undefined ? {} : { refSlot }) };
  }

  /**
   * A `threadHandle`'s thread ended cleanly (disposed its platform): its reference slot is free
   * again. Idempotent; `reclaimThread` does this too.
   */
  releaseThread(handle: PlatformHandle): number {
    const slot = handle.refSlot;
    return slot === undefined || this.freeRefSlots.includes(slot) ? 0 : this.freeRefSlot(slot);
  }

  /** Drop the references counted in `slot` (its thread is gone) and free it: how many there were. */
  private freeRefSlot(slot: number): number {
    const dropped = this.table.clearRefSlot(slot);
    this.freeRefSlots.push(slot);
    return dropped;
  }

  /**
   * Clean up after thread `handle.tid` of a domain died (crashed, terminated) without
   * disposing its platform: free any lock it held, unmap its grant mappings (so the guests
   * it mapped can end access and be reclaimed), close its ports and free its listener slot.
   */
  reclaimThread(handle: PlatformHandle): { mappings: number; ports: number; refs: number } {
    const tid = handle.tid;
    if (tid === undefined) throw new XenpvError('EINVAL', 'reclaimThread needs a handle from threadHandle()');
    this.live(handle.domid);
    this.breakLocks(tid);
    const mappings = new SimGrantOps(this.table, handle.domid as DomId, this.hostTid).unmapAll(tid);
    const ports = this.hc.releaseListenerOf(handle.domid, tid);
    // Domain references it died holding (terminated mid-hypercall): the domains they kept alive can go.
    const refs = this.releaseThread(handle);
    this.reap();
    return { mappings, ports, refs };
  }

  /** The host thread's dom0 platform (created on first use, disposed with the hypervisor). */
  get dom0(): SimPlatform {
    this.dom0Platform ??= SimPlatform.attach(this.platformHandle(0));
    return this.dom0Platform;
  }

  private record(domid: DomId, name: string, extents: Extents): DomainRecord {
    return {
      domid,
      name,
      extents,
      workers: [],
      tids: [],
      refSlots: [],
      vcpus: [],
      console: [],
      untrack: trackResource('domain', `dom${domid} ${name}`),
    };
  }

  createDomain(config: DomainConfig = {}): DomId {
    this.checkOpen();
    if (config.kernel !== undefined && this.options.vcpuEntry === undefined) {
      throw new XenpvError('EINVAL', 'booting a kernel needs HypervisorOptions.vcpuEntry');
    }
    this.reap();
    const domid = this.freeDomid();
    const vcpus = config.vcpus ?? 1;
    const extents = buildDomain(this.table, this.alloc, domid, {
      ...DEFAULT_LIMITS,
      ...definedOnly(config),
      memoryPages: config.memoryPages ?? 256,
      vcpus,
      paused: true,
    });
    const rec = this.record(domid as DomId, config.name ?? `dom${domid}`, extents);
    this.records.set(domid, rec);
    if (config.startInfo !== false) setupStartInfo(this.table, domid, this.hostTid);
    if (config.kernel !== undefined) {
      for (let v = 0; v < vcpus; v++) this.spawnVcpu(rec, v, config.kernel, config.extra ?? '', config.cpus?.[v]);
    }
    if (config.paused !== true) this.unpause(domid);
    return domid as DomId;
  }

  private freeDomid(): number {
    const max = this.table.maxDomains;
    for (let i = 0; i < max - 1; i++) {
      const d = 1 + ((this.nextDomid - 1 + i) % (max - 1));
      if (this.table.get(d, DW.STATE) === DomainState.FREE) {
        this.nextDomid = d + 1 >= max ? 1 : d + 1;
        return d;
      }
    }
    throw new XenpvError('ENOSPC', 'no free domain ids', { maxDomains: max });
  }

  private spawnVcpu(rec: DomainRecord, vcpu: number, kernel: string, extra: string, cpus: readonly number[] | undefined): void {
    const tid = this.table.newTid();
    const refSlot = this.freeRefSlots.pop();
    if (refSlot !== undefined) rec.refSlots.push(refSlot);
    rec.vcpus[vcpu] = { up: false, osTid: undefined, cpus, pinError: undefined, pinLater: false };
    // A new thread inherits its creator's CPU mask: with the host thread pinned, an unpinned
    // vCPU must ask for every CPU itself.
    const boot: VcpuBoot = {
      platform: { hv: this.handle, domid: rec.domid, tid, ...(refSlot === undefined ? {} : { refSlot }) },
      vcpu,
      kernel,
      extra,
      name: rec.name,
      ...(cpus !== undefined ? { cpus } : this.records.get(0)?.vcpus[0]?.cpus !== undefined ? { cpus: allCpus() } : {}),
    };
    const w = new Worker(this.options.vcpuEntry!, { workerData: boot });
    rec.workers.push(w);
    rec.tids.push(tid);
    w.on('message', (m: GuestMessage) => this.onGuestMessage(rec, vcpu, m));
    w.on('error', (err) => {
      rec.message ??= err.message;
      if (this.table.get(rec.domid, DW.KILL) === 0) shutdownDomain(this.table, this.hc, rec.domid, SHUTDOWN_crash);
      this.emit('shutdown', rec.domid, this.info(rec.domid));
    });
    w.on('exit', (code) => {
      // A vCPU that stops without shutting down (a kernel bug, process.exit in a program)
      // leaves a domain that can never run again: report it as crashed.
      if (this.table.get(rec.domid, DW.KILL) === 0 && this.table.get(rec.domid, DW.STATE) === DomainState.ALIVE) {
        rec.message ??= `vCPU ${vcpu} exited (code ${code}) without shutting down`;
        shutdownDomain(this.table, this.hc, rec.domid, SHUTDOWN_crash);
        this.emit('shutdown', rec.domid, this.info(rec.domid));
      }
      this.emit('vcpu-exit', rec.domid, vcpu);
    });
  }

  /** `vcpu`: the worker's vCPU, whatever the message says (guest programs share its port). */
  private onGuestMessage(rec: DomainRecord, vcpu: number, m: GuestMessage): void {
    if (m.type === 'vcpu-up') {
      // Only the first: the kernel sends it before any program runs; a later one could name
      // another thread (dom0's) for vcpu-pin to move.
      const st = rec.vcpus[vcpu];
      if (st === undefined || st.up) return;
      st.up = true;
      const tid = m.osTid;
      st.osTid = tid !== undefined && Number.isSafeInteger(tid) && tid > 0 ? tid : undefined;
      if (m.pinError !== undefined) {
        st.pinError = String(m.pinError);
        st.cpus = undefined;
      }
      if (st.pinLater && st.osTid !== undefined) {
        st.pinLater = false;
        try {
          setThreadAffinity(st.osTid, st.cpus ?? allCpus());
        } catch (err) {
          st.pinError = (err as Error).message;
        }
      }
      return;
    }
    if (m.type === 'console') {
      rec.console.push(m.text);
      if (rec.console.length > CONSOLE_LINES) rec.console.shift();
      this.emit('console', rec.domid, m.text);
    } else if (m.type === 'shutdown') {
      if (m.message !== undefined) rec.message ??= m.message;
      this.emit('shutdown', rec.domid, this.info(rec.domid));
    }
  }

  pause(domid: number): void {
    this.live(domid);
    this.table.add(domid, DW.PAUSE, 1);
    bumpControl(this.table, domid);
  }

  unpause(domid: number): void {
    this.live(domid);
    if (this.table.get(domid, DW.PAUSE) <= 0) throw new XenpvError('EINVAL', `dom${domid} is not paused`, { domid });
    this.table.add(domid, DW.PAUSE, -1);
    bumpControl(this.table, domid);
  }

  /** SCHEDOP_remote_shutdown: shut a domain down from the host. */
  shutdown(domid: number, reason: number, message?: string): boolean {
    const rec = this.live(domid);
    if (message !== undefined) rec.message ??= message;
    return shutdownDomain(this.table, this.hc, domid, reason);
  }

  /**
   * Resolves with the domain's info once it has shut down (for a crash, once its message is
   * in too), or rejects after `timeoutMs`. Re-checks on guest messages and every 20 ms, since
   * a vCPU may shut down through shared memory alone.
   */
  waitForShutdown(domid: number, timeoutMs = 5000): Promise<DomainInfo> {
    const ready = (): DomainInfo | undefined => {
      const info = this.info(domid);
      if (info?.state !== 'shutdown') return undefined;
      return info.shutdownCode !== SHUTDOWN_crash || info.message !== undefined ? info : undefined;
    };
    return new Promise((resolve, reject) => {
      const done = (info: DomainInfo | undefined, err?: Error): void => {
        clearInterval(tick);
        clearTimeout(timer);
        this.off('shutdown', check);
        if (info !== undefined) resolve(info);
        else reject(err);
      };
      const check = (): void => {
        const info = ready();
        if (info !== undefined) done(info);
      };
      const tick = setInterval(check, 20);
      const timer = setTimeout(
        () => done(undefined, new XenpvError('ETIMEDOUT', `dom${domid} did not shut down`, { domid, timeoutMs })),
        timeoutMs,
      );
      this.on('shutdown', check);
      check();
    });
  }

  /**
   * `xl vcpu-pin`: set vCPU `vcpu`'s hard affinity (undefined: every CPU); Domain-0's one vCPU
   * is the host thread. A vCPU whose thread is not up yet takes it when it is. Throws ESRCH,
   * EINVAL, or EOPNOTSUPP (no native bridge, no task ids).
   */
  vcpuPin(domid: number, vcpu: number, cpus: readonly number[] | undefined): void {
    const rec = this.live(domid);
    const st = Number.isInteger(vcpu) ? rec.vcpus[vcpu] : undefined;
    if (st === undefined) {
      const n = rec.vcpus.length;
      throw new XenpvError('EINVAL', `${rec.name} has no vCPU ${vcpu}: it has ${n === 1 ? 'one vCPU (0)' : `${n} vCPUs (0-${n - 1})`}`, { domid, vcpu });
    }
    if (st.osTid !== undefined) setThreadAffinity(st.osTid, cpus ?? allCpus());
    else if (st.up) throw new XenpvError('EOPNOTSUPP', `${rec.name} vCPU ${vcpu}: no task id to pin (not Linux)`);
    else st.pinLater = true;
    st.cpus = cpus;
    st.pinError = undefined;
  }

  /** `xl vcpu-list` for one domain (Domain-0's one vCPU is the host thread). */
  vcpuList(domid: number): VcpuInfo[] {
    return (this.records.get(domid)?.vcpus ?? []).map((st, vcpu) => {
      const place = st.osTid === undefined ? undefined : threadPlace(st.osTid);
      return { vcpu, osTid: st.osTid, cpus: st.cpus, ...(st.pinError === undefined ? {} : { pinError: st.pinError }), ...(place === undefined ? {} : { place }) };
    });
  }

  /**
   * Time a domain's vCPU threads spent running (not idle in their event loop), summed over
   * its vCPUs: the model's CPU time for `xl list`'s Time(s) and xentop's CPU%.
   */
  vcpuTime(domid: number): { activeMs: number; idleMs: number } {
    let activeMs = 0;
    let idleMs = 0;
    for (const w of this.records.get(domid)?.workers ?? []) {
      if (w.threadId === -1) continue;
      const u = w.performance.eventLoopUtilization();
      activeMs += u.active;
      idleMs += u.idle;
    }
    return { activeMs, idleMs };
  }

  console(domid: number): readonly string[] {
    return this.records.get(domid)?.console ?? [];
  }

  info(domid: number): DomainInfo | undefined {
    const rec = this.records.get(domid);
    if (rec === undefined) return undefined;
    const s = this.table.get(domid, DW.STATE);
    // reason + 1, or 0 while the shutting-down thread has claimed the state but not stored it yet.
    const stored = this.table.get(domid, DW.SHUTDOWN_CODE);
    const code = stored - 1;
    const shut = s === DomainState.SHUTDOWN && stored !== 0;
    const state: DomainRunState =
      s === DomainState.DYING ? 'dying' : shut ? 'shutdown' : this.table.get(domid, DW.PAUSE) > 0 ? 'paused' : 'running';
    return {
      domid: rec.domid,
      name: rec.name,
      state,
      ...(shut ? { shutdownCode: code, shutdownReason: shutdownReasonName(code) } : {}),
      ...(rec.message !== undefined ? { message: rec.message } : {}),
      memoryPages: rec.extents.memFrames,
      vcpus: this.table.get(domid, DW.NR_VCPUS),
    };
  }

  list(): DomainInfo[] {
    return [...this.records.keys()].sort((a, b) => a - b).flatMap((d) => this.info(d) ?? []);
  }

  /**
   * EVTCHNOP_alloc_unbound on behalf of `dom` (a privileged caller may name another
   * domain, as the toolstack does for a guest's store and console ports). The port has no
   * thread yet: the domain's thread takes it with `events.adopt(port, handler)`.
   */
  allocUnboundFor(dom: number, remote: number): number {
    this.live(dom);
    return this.hc.allocUnbound(dom, remote);
  }

  /** The start info the builder wrote for a guest (xenstore/console frames and ports). */
  startInfo(domid: number): StartInfo | undefined {
    this.live(domid);
    return SimPlatform.startInfoOf(this.table, domid);
  }

  /**
   * Destroy a domain: stop its vCPUs (cooperatively, then by termination), release every
   * grant mapping it holds and every port (remote ends become unbound), tell dom0
   * (VIRQ_DOM_EXC), and reclaim its frames once no other domain maps them.
   */
  async destroy(domid: number): Promise<void> {
    if (domid === 0) throw new XenpvError('EPERM', 'dom0 cannot be destroyed');
    const rec = this.records.get(domid);
    if (rec === undefined || this.table.get(domid, DW.STATE) === DomainState.DYING) {
      throw new XenpvError('ESRCH', `no such domain ${domid}`, { domid });
    }
    this.table.set(domid, DW.KILL, 1);
    bumpControl(this.table, domid);
    const forced = await Promise.all(rec.workers.map((w) => stopWorker(w, this.options.killGraceMs ?? 500)));
    if (forced.some((f) => f)) this.emit('vcpu-terminated', domid);
    for (const tid of rec.tids) this.breakLocks(tid);
    // Its vCPUs are gone, perhaps mid-hypercall: what they held on other domains is dropped.
    for (const slot of rec.refSlots.splice(0)) this.freeRefSlot(slot);
    this.table.set(domid, DW.STATE, DomainState.DYING);
    new SimGrantOps(this.table, domid as DomId, this.hostTid).unmapAll();
    this.hc.closeAll(domid);
    this.hc.sendGlobalVirq(VIRQ_DOM_EXC);
    this.records.delete(domid);
    rec.untrack();
    this.dying.set(domid, rec.extents);
    this.reap();
    this.emit('destroyed', domid);
  }

  /** Free a lock a terminated worker died holding (it never returns from the hypercall). */
  private breakLocks(tid: number): void {
    for (let d = 0; d < this.table.maxDomains; d++) {
      breakLockOf(this.table.words, this.table.at(d, DW.GNT_LOCK), tid);
      breakLockOf(this.table.words, this.table.at(d, DW.EVT_LOCK), tid);
    }
  }

  /** Reclaim DYING domains nobody references or maps any more. */
  reap(): void {
    for (const [d, ext] of this.dying) {
      if (this.table.refs(d) !== 0 || this.table.get(d, DW.FOREIGN_PINS) !== 0) continue;
      this.alloc.release(ext.ctlBase, ext.ctlFrames);
      this.alloc.release(ext.memBase, ext.memFrames);
      this.table.set(d, DW.STATE, DomainState.FREE);
      this.dying.delete(d);
    }
    if (this.dying.size > 0 && this.reapTimer === undefined && !this.closed) {
      this.reapTimer = setInterval(() => {
        this.reap();
        if (this.dying.size === 0) {
          clearInterval(this.reapTimer);
          this.reapTimer = undefined;
        }
      }, 50);
      this.reapTimer.unref();
    }
  }

  /** Domains destroyed but still mapped by someone (their frames are not reusable yet). */
  get zombies(): number[] {
    return [...this.dying.keys()];
  }

  /** Machine frames in use (dom0 + live + zombie domains); for leak tests. */
  get framesInUse(): number {
    return this.alloc.inUse;
  }

  /** Destroy every guest and release dom0's host platform. */
  async dispose(): Promise<void> {
    if (this.closed) return;
    for (const d of [...this.records.keys()]) if (d !== 0) await this.destroy(d);
    this.dom0Platform?.dispose();
    this.dom0Platform = undefined;
    this.closed = true;
    this.records.get(0)?.untrack();
    this.reap();
    if (this.reapTimer !== undefined) clearInterval(this.reapTimer);
  }

  private live(domid: number): DomainRecord {
    const rec = this.records.get(domid);
    const s = this.table.state(domid);
    if (rec === undefined || (s !== DomainState.ALIVE && s !== DomainState.SHUTDOWN)) {
      throw new XenpvError('ESRCH', `no such domain ${domid}`, { domid });
    }
    return rec;
  }

  private checkOpen(): void {
    if (this.closed) throw new XenpvError('ESHUTDOWN', 'hypervisor disposed');
  }
}

function definedOnly(c: Partial<DomainLimits>): Partial<DomainLimits> {
  const out: Record<string, number> = {};
  for (const k of ['maxGrantFrames', 'maxMaptrack', 'maxEventChannels'] as const) {
    const v = c[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Wait for a worker to exit on its own; terminate it after `graceMs`. True if forced. */
async function stopWorker(w: Worker, graceMs: number): Promise<boolean> {
  if (w.threadId === -1) return false;
  let forced = false;
  const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
  const timer = setTimeout(() => {
    forced = true;
    void w.terminate();
  }, graceMs);
  await exited;
  clearTimeout(timer);
  return forced;
}
