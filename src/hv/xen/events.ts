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
import { readSync, writeSync } from 'node:fs';
import { XenpvError, errorCode, trackResource, type DomId, type EvtchnPort } from '../../base/index.js';
import type { EventOps, EvtchnBinding } from '../platform.js';
import { check, ioc, trace, type Native } from './ffi.js';
import { FdPoller } from './poller.js';

// <xen/sys/evtchn.h>
export const IOCTL_EVTCHN_BIND_VIRQ = ioc('E', 0, 4);
export const IOCTL_EVTCHN_BIND_INTERDOMAIN = ioc('E', 1, 8);
export const IOCTL_EVTCHN_BIND_UNBOUND_PORT = ioc('E', 2, 4);
export const IOCTL_EVTCHN_UNBIND = ioc('E', 3, 4);
export const IOCTL_EVTCHN_NOTIFY = ioc('E', 4, 4);

/** Ports read per read(2); the driver's ring holds more, the next poll gets them. */
const READ_BATCH = 256;

export interface XenEventOptions {
  /** A handler threw: the error and the port. Default: print it; delivery goes on. */
  readonly onError?: (err: unknown, port: EvtchnPort) => void;
  /** The evtchn fd broke (the device went away). */
  readonly onBroken?: (why: string) => void;
}

export class XenEventOps implements EventOps {
  private readonly handlers = new Map<number, { handler: () => void; untrack: () => void }>();
  private readonly poller: FdPoller;
  private readonly readBuf = new Uint8Array(4 * READ_BATCH);
  private closed = false;

  constructor(
    private readonly native: Native,
    private readonly fd: number,
    private readonly options: XenEventOptions = {},
  ) {
    this.poller = new FdPoller(native, fd, () => this.drain(), (rev) => this.options.onBroken?.(`evtchn fd poll revents 0x${rev.toString(16)}`));
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

  /** Ports bound here (diagnostics). */
  get ports(): number[] {
    return [...this.handlers.keys()];
  }

  /** Stop delivery and unbind every port. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const port of [...this.handlers.keys()]) this.unbind(port);
    await this.poller.stop();
  }

  private bind(req: number, args: number[], handler: () => void, what: string): EvtchnBinding {
    if (this.closed) throw new XenpvError('EBADF', 'the event channel device is closed');
    const port = check(this.native, this.native.ioctl(this.fd, req, u32s(args)), `bind event channel (${what})`) as EvtchnPort;
    this.handlers.set(port, { handler, untrack: trackResource('evtchn-port', `xen: port ${port} (${what})`) });
    this.poller.start();
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
    if (this.handlers.size === 0) void this.poller.stop();
  }

  private unmask(ports: readonly number[]): void {
    writeSync(this.fd, u32s(ports));
  }

  /** Read every pending port (the fd is non-blocking), unmask them, run their handlers. */
  private drain(): void {
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.readBuf, 0, this.readBuf.length, null);
      } catch (err) {
        if (errorCode(err) === 'EAGAIN') return;
        this.options.onBroken?.(`evtchn read: ${(err as Error).message}`);
        return;
      }
      const dv = new DataView(this.readBuf.buffer, 0, n - (n % 4));
      const ports: number[] = [];
      for (let off = 0; off < dv.byteLength; off += 4) ports.push(dv.getUint32(off, true));
      const ours = ports.filter((p) => this.handlers.has(p));
      if (ours.length > 0) this.unmask(ours);
      for (const p of ours) this.run(p as EvtchnPort);
      if (n < this.readBuf.length) return;
    }
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
