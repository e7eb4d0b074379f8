/**
 * The store connection on a real Xen domain: the xenstored unix socket where there is one
 * (dom0: found as Xen's clients find it, `$XENSTORED_PATH`, else `$XENSTORED_RUNDIR/socket`,
 * else /run/xenstored/socket or /var/run/xenstored/socket), otherwise /dev/xen/xenbus, the
 * kernel's relay of the same wire protocol (every domU has it).
 *
 * /dev/xen/xenbus takes one whole message per write and hands out replies and watch events
 * through read(2), which blocks: its reads run on the thread pool (poller.ts).
 */
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { XenpvError, trackResource } from '../../base/index.js';
import type { StoreTransport } from '../platform.js';
import type { Native } from './ffi.js';
import { FdReader } from './poller.js';
import { XenbusWriteGate } from './xenbus-gate.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Where a Xen client would find the daemon's socket, or undefined when none exists. */
export function storeSocketPath(env: Env = process.env): string | undefined {
  if (env['XENSTORED_PATH'] !== undefined) return env['XENSTORED_PATH'];
  if (env['XENSTORED_RUNDIR'] !== undefined) return `${env['XENSTORED_RUNDIR']}/socket`;
  return ['/run/xenstored/socket', '/var/run/xenstored/socket'].find((p) => existsSync(p));
}

abstract class BaseTransport implements StoreTransport {
  private dataHandler: ((chunk: Uint8Array) => void) | undefined;
  private early: Uint8Array[] = [];
  private readonly closeHandlers: ((reason?: Error) => void)[] = [];
  private closedWith: { reason: Error | undefined } | undefined;
  private readonly untrack: () => void;

  constructor(what: string) {
    this.untrack = trackResource('socket', what);
  }

  abstract write(bytes: Uint8Array): void;
  abstract dispose(): void;

  onData(handler: (chunk: Uint8Array) => void): void {
    this.dataHandler = handler;
    for (const chunk of this.early.splice(0)) handler(chunk);
  }

  onClose(handler: (reason?: Error) => void): void {
    if (this.closedWith !== undefined) handler(this.closedWith.reason);
    else this.closeHandlers.push(handler);
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  protected deliver(chunk: Uint8Array): void {
    if (this.dataHandler !== undefined) this.dataHandler(chunk);
    else this.early.push(chunk);
  }

  protected finish(reason?: Error): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = { reason };
    this.untrack();
    for (const h of this.closeHandlers.splice(0)) h(reason);
  }
}

class SocketStore extends BaseTransport {
  constructor(private readonly sock: Socket, path: string) {
    super(`xenstored ${path}`);
    sock.on('data', (chunk: Buffer) => this.deliver(chunk));
    sock.on('error', (err) => this.end(err));
    sock.on('close', () => this.end());
  }

  write(bytes: Uint8Array): void {
    if (this.closed) throw new XenpvError('EPIPE', 'xenstore socket is closed');
    this.sock.write(bytes);
  }

  dispose(): void {
    this.end();
  }

  private end(reason?: Error): void {
    this.sock.destroy();
    this.finish(reason);
  }
}

class XenbusDeviceStore extends BaseTransport {
  private readonly reader: FdReader;
  /** WATCH/UNWATCH wait for earlier replies: the driver deadlocks otherwise (xenbus-gate.ts). */
  private readonly gate: XenbusWriteGate;

  constructor(private readonly fd: number) {
    super('/dev/xen/xenbus');
    this.gate = new XenbusWriteGate((msg) => writeSync(this.fd, msg));
    const eof = (): void => this.close(new XenpvError('EPIPE', '/dev/xen/xenbus: end of file'));
    this.reader = new FdReader(fd, 4096 + 16, (b) => this.fromDevice(b), (err) => this.close(err), eof);
    this.reader.start();
  }

  write(bytes: Uint8Array): void {
    if (this.closed) throw new XenpvError('EPIPE', 'xenbus device is closed');
    this.gate.send(bytes);
  }

  private fromDevice(bytes: Uint8Array): void {
    this.deliver(bytes);
    if (this.closed) return;
    try {
      // Replies read: a WATCH held behind them may go now.
      this.gate.received(bytes);
    } catch (err) {
      this.close(err instanceof Error ? err : new Error(String(err)));
    }
  }

  dispose(): void {
    this.close();
  }

  private close(reason?: Error): void {
    if (this.closed) return;
    this.finish(reason);
    // A read blocked in the pool ends when the store answers something: ask it for "/".
    void this.reader.stop(() => writeSync(this.fd, WAKE_REQUEST)).then(() => closeSync(this.fd));
  }
}

/** XS_DIRECTORY "/" with a req_id no client of ours uses: its reply only unblocks a read. */
const WAKE_REQUEST = new Uint8Array([1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0, 2, 0, 0, 0, 0x2f, 0]);

/** Connect to the store: the socket if there is one, else /dev/xen/xenbus. */
export async function openXenStore(_native: Native, env: Env = process.env): Promise<StoreTransport> {
  const path = storeSocketPath(env);
  if (path !== undefined) {
    const sock = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', (err) => reject(new XenpvError('ECONNREFUSED', `xenstored at ${path}: ${err.message}`, { path }, { cause: err })));
    });
    return new SocketStore(sock, path);
  }
  if (!existsSync('/dev/xen/xenbus')) throw new XenpvError('ENOENT', 'no xenstored socket and no /dev/xen/xenbus');
  return new XenbusDeviceStore(openSync('/dev/xen/xenbus', 'r+'));
}
