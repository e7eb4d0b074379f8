/**
 * The CLI's end of the control socket (rpc-server.ts). A host that is not running is
 * reported as XenpvError EHOSTDOWN naming the run dir.
 */
import { connect, type Socket } from 'node:net';
import { XenpvError } from '../../base/index.js';
import { controlSocket } from './paths.js';

export class HostClient {
  private buf = '';
  private nextId = 1;
  /** After this request's reply, the connection is a byte stream (console). */
  private streamAfter: number | undefined;
  private streaming = false;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(readonly socket: Socket, readonly runDir: string) {
    socket.setEncoding('utf8');
    socket.on('data', this.onData);
    socket.on('close', () => {
      for (const w of this.waiting.values()) w.reject(new XenpvError('ECONNRESET', `the host (run dir ${runDir}) closed the connection`));
      this.waiting.clear();
    });
  }

  static connect(runDir: string): Promise<HostClient> {
    return new Promise((resolve, reject) => {
      const s = connect(controlSocket(runDir));
      s.once('connect', () => {
        s.removeAllListeners('error');
        s.on('error', () => undefined);
        resolve(new HostClient(s, runDir));
      });
      s.once('error', () =>
        reject(new XenpvError('EHOSTDOWN', `xenpv host is not running (run dir ${runDir}); start it with \`xenpv host start\``, { runDir })),
      );
    });
  }

  private readonly onData = (chunk: string): void => {
    this.buf += chunk;
    let nl: number;
    while (!this.streaming && (nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let msg: { id: number; ok: boolean; result?: unknown; error?: { code: string; message: string } };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        this.socket.destroy(new XenpvError('EPROTO', `garbage from the host's control socket (run dir ${this.runDir})`));
        return;
      }
      const w = this.waiting.get(msg.id);
      if (w === undefined) continue;
      this.waiting.delete(msg.id);
      if (msg.id === this.streamAfter && msg.ok) {
        this.streaming = true;
        this.socket.off('data', this.onData);
      }
      if (msg.ok) w.resolve(msg.result);
      else w.reject(new XenpvError(msg.error?.code ?? 'EIO', msg.error?.message ?? 'host error'));
    }
  };

  call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ id, method, params })}\n`);
    });
  }

  /** Switch this connection to the domain's console byte stream. */
  async console(domain: string): Promise<{ socket: Socket; first: Buffer }> {
    this.streamAfter = this.nextId;
    await this.call('console', { domain });
    this.socket.off('data', this.onData);
    // Bytes that came in the same chunk as the reply line.
    const first = Buffer.from(this.buf, 'utf8');
    this.buf = '';
    this.socket.setEncoding('binary' as BufferEncoding);
    return { socket: this.socket, first };
  }

  close(): void {
    this.socket.end();
  }
}

/** One call on a fresh connection. */
export async function callHost<T = unknown>(runDir: string, method: string, params: Record<string, unknown> = {}): Promise<T> {
  const c = await HostClient.connect(runDir);
  try {
    return await c.call<T>(method, params);
  } finally {
    c.close();
  }
}
