/**
 * The unix-socket transport: tools and dom0 processes connect here; every socket connection is
 * dom0 (privileged), as with C xenstored's /var/run/xenstored/socket.
 *
 * Where the socket lives (DESIGN.md §1, Xen's clients): `XENSTORED_PATH`, else
 * `$XENSTORED_RUNDIR/socket`, else `/run/xenpv/xenstored/socket` when running as root, else
 * `$XDG_RUNTIME_DIR/xenpv/xenstored/socket` (or the temp dir) so an unprivileged user can run it.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { XenpvError } from '../../base/index.js';
import type { Connection, Transport } from './connection.js';
import type { Xenstored } from './xenstored.js';

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XENSTORED_PATH !== undefined && env.XENSTORED_PATH !== '') return env.XENSTORED_PATH;
  if (env.XENSTORED_RUNDIR !== undefined && env.XENSTORED_RUNDIR !== '') return join(env.XENSTORED_RUNDIR, 'socket');
  if (process.getuid?.() === 0) return '/run/xenpv/xenstored/socket';
  return join(env.XDG_RUNTIME_DIR ?? tmpdir(), 'xenpv', 'xenstored', 'socket');
}

class SocketTransport implements Transport {
  readonly kind = 'socket' as const;

  constructor(private readonly sock: Socket) {}

  write(bytes: Uint8Array): void {
    this.sock.write(bytes);
  }

  writable(): boolean {
    return !this.sock.destroyed && !this.sock.writableNeedDrain;
  }

  pauseInput(): void {
    this.sock.pause();
  }

  resumeInput(): void {
    if (!this.sock.destroyed) this.sock.resume();
  }

  close(reason?: 'proto' | 'ringidx' | 'comm'): void {
    // A bad client is cut off at once; a clean close lets queued bytes go first.
    if (reason !== undefined) this.sock.destroy();
    else this.sock.end();
  }
}

export interface SocketListener {
  readonly path: string;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Whether something accepts connections on the unix socket at `path` (a live daemon, not a
 * stale socket file); false after `timeoutMs` without an answer.
 */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const timer = setTimeout(() => done(false), timeoutMs);
    const done = (v: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Listen on `path` (a stale socket file is replaced; a live one is EADDRINUSE). */
export async function listenSocket(d: Xenstored, path: string): Promise<SocketListener> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (existsSync(path)) {
    if (await socketAnswers(path)) throw new XenpvError('EADDRINUSE', `a xenstored already listens on ${path}`, { path });
    unlinkSync(path);
  }
  const server = createServer((sock) => attachSocket(d, sock));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return {
    path,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const c of [...d.connections]) if (c.transport.kind === 'socket') d.transportClosed(c);
      }),
  };
}

function attachSocket(d: Xenstored, sock: Socket): Connection {
  const conn = d.attach(new SocketTransport(sock), 0);
  sock.on('data', (chunk) => d.input(conn, chunk));
  sock.on('drain', () => d.writable(conn));
  sock.on('close', () => d.transportClosed(conn));
  sock.on('error', () => sock.destroy());
  return conn;
}
