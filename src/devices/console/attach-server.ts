/**
 * The console daemon's attach socket: how `xenpv console DOM` reaches a console daemon that
 * runs on its own (a real Xen dom0, `xenpv consoled`), where xenconsoled would hand out a pty.
 *
 * One request per connection, one JSON object a line, the same shape as the host's control
 * socket (toolstack/host/rpc-server.ts), so one client speaks to both:
 *
 *   → {"id":1,"method":"console","params":{"domain":"web"}}     name or domid
 *   ← {"id":1,"ok":true,"result":null}         then the console's bytes both ways until either closes
 *   ← {"id":1,"ok":false,"error":{"code":"ENOENT","message":"..."}}          then the end
 *   → {"id":1,"method":"list"}   ← the served consoles (ConsoleDaemon.list)
 *   → {"id":1,"method":"ping"}   ← {"pid":N}
 *
 * The peer is any local process allowed to open the socket (0600: root's): its request is
 * bounded (MAX_REQUEST bytes, one line), malformed ones get EINVAL and the connection ends.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { XenpvError, errorCode, toDomId } from '../../base/index.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { socketAnswers } from '../../xenstore/server/socket.js';
import { parseDomid } from '../../xenbus/paths.js';
import type { ConsoleDaemon } from './daemon.js';

/** A request line longer than this is refused: a domain name is at most a few dozen bytes. */
export const MAX_REQUEST = 4096;
/** How long an attach waits for a just-created domain's console to be picked up. */
export const DEFAULT_ATTACH_WAIT_MS = 5000;
/** Domains scanned by name at most (xl's domid space is 15 bits). */
const MAX_DOMAINS = 32768;

/** The socket's default place: beside the host's control socket in the run dir. */
export const consoleSocket = (runDir: string): string => join(runDir, 'console.sock');

export interface ConsoleServerOptions {
  readonly path: string;
  readonly daemon: ConsoleDaemon;
  /** For names: `/local/domain/<id>/name`. */
  readonly client: XsClient;
  readonly attachWaitMs?: number;
  readonly log?: (msg: string) => void;
}

interface Request {
  readonly id: unknown;
  readonly method: string;
  readonly params: Record<string, unknown>;
}

export class ConsoleAttachServer {
  private readonly sockets = new Set<Socket>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    private readonly options: ConsoleServerOptions,
  ) {}

  /** Listen on `options.path`; refuses (EADDRINUSE) when a live daemon already answers there. */
  static async listen(options: ConsoleServerOptions): Promise<ConsoleAttachServer> {
    if (await socketAnswers(options.path)) throw new XenpvError('EADDRINUSE', `a console daemon already listens on ${options.path}`, { path: options.path });
    await rm(options.path, { force: true });
    let self: ConsoleAttachServer | undefined;
    const server = createServer((sock) => self?.accept(sock));
    self = new ConsoleAttachServer(server, options);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.path, () => resolve());
    });
    // Attaching gives a guest's console input: root's alone, as xenconsoled's ptys are.
    await chmod(options.path, 0o600);
    return self;
  }

  get path(): string {
    return this.options.path;
  }

  private accept(sock: Socket): void {
    if (this.closed) return void sock.destroy();
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0 && buf.length <= MAX_REQUEST) return;
      sock.off('data', onData);
      sock.pause();
      if (nl < 0 || nl > MAX_REQUEST) return this.refuse(sock, null, 'EINVAL', `request longer than ${MAX_REQUEST} bytes`);
      // Bytes after the request line are the first console input: keep them for the stream.
      void this.handle(sock, buf.subarray(0, nl).toString('utf8'), buf.subarray(nl + 1));
    };
    sock.on('data', onData);
  }

  private async handle(sock: Socket, line: string, rest: Buffer): Promise<void> {
    const req = parseRequest(line);
    if (req === undefined) return this.refuse(sock, null, 'EINVAL', 'not a request (one JSON object with a method)');
    try {
      if (req.method === 'console') return await this.attach(sock, req, rest);
      let result: unknown;
      if (req.method === 'ping') result = { pid: process.pid };
      else if (req.method === 'list') result = this.options.daemon.list();
      else return this.refuse(sock, req.id, 'ENOSYS', `unknown method ${req.method.slice(0, 32)}`);
      sock.end(`${JSON.stringify({ id: req.id, ok: true, result })}\n`);
    } catch (err) {
      const code = err instanceof XenpvError ? err.code : 'EIO';
      this.refuse(sock, req.id, code, err instanceof Error ? err.message : String(err));
    }
  }

  private async attach(sock: Socket, req: Request, rest: Buffer): Promise<void> {
    const domain = req.params['domain'];
    if (typeof domain !== 'string' && typeof domain !== 'number') throw new XenpvError('EINVAL', 'missing parameter domain');
    const domid = await this.resolve(String(domain));
    const stream = await this.waitForConsole(domid, sock);
    if (sock.destroyed) return void stream.destroy();
    sock.write(`${JSON.stringify({ id: req.id, ok: true, result: null })}\n`);
    if (rest.length > 0) stream.write(rest);
    sock.pipe(stream).pipe(sock);
    sock.on('close', () => stream.destroy());
    stream.on('close', () => sock.end());
    sock.resume();
    this.options.log?.(`dom${domid}: console attached`);
  }

  /** The console of a domain created a moment ago may not be served yet: wait a little. */
  private async waitForConsole(domid: number, sock: Socket): Promise<Duplex> {
    const end = Date.now() + (this.options.attachWaitMs ?? DEFAULT_ATTACH_WAIT_MS);
    for (;;) {
      try {
        return this.options.daemon.attach(domid);
      } catch (err) {
        if (errorCode(err) !== 'ENOENT' || Date.now() > end || sock.destroyed || this.closed) throw err;
      }
      await this.options.daemon.idle();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A domid, or a name looked up as xl does: `/local/domain/<id>/name`, exactly one match. */
  private async resolve(domain: string): Promise<number> {
    const asId = /^[0-9]{1,5}$/.test(domain) ? toDomId(Number(domain)) : undefined;
    if (asId !== undefined) return asId;
    const client = this.options.client;
    const ids = (await client.directory('/local/domain').catch(() => [] as string[])).slice(0, MAX_DOMAINS);
    const found: number[] = [];
    for (const n of ids) {
      const d = parseDomid(n);
      if (d === undefined) continue;
      const name = await client.readString(`/local/domain/${d}/name`).catch(() => undefined);
      if (name === domain) found.push(d);
    }
    if (found.length !== 1) {
      const why = found.length === 0 ? 'no domain' : `${found.length} domains`;
      throw new XenpvError('ENOENT', `${why} named '${domain.slice(0, 64)}'`, { domain: domain.slice(0, 64) });
    }
    return found[0]!;
  }

  private refuse(sock: Socket, id: unknown, code: string, message: string): void {
    if (!sock.destroyed) sock.end(`${JSON.stringify({ id, ok: false, error: { code, message } })}\n`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    await rm(this.options.path, { force: true });
  }
}

function parseRequest(line: string): Request | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o['method'] !== 'string') return undefined;
  const p = o['params'];
  const params = typeof p === 'object' && p !== null && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
  return { id: o['id'] ?? null, method: o['method'], params };
}
