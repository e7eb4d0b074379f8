/**
 * Test support (not a test): an in-process client that talks to a `Xenstored` through a local
 * transport, synchronously. Used by the server's tests and available to other layers' tests.
 * And a raw client on the daemon's Unix socket, for tests that need real connections.
 */
import { connect, type Socket } from 'node:net';
import {
  decodeErrorPayload,
  decodeSingleString,
  decodeStringList,
  decodeWatchEvent,
  encodeMessage,
  encodeRequest,
  FrameParser,
  latin1,
  XsOp,
  type XsMessage,
  type XsRequest,
} from '../protocol/index.js';
import type { Connection, Transport } from './connection.js';
import type { Xenstored } from './xenstored.js';

export class LocalTransport implements Transport {
  readonly kind = 'local' as const;
  readonly parser = new FrameParser();
  readonly received: XsMessage[] = [];
  paused = false;
  closedWith: string | undefined;
  /** When false, the transport refuses output (a reader that never reads). */
  accepting = true;

  write(bytes: Uint8Array): void {
    this.received.push(...this.parser.push(bytes).messages);
  }

  writable(): boolean {
    return this.accepting && this.closedWith === undefined;
  }

  pauseInput(): void {
    this.paused = true;
  }

  resumeInput(): void {
    this.paused = false;
  }

  close(reason?: string): void {
    this.closedWith = reason ?? 'closed';
  }
}

export type Reply = { ok: true; type: number; payload: Uint8Array } | { ok: false; error: string };

let nextReq = 1;

export class TestClient {
  readonly transport = new LocalTransport();
  readonly conn: Connection;
  /** Watch events received, in order: [path, token]. */
  readonly events: [string, string][] = [];

  constructor(
    readonly d: Xenstored,
    readonly domid = 0,
  ) {
    this.conn = d.attach(this.transport, domid);
  }

  /** Send raw bytes (possibly malformed). */
  raw(bytes: Uint8Array): void {
    this.d.input(this.conn, bytes);
  }

  request(req: XsRequest, txId = 0): Reply {
    const { type, payload } = encodeRequest(req);
    const reqId = nextReq++;
    this.d.input(this.conn, encodeMessage({ type, reqId, txId, payload }));
    return this.takeReply(reqId);
  }

  private takeReply(reqId: number): Reply {
    let reply: Reply | undefined;
    const rest: XsMessage[] = [];
    for (const m of this.transport.received.splice(0)) {
      if (m.type === XsOp.watchEvent) {
        const ev = decodeWatchEvent(m.payload);
        if (ev !== undefined) this.events.push([ev.path, ev.token]);
      } else if (m.reqId === reqId && reply === undefined) {
        reply = m.type === XsOp.error ? { ok: false, error: decodeErrorPayload(m.payload).name } : { ok: true, type: m.type, payload: m.payload };
      } else rest.push(m);
    }
    this.transport.received.push(...rest);
    return reply ?? { ok: false, error: 'NO-REPLY' };
  }

  /** Collect events queued since the last request. */
  drainEvents(): [string, string][] {
    this.takeReply(-1);
    return this.events.splice(0);
  }

  // Convenience: a result as a string ("value", "OK", or the error name).

  read(path: string, tx = 0): string {
    return str(this.request({ op: 'read', path }, tx));
  }

  write(path: string, value: string, tx = 0): string {
    return str(this.request({ op: 'write', path, value: new Uint8Array(Buffer.from(value, 'latin1')) }, tx));
  }

  mkdir(path: string, tx = 0): string {
    return str(this.request({ op: 'mkdir', path }, tx));
  }

  rm(path: string, tx = 0): string {
    return str(this.request({ op: 'rm', path }, tx));
  }

  ls(path: string, tx = 0): string[] | string {
    const r = this.request({ op: 'directory', path }, tx);
    return r.ok ? decodeStringList(r.payload) : r.error;
  }

  getPerms(path: string, tx = 0): string {
    const r = this.request({ op: 'getPerms', path }, tx);
    return r.ok ? decodeStringList(r.payload).join(',') : r.error;
  }

  setPerms(path: string, perms: string, tx = 0): string {
    const list = perms.split(',').map((p) => ({ access: p[0] as 'n' | 'r' | 'w' | 'b', domid: Number(p.slice(1)) }));
    return str(this.request({ op: 'setPerms', path, perms: list }, tx));
  }

  watch(path: string, token: string, depth?: number): string {
    return str(this.request({ op: 'watch', path, token, ...(depth === undefined ? {} : { depth }) }));
  }

  start(): number {
    const r = this.request({ op: 'transactionStart' });
    if (!r.ok) throw new Error(`transaction start: ${r.error}`);
    return Number(decodeSingleString(r.payload));
  }

  end(tx: number, commit = true): string {
    return str(this.request({ op: 'transactionEnd', commit }, tx));
  }
}

export function str(r: Reply): string {
  return r.ok ? latin1(r.payload).replace(/\0$/, '') : r.error;
}

/**
 * A raw client on the daemon's Unix socket: frames requests and matches replies by req_id.
 * When the connection goes, `dead` is set, `closed` resolves and every pending call resolves
 * "CLOSED" (an XS_ERROR), so a test writing through a daemon it kills never hangs.
 */
export class SocketTestClient {
  private readonly parser = new FrameParser();
  private readonly waiting = new Map<number, (m: XsMessage) => void>();
  private nextId = 1;
  dead = false;
  readonly closed: Promise<void>;

  constructor(readonly sock: Socket) {
    sock.on('data', (c) => {
      for (const m of this.parser.push(c).messages) this.waiting.get(m.reqId)?.(m);
    });
    sock.on('error', () => {});
    this.closed = new Promise((resolve) =>
      sock.once('close', () => {
        this.dead = true;
        for (const w of this.waiting.values()) w({ type: XsOp.error, reqId: 0, txId: 0, payload: new Uint8Array(Buffer.from('CLOSED')) });
        this.waiting.clear();
        resolve();
      }),
    );
  }

  static open(path: string): Promise<SocketTestClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new SocketTestClient(s)));
      s.once('error', reject);
    });
  }

  /** Send `req`; the reply's payload as text, without its trailing NUL. */
  call(req: XsRequest): Promise<string> {
    const reqId = this.nextId++;
    const { type, payload } = encodeRequest(req);
    return new Promise((resolve) => {
      this.waiting.set(reqId, (m) => resolve(latin1(m.payload).replace(/\0$/, '')));
      this.sock.write(encodeMessage({ type, reqId, txId: 0, payload }));
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
