/**
 * The unix-socket transport, and where the socket is: as Xen's clients find it
 * (xenstore-common.h `xenstore_daemon_path`): `$XENSTORED_PATH`, else
 * `$XENSTORED_RUNDIR/socket`; with neither set, xenpv's own daemon where `xenpv xenstored`
 * listens by default (server/socket.ts) if it is there, else Xen's `/var/run/xenstored/socket`.
 */
import { existsSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { XenpvError, errorCode, trackResource } from '../../base/index.js';
import { defaultSocketPath } from '../server/socket.js';
import type { StoreTransport } from '../../hv/platform.js';
import { XsClient, type XsClientOptions } from './client.js';

/** XEN_RUN_STORED as Debian's libxenstore is built with. */
export const DEFAULT_XENSTORED_RUNDIR = '/var/run/xenstored';

type Env = Readonly<Record<string, string | undefined>>;

/** A set variable counts even when empty, as getenv() does in the C code. */
export function xenstoredSocketPath(env: Env = process.env): string {
  const path = env['XENSTORED_PATH'];
  if (path !== undefined) return path;
  const rundir = env['XENSTORED_RUNDIR'];
  if (rundir !== undefined) return `${rundir}/socket`;
  const ours = defaultSocketPath({ ...env, XENSTORED_PATH: undefined, XENSTORED_RUNDIR: undefined });
  return existsSync(ours) ? ours : `${DEFAULT_XENSTORED_RUNDIR}/socket`;
}

class SocketTransport implements StoreTransport {
  private dataHandler: ((chunk: Uint8Array) => void) | undefined;
  private early: Uint8Array[] = [];
  private readonly closeHandlers: ((reason?: Error) => void)[] = [];
  private closed = false;
  private closeReason: Error | undefined;
  private readonly untrack: () => void;

  constructor(
    private readonly sock: Socket,
    path: string,
  ) {
    this.untrack = trackResource('socket', `xenstored ${path}`);
    sock.on('data', (chunk: Buffer) => {
      if (this.dataHandler !== undefined) this.dataHandler(chunk);
      else this.early.push(chunk); // arrived before onData(): kept, in order
    });
    sock.on('error', (err) => this.finish(err));
    sock.on('close', () => this.finish());
  }

  write(bytes: Uint8Array): void {
    if (this.closed) throw new XenpvError('EPIPE', 'xenstore socket is closed');
    this.sock.write(bytes);
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    this.dataHandler = handler;
    const early = this.early;
    this.early = [];
    for (const chunk of early) handler(chunk);
  }

  onClose(handler: (reason?: Error) => void): void {
    if (this.closed) handler(this.closeReason);
    else this.closeHandlers.push(handler);
  }

  dispose(): void {
    this.sock.destroy();
    this.finish();
  }

  private finish(reason?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.untrack();
    this.sock.destroy();
    for (const h of this.closeHandlers.splice(0)) h(reason);
  }
}

/** Connect to a xenstored unix socket. Fails with the system's code (ENOENT, ECONNREFUSED, ...). */
export function connectSocket(path: string): Promise<StoreTransport> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path });
    const onError = (err: Error): void => {
      sock.destroy();
      const code = errorCode(err) ?? 'EIO';
      reject(new XenpvError(code, `cannot connect to xenstored at ${path}: ${err.message}`, { path }, { cause: err }));
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(new SocketTransport(sock, path));
    });
  });
}

/** Connect to the xenstored the environment names (or `options.path`). */
export async function connectXenstored(options: XsClientOptions & { path?: string; env?: Env } = {}): Promise<XsClient> {
  const path = options.path ?? xenstoredSocketPath(options.env);
  return new XsClient(await connectSocket(path), { label: `xenstore client ${path}`, ...options });
}
