/**
 * The client end of the console daemon's attach socket (attach-server.ts): `xenpv console`
 * on a host whose console daemon runs on its own (`xenpv consoled` in a real Xen dom0).
 * The daemon is a local root process, but its reply is still bounded and checked.
 */
import { createConnection, type Socket } from 'node:net';
import { XenpvError } from '../../base/index.js';

/** The reply line before the stream starts (an error message is short). */
const MAX_REPLY = 1 << 20;

export interface OpenedConsole {
  /** Paused, so that no byte is lost before the caller listens: `on('data')`, then `resume()`. */
  readonly socket: Socket;
  /** Console bytes that came in the same read as the reply line. */
  readonly first: Buffer;
}

function connectTo(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.removeAllListeners('error');
      s.on('error', () => undefined);
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(new XenpvError('EHOSTDOWN', `no console daemon answers on ${path} (${err.code ?? err.message})`, { path })),
    );
  });
}

/** Send one request and read its reply line; the bytes after it stay unread in `rest`. */
async function request(path: string, method: string, params: Record<string, unknown>): Promise<{ socket: Socket; result: unknown; rest: Buffer }> {
  const socket = await connectTo(path);
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const fail = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onClose = (): void => fail(new XenpvError('ECONNRESET', `the console daemon on ${path} closed the connection`));
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > MAX_REPLY) fail(new XenpvError('EPROTO', `reply from ${path} is too long`));
        return;
      }
      cleanup();
      socket.pause();
      let msg: { ok?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
      try {
        msg = JSON.parse(buf.subarray(0, nl).toString('utf8')) as typeof msg;
      } catch {
        return fail(new XenpvError('EPROTO', `garbage from the console daemon on ${path}`));
      }
      if (msg.ok !== true) {
        const code = typeof msg.error?.code === 'string' ? msg.error.code : 'EIO';
        const message = typeof msg.error?.message === 'string' ? msg.error.message : 'console daemon error';
        return fail(new XenpvError(code, message));
      }
      resolve({ socket, result: msg.result, rest: buf.subarray(nl + 1) });
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(`${JSON.stringify({ id: 1, method, params })}\n`);
  });
}

/** Attach to `domain`'s console 0 (a name or a domid). */
export async function openConsoleSocket(path: string, domain: string): Promise<OpenedConsole> {
  const { socket, rest } = await request(path, 'console', { domain });
  return { socket, first: rest };
}

/** One non-streaming call (`ping`, `list`). */
export async function callConsoleDaemon<T = unknown>(path: string, method: 'ping' | 'list'): Promise<T> {
  const { socket, result } = await request(path, method, {});
  socket.destroy();
  return result as T;
}
