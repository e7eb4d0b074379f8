/**
 * Event channels on a real Xen domain, through Linux's /dev/xen/evtchn:
 * bind with the IOCTL_EVTCHN_BIND_* ioctls, notify with IOCTL_EVTCHN_NOTIFY, unbind with
 * IOCTL_EVTCHN_UNBIND; a pending port is read from the fd as a u32, and the driver keeps it
 * masked until the port is written back to the fd (the unmask).
 *
 * Delivery matches the sim platform's upcall: a port read from the fd is unmasked before its
 * handler runs, so an event raised while the handler works is delivered again, and handlers
 * re-check their rings (ring.h's final check) instead of relying on one event per request.
 */
import { writeSync } from 'node:fs';
import { XenpvError, trackResource, type DomId, type EvtchnPort } from '../../base/index.js';
import type { EventOps, EvtchnBinding } from '../platform.js';
import { check, ioc, trace, type Native } from './ffi.js';
import { FdReader } from './poller.js';

// <xen/sys/evtchn.h>
export const IOCTL_EVTCHN_BIND_VIRQ = ioc('E', 0, 4);
export const IOCTL_EVTCHN_BIND_INTERDOMAIN = ioc('E', 1, 8);
export const IOCTL_EVTCHN_BIND_UNBOUND_PORT = ioc('E', 2, 4);
export const IOCTL_EVTCHN_UNBIND = ioc('E', 3, 4);
export const IOCTL_EVTCHN_NOTIFY = ioc('E', 4, 4);
/**
 * Linux ≥ 6.6 (<xen/evtchn.h>, not in Xen 4.17's copy of the header): bind a port that is
 * already open in this domain without any EVTCHNOP; unbinding leaves it open. Older kernels
 * answer ENOTTY/ENOSYS, which `adopt` reports as ENOSYS.
 */
export const IOCTL_EVTCHN_BIND_STATIC = ioc('E', 7, 4);

/** Ports read per read(2); the driver's ring holds more, the next read gets them. */
const READ_BATCH = 256;

export interface XenEventOptions {
  /** A handler threw: the error and the port. Default: print it; delivery goes on. */
  readonly onError?: (err: unknown, port: EvtchnPort) => void;
  /** The evtchn fd broke (the device went away). */
  readonly onBroken?: (why: string) => void;
}

export class XenEventOps implements EventOps {
  private readonly handlers = new Map<number, { handler: () => void; untrack: () => void }>();
  private readonly reader: FdReader;
  private closed = false;

  constructor(
    private readonly native: Native,
    /** /dev/xen/evtchn, opened blocking: its reads run on the thread pool (poller.ts). */
    private readonly fd: number,
    /** Our domid: the stop wake-up is an event on a loopback channel to ourselves. */
    private readonly self: DomId,
    private readonly options: XenEventOptions = {},
  ) {
    this.reader = new FdReader(
      fd,
      4 * READ_BATCH,
      (b) => this.deliver(b),
      (err) => this.options.onBroken?.(`evtchn read: ${err.message}`),
      () => this.options.onBroken?.('evtchn read: end of file'),
    );
  }

  allocUnbound(remote: DomId, handler: () => void): EvtchnBinding {
    return this.bind(IOCTL_EVTCHN_BIND_UNBOUND_PORT, [remote], handler, `unbound for dom${remote}`);
  }

  bindInterdomain(remote: DomId, remotePort: EvtchnPort, handler: () => void): EvtchnBinding {
    return this.bind(IOCTL_EVTCHN_BIND_INTERDOMAIN, [remote, remotePort], handler, `dom${remote} port ${remotePort}`);
  }

  bindVirq(virq: number, handler: () => void): EvtchnBinding {
    return this.bind(IOCTL_EVTCHN_BIND_VIRQ, [virq], handler, `virq ${virq}`);
  }

  /**
   * Take a port the toolstack opened for us (EventOps.adopt) through IOCTL_EVTCHN_BIND_STATIC.
   * A port the kernel itself has bound (a Linux domU's own xenstore and console ports) is
   * refused by the kernel (EBUSY): Linux gives userspace no way to share it.
   */
  adopt(port: EvtchnPort, handler: () => void): EvtchnBinding {
    if (!Number.isInteger(port) || port <= 0 || port > 0xffffffff) throw new XenpvError('EINVAL', `bad port ${port}`, { port });
    if (this.handlers.has(port)) throw new XenpvError('EEXIST', `port ${port} already bound here`, { port });
    try {
      return this.bind(IOCTL_EVTCHN_BIND_STATIC, [port], handler, `adopted port ${port}`, true);
    } catch (err) {
      if (err instanceof XenpvError && (err.code === 'ENOTTY' || err.code === 'ENOSYS')) {
        throw new XenpvError('ENOSYS', `this kernel's /dev/xen/evtchn cannot adopt port ${port} (IOCTL_EVTCHN_BIND_STATIC needs Linux 6.6 or later)`, { port }, { cause: err });
      }
      throw err;
    }
  }

  /** Ports bound here (diagnostics). */
  get ports(): number[] {
    return [...this.handlers.keys()];
  }

  /** Stop delivery and unbind every port. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const port of [...this.handlers.keys()]) this.unbind(port);
    await this.stopReader();
  }

  /** Stop reading; a read blocked in the pool is answered by a loopback event. */
  private async stopReader(): Promise<void> {
    const ports: number[] = [];
    await this.reader.stop(() => {
      const a = check(this.native, this.native.ioctl(this.fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, u32s([this.self])), 'wake: bind unbound');
      ports.push(a);
      const b = check(this.native, this.native.ioctl(this.fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, u32s([this.self, a])), 'wake: bind loopback');
      ports.push(b);
      this.native.ioctl(this.fd, IOCTL_EVTCHN_NOTIFY, u32s([b]));
    });
    for (const p of ports) this.native.ioctl(this.fd, IOCTL_EVTCHN_UNBIND, u32s([p]));
  }

  private bind(req: number, args: number[], handler: () => void, what: string, given = false): EvtchnBinding {
    if (this.closed) throw new XenpvError('EBADF', 'the event channel device is closed');
    const rc = check(this.native, this.native.ioctl(this.fd, req, u32s(args)), `bind event channel (${what})`);
    // BIND_STATIC returns 0, not the port: the port is the one asked for.
    const port = (given ? args[0]! : rc) as EvtchnPort;
    this.handlers.set(port, { handler, untrack: trackResource('evtchn-port', `xen: port ${port} (${what})`) });
    this.reader.start();
    let live = true;
    return {
      port,
      notify: () => {
        if (live) check(this.native, this.native.ioctl(this.fd, IOCTL_EVTCHN_NOTIFY, u32s([port])), 'IOCTL_EVTCHN_NOTIFY', { port });
      },
      unmask: () => {
        if (live) this.unmask([port]);
      },
      dispose: () => {
        if (!live) return;
        live = false;
        this.unbind(port);
      },
    };
  }

  private unbind(port: number): void {
    const h = this.handlers.get(port);
    if (h === undefined) return;
    this.handlers.delete(port);
    h.untrack();
    this.native.ioctl(this.fd, IOCTL_EVTCHN_UNBIND, u32s([port]));
    if (this.handlers.size === 0 && !this.closed) void this.stopReader();
  }

  private unmask(ports: readonly number[]): void {
    writeSync(this.fd, u32s(ports));
  }

  /** Ports read from the device: unmask ours, then run their handlers. */
  private deliver(bytes: Uint8Array): void {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length - (bytes.length % 4));
    const ours: number[] = [];
    for (let off = 0; off < dv.byteLength; off += 4) {
      const port = dv.getUint32(off, true);
      if (this.handlers.has(port) && !ours.includes(port)) ours.push(port);
    }
    if (ours.length === 0) return;
    this.unmask(ours);
    for (const p of ours) this.run(p as EvtchnPort);
  }

  private run(port: EvtchnPort): void {
    const h = this.handlers.get(port);
    if (h === undefined) return;
    trace(`event port ${port}`);
    try {
      h.handler();
    } catch (err) {
      if (this.options.onError !== undefined) this.options.onError(err, port);
      else console.error(`xenpv: event channel ${port} handler failed:`, err);
    }
  }
}

function u32s(values: readonly number[]): Uint8Array {
  const b = new Uint8Array(4 * values.length);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => dv.setUint32(4 * i, v, true));
  return b;
}
