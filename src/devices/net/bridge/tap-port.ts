/**
 * A bridge's uplink to Linux: a TAP interface as one more port of the bridge, so that Linux
 * tools (ip, ping, tcpdump, sockets in a network namespace) reach the guests, as dom0's
 * physical NIC is a port of xenbr0 in xl's model (xl-network-configuration(5)).
 *
 * Toward Linux (the port's tx): the bridge's bounded egress queue, written with non-blocking
 * write(2) on this thread (a TAP write hands the frame to Linux's receive path and returns).
 * The port takes neither checksum-blank frames nor GSO (a TAP without IFF_VNET_HDR has no
 * offloads), so the bridge completes checksums and segments super-frames before they get
 * here: Linux only ever sees complete frames of at most MTU + 14 (+ VLAN tag) bytes.
 * A TAP whose link is down answers EIO; such frames are dropped and counted (`linkDown`),
 * as a bridge drops frames for a port that is down. EAGAIN keeps the frame queued and
 * retries shortly.
 *
 * From Linux (the port's rx): the reader thread (tun-worker.ts) polls and reads; the frames
 * come here in batches and enter the bridge as owned buffers. Linux has already completed
 * their checksums and segmented them (no offloads were negotiated with it).
 */
import { closeSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { XenpvError } from '../../../base/index.js';
import type { Bridge } from './bridge.js';
import { PLAIN_FRAME, type BridgePort, type FrameInfo, type PortStats } from './port.js';
import { CTL_IN_FLIGHT, CTL_QUEUE_FULL, CTL_READ, CTL_SLOTS, CTL_STOP, openTap, type TunWorkerData, type TunWorkerMessage } from './tun.js';

export interface TapUplinkOptions {
  /** The Linux side's MTU (default 1500): larger frames are dropped as txTooBig. */
  readonly mtu?: number;
  /** Frames read from Linux and not yet taken by the bridge (default 256). */
  readonly maxInFlight?: number;
  /** Egress queue toward Linux, in frames (the port's default otherwise). */
  readonly queueFrames?: number;
}

export interface TapUplinkStats {
  readonly name: string;
  readonly bridge: string;
  readonly state: 'up' | 'failed' | 'closed';
  /** Why the uplink stopped, if it did. */
  readonly error: string | undefined;
  readonly port: Readonly<PortStats>;
  /** Frames read from Linux, and those dropped because the bridge had `maxInFlight` outstanding. */
  readonly linuxRead: number;
  readonly rxQueueFull: number;
  /** Frames toward Linux dropped because the TAP's link was down (EIO). */
  readonly linkDown: number;
  /** Writes that found no room (EAGAIN) and were retried. */
  readonly writeRetries: number;
}

const DEFAULT_MAX_IN_FLIGHT = 256;
const RETRY_MS = 2;
/** The reader polls with a 100 ms timeout; this bounds waiting for it to notice `stop`. */
const STOP_TIMEOUT_MS = 2000;

export class TapUplink {
  private readonly control = new SharedArrayBuffer(CTL_SLOTS * 4);
  private readonly ctl = new Int32Array(this.control);
  private readonly worker: Worker;
  private readonly port: BridgePort;
  private readonly exited: Promise<void>;
  private state: TapUplinkStats['state'] = 'up';
  private error: string | undefined;
  private linkDown = 0;
  private writeRetries = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  /**
   * Create TAP `name` and make it a port of `bridge`, named after the interface. Throws a
   * XenpvError whose message says why when it cannot (no koffi, not root, name in use).
   */
  static async open(bridge: Bridge, name: string, opts: TapUplinkOptions = {}): Promise<TapUplink> {
    const tap = await openTap(name);
    if (!tap.ok) throw new XenpvError(tap.code, `uplink ${bridge.name} → TAP ${name}: ${tap.reason}`, { bridge: bridge.name, tap: name });
    try {
      return new TapUplink(bridge, tap.name, tap.fd, opts);
    } catch (err) {
      closeSync(tap.fd);
      throw err;
    }
  }

  private constructor(
    readonly bridge: Bridge,
    readonly name: string,
    private readonly fd: number,
    opts: TapUplinkOptions,
  ) {
    this.port = bridge.addPort(name, { deliver: (f, i) => this.deliver(f, i) }, {
      mtu: opts.mtu ?? 1500, gso: false, csumOffload: false, ...(opts.queueFrames === undefined ? {} : { queueFrames: opts.queueFrames }),
    });
    const data: TunWorkerData = { fd, control: this.control, maxInFlight: opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT };
    this.worker = new Worker(new URL('./tun-worker.js', import.meta.url), { workerData: data });
    // A forgotten uplink must not keep the process alive; close() is still the way to end it.
    this.worker.unref();
    this.worker.on('message', (m: TunWorkerMessage) => this.onMessage(m));
    this.worker.on('error', (err) => this.fail(`the reader thread failed: ${err.message}`));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  private onMessage(m: TunWorkerMessage): void {
    if (m.kind === 'error') return this.fail(m.reason);
    for (const f of m.frames) {
      if (this.state === 'up') this.port.input(f, PLAIN_FRAME, true);
    }
    Atomics.sub(this.ctl, CTL_IN_FLIGHT, m.frames.length);
  }

  /** The reader stopped on its own: the uplink is down, the bridge and its guests go on. */
  private fail(reason: string): void {
    if (this.state !== 'up') return;
    this.state = 'failed';
    this.error = reason;
    this.bridge.removePort(this.port);
  }

  /** The bridge hands a frame to Linux. False = no room now (retried shortly). */
  private deliver(frame: Uint8Array, _info: FrameInfo): boolean {
    if (this.state !== 'up') return true;
    try {
      writeSync(this.fd, frame);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EIO') {
        this.linkDown++;
        return true;
      }
      if (code === 'EAGAIN' || code === 'ENOBUFS') {
        this.writeRetries++;
        this.retryTimer ??= setTimeout(() => {
          this.retryTimer = undefined;
          this.port.wake();
        }, RETRY_MS);
        return false;
      }
      throw err; // the port counts it in txErrors and goes on
    }
  }

  stats(): TapUplinkStats {
    return {
      name: this.name, bridge: this.bridge.name, state: this.state, error: this.error, port: this.port.stats(),
      linuxRead: Atomics.load(this.ctl, CTL_READ), rxQueueFull: Atomics.load(this.ctl, CTL_QUEUE_FULL),
      linkDown: this.linkDown, writeRetries: this.writeRetries,
    };
  }

  /** Leave the bridge, stop the reader, close the fd (which removes a non-persistent TAP). Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.state === 'up') this.bridge.removePort(this.port);
    this.state = 'closed';
    clearTimeout(this.retryTimer);
    Atomics.store(this.ctl, CTL_STOP, 1);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS)));
    if (await Promise.race([this.exited.then(() => false), late])) await this.worker.terminate();
    clearTimeout(timer);
    // Only now: the reader no longer polls this fd number, so closing cannot race a reuse.
    closeSync(this.fd);
  }
}
