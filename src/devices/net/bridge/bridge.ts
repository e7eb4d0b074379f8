/**
 * A learning L2 switch, the dom0 `xenbr0` that vifs join (xl-network-configuration(5):
 * `bridge=`, default `xenbr0`).
 *
 * Ingress (Linux br_handle_frame / br_handle_frame_finish semantics):
 * - frames shorter than the 14-byte Ethernet header or longer than `maxFrameSize` are
 *   errors, counted, never thrown; so are frames whose source is a group or all-zero
 *   address (`is_valid_ether_addr` fails);
 * - the source address is learned on the ingress port;
 * - 01:80:C2:00:00:0X (802.1D link-local) is never forwarded;
 * - group destinations and unknown unicast are flooded to every other port; known unicast
 *   goes to its port, and is filtered if that is the ingress port: no hairpin, a frame
 *   never goes back out of the port it came in on.
 */
import { XenpvError } from '../../../base/index.js';
import { Fdb, DEFAULT_AGEING_MS, DEFAULT_FDB_MAX } from './fdb.js';
import { BridgePort, DEFAULT_QUEUE_FRAMES, type FrameInfo, type PortHost, type PortOptions, type PortSink } from './port.js';
import { FramePool, type FrameMemory } from './slab.js';
import { ETH_HLEN, formatMac, isGroupMac, isLinkLocalMac, isZeroMac, keyToMac, macKey } from './mac.js';
import { fillL4Checksum } from './checksum.js';
import { taskClock } from './clock.js';
import { SEGMENT_INFO, segmentGso } from './gso.js';

/** XEN_NETIF_MAX_TX_SIZE (netif.h): no netif packet is larger, GSO included. */
export const DEFAULT_MAX_FRAME = 0xffff;
/** Linux BR_MAX_PORTS. */
export const DEFAULT_MAX_PORTS = 1024;
/** IFNAMSIZ - 1: Linux interface names are at most 15 characters. */
const MAX_IFNAME = 15;
/**
 * FrameMemory pages a bridge's pool may hold: 2 buffers each, a default queue's worth (512 KiB).
 * A port is congested at half its queue (port.ts), but its senders' batches already taken
 * go on coming: in bench net, with 64 pages, a third of the queued frames still met V8 buffers.
 */
const POOL_PAGES = DEFAULT_QUEUE_FRAMES / 2;

export interface BridgeOptions {
  /** Milliseconds, monotonic. Default: performance.now, read once per task (clock.ts). */
  readonly clock?: () => number;
  readonly ageingMs?: number;
  readonly fdbMax?: number;
  readonly maxFrameSize?: number;
  readonly maxPorts?: number;
  /** Where the bridge's pool carves buffers for queued frames (dom0's pages on the sim: FramePool). */
  readonly frameMemory?: FrameMemory;
}

export interface BridgeStats {
  forwarded: number;
  flooded: number;
  /** Known unicast whose port is the ingress port: dropped (no hairpin). */
  filtered: number;
  linkLocal: number;
  /** Checksum-blank frames the bridge completed for a port without checksum offload. */
  csumFilled: number;
  /** GSO super-frames cut into segments for a port that did not negotiate their type. */
  gsoSegmented: number;
  /** GSO super-frames that could not be segmented (not TCP of their type, bad lengths): dropped. */
  gsoRefused: number;
}

export function validIfName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_IFNAME && /^[A-Za-z0-9_.\-]+$/.test(name);
}

export class Bridge {
  readonly counters: BridgeStats = { forwarded: 0, flooded: 0, filtered: 0, linkLocal: 0, csumFilled: 0, gsoSegmented: 0, gsoRefused: 0 };
  private readonly fdb: Fdb<BridgePort>;
  private readonly byName = new Map<string, BridgePort>();
  private portList: BridgePort[] = [];
  private readonly maxFrameSize: number;
  private readonly maxPorts: number;
  /** Open bursts (PortHost.beginBurst), and the ports whose sinks complete at their end. */
  private burstDepth = 0;
  private burstStaged: BridgePort[] = [];
  private readonly host: PortHost;

  constructor(readonly name: string, opts: BridgeOptions = {}) {
    if (!validIfName(name)) throw new XenpvError('EINVAL', `invalid bridge name '${name}'`, { name });
    const clock = opts.clock ?? taskClock;
    this.fdb = new Fdb<BridgePort>(clock, opts.ageingMs ?? DEFAULT_AGEING_MS, opts.fdbMax ?? DEFAULT_FDB_MAX);
    this.maxFrameSize = opts.maxFrameSize ?? DEFAULT_MAX_FRAME;
    this.maxPorts = opts.maxPorts ?? DEFAULT_MAX_PORTS;
    // Methods only: an object literal with a getter would be a dictionary (generic loads per frame).
    this.host = {
      ingress: (p, f, i, o, h) => this.ingress(p, f, i, o, h),
      inBurst: () => this.burstDepth > 0,
      beginBurst: () => void this.burstDepth++,
      endBurst: () => this.endBurst(),
      completeAtBurstEnd: (p) => void this.burstStaged.push(p),
      // Buffers for frames of a 1500-byte MTU (1518 bytes): up to POOL_PAGES pages of the
      // FrameMemory, and at most a default queue's worth of V8 buffers kept (512 KiB each).
      // Larger frames are copied into slab views.
      pool: new FramePool(2048, DEFAULT_QUEUE_FRAMES, opts.frameMemory, POOL_PAGES),
    };
  }

  /** The outermost burst ended: every port whose sink took stable frames completes them. */
  private endBurst(): void {
    if (this.burstDepth === 0) return;
    if (--this.burstDepth > 0) return;
    while (this.burstStaged.length > 0) {
      const ports = this.burstStaged;
      this.burstStaged = [];
      for (const p of ports) p.completeStaged();
    }
  }

  /** Attach a port named e.g. `vif3.0`. Names are unique per bridge. */
  addPort(name: string, sink: PortSink, opts: PortOptions = {}): BridgePort {
    if (!validIfName(name)) throw new XenpvError('EINVAL', `invalid port name '${name}'`, { bridge: this.name, name });
    if (this.byName.has(name)) throw new XenpvError('EEXIST', `${name} is already a port of ${this.name}`, { bridge: this.name, name });
    if (this.portList.length >= this.maxPorts) {
      throw new XenpvError('ENOSPC', `${this.name} has ${this.maxPorts} ports already`, { bridge: this.name, name });
    }
    const port = new BridgePort(name, sink, this.host, opts);
    this.byName.set(name, port);
    this.portList = [...this.portList, port];
    return port;
  }

  /** Detach a port: its queue is dropped and the addresses learned on it are forgotten. */
  removePort(port: BridgePort | string): boolean {
    const p = typeof port === 'string' ? this.byName.get(port) : port;
    if (p === undefined || this.byName.get(p.name) !== p) return false;
    this.byName.delete(p.name);
    this.portList = this.portList.filter((q) => q !== p);
    this.fdb.flushPort(p);
    p.detach();
    return true;
  }

  port(name: string): BridgePort | undefined {
    return this.byName.get(name);
  }

  ports(): readonly BridgePort[] {
    return this.portList;
  }

  get ageingMs(): number {
    return this.fdb.ageingMs;
  }

  /** 0 = learned entries never expire (as Linux's `ageing_time 0`). */
  set ageingMs(ms: number) {
    if (!Number.isFinite(ms) || ms < 0) throw new XenpvError('EINVAL', `invalid ageing time ${ms}`, { bridge: this.name });
    this.fdb.ageingMs = ms;
  }

  /** The learned table, like `bridge fdb show` / `brctl showmacs`. */
  macTable(): { mac: string; port: string; ageMs: number }[] {
    return this.fdb.list().map((e) => ({ mac: formatMac(keyToMac(e.key)), port: e.port.name, ageMs: e.ageMs }));
  }

  fdbStats(): { entries: number; fullDrops: number; moves: number } {
    return { entries: this.fdb.size, fullDrops: this.fdb.fullDrops, moves: this.fdb.moves };
  }

  /** Drop aged-out entries now (lookups also expire them lazily). */
  sweep(): number {
    return this.fdb.sweep();
  }

  dispose(): void {
    for (const p of this.portList) this.removePort(p);
    this.host.pool?.dispose();
  }

  private validIngress(port: BridgePort, frame: Uint8Array, info: FrameInfo): boolean {
    const c = port.counters;
    if (frame.length < ETH_HLEN) {
      c.rxErrors++;
      c.rxRunts++;
      return false;
    }
    if (frame.length > this.maxFrameSize) {
      c.rxErrors++;
      c.rxOversize++;
      return false;
    }
    if (info.gso !== undefined && !(Number.isInteger(info.gso.size) && info.gso.size > 0 && info.gso.size <= 0xffff)) {
      c.rxErrors++;
      c.rxBadGso++;
      return false;
    }
    if (isGroupMac(frame, 6) || isZeroMac(frame, 6)) {
      c.rxErrors++;
      c.rxBadSource++;
      return false;
    }
    if (port.lockedMac !== undefined && macKey(frame, 6) !== port.lockedMac) {
      c.rxDropped++;
      c.rxSpoofed++;
      return false;
    }
    return true;
  }

  private ingress(port: BridgePort, input: Uint8Array, info: FrameInfo, owned: boolean, held: boolean): boolean {
    port.backPressure = undefined;
    if (!this.validIngress(port, input, info)) return false;
    // Copy once, and only where needed: the owner of a frame it does not give away (`owned`
    // false) reuses its buffer, so flooding shares one copy, and a known-unicast frame is
    // copied only if it has to wait in its port's queue (BridgePort.enqueue).
    const frame = input;
    port.counters.rxPackets++;
    port.counters.rxBytes += frame.length;
    this.fdb.learnAt(frame, 6, port);
    // 01:80:C2:00:00:0X is a group address: a unicast destination needs no closer look.
    const group = isGroupMac(frame, 0);
    if (group && isLinkLocalMac(frame, 0)) {
      this.counters.linkLocal++;
      return true;
    }
    const dst = group ? undefined : this.fdb.lookupAt(frame, 0);
    if (dst === port) {
      this.counters.filtered++;
    } else if (dst !== undefined) {
      this.counters.forwarded++;
      this.egress(dst, frame, info, owned, held);
      // Known unicast: one receiver, so its sender may be held off (flooding never is).
      if (dst.congested) port.backPressure = dst;
    } else {
      this.counters.flooded++;
      const shared = owned ? frame : frame.slice();
      for (const p of this.portList) if (p !== port) this.egress(p, shared, info);
    }
    return true;
  }

  /** Hand a frame to a port, completing a blank checksum first if the port cannot take it. */
  private egress(port: BridgePort, frame: Uint8Array, info: FrameInfo, owned = true, held = false): void {
    if (info.gso !== undefined && !port.takesGso(info.gso.type)) {
      this.egressSegments(port, frame, info, owned, held);
      return;
    }
    if (!info.csumBlank || port.csumOffload) {
      port.enqueue(frame, info, owned, held);
      return;
    }
    // Linux's skb_checksum_help for a device without checksum offload; the copy keeps
    // the frame other ports share untouched.
    const filled = frame.slice();
    if (fillL4Checksum(filled)) this.counters.csumFilled++;
    port.enqueue(filled, { ...info, csumBlank: false, dataValidated: true });
  }

  /**
   * Software GSO (gso.ts) for a receiver without it: complete segments, checksums filled.
   * A frame that cannot be segmented goes on as a plain frame: over the MTU, the port drops
   * it (txTooBig); within it, its bogus GSO info is all that was wrong.
   */
  private egressSegments(port: BridgePort, frame: Uint8Array, info: FrameInfo, owned: boolean, held: boolean): void {
    const segments = segmentGso(frame, info.gso!);
    if (segments === undefined) {
      this.counters.gsoRefused++;
      // Still the sender's frame: a borrowed one (owned false) is copied if it has to wait.
      this.egress(port, frame, { csumBlank: info.csumBlank, dataValidated: info.dataValidated }, owned, held);
      return;
    }
    this.counters.gsoSegmented++;
    for (const s of segments) port.enqueue(s, SEGMENT_INFO);
  }
}

/** The host's bridges by name, created on first use (`bridge=` names them). */
export class BridgeSet {
  private readonly bridges = new Map<string, Bridge>();

  constructor(private readonly opts: BridgeOptions = {}) {}

  get(name: string): Bridge {
    let b = this.bridges.get(name);
    if (b === undefined) {
      b = new Bridge(name, this.opts);
      this.bridges.set(name, b);
    }
    return b;
  }

  find(name: string): Bridge | undefined {
    return this.bridges.get(name);
  }

  list(): readonly Bridge[] {
    return [...this.bridges.values()];
  }

  dispose(): void {
    for (const b of this.bridges.values()) b.dispose();
    this.bridges.clear();
  }
}
