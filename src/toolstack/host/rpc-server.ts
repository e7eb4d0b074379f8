/**
 * The host daemon's control socket: one JSON object a line each way.
 *
 *   → {"id":1,"method":"list","params":{}}
 *   ← {"id":1,"ok":true,"result":[...]}      or  {"id":1,"ok":false,"error":{"code":"ESRCH","message":"..."}}
 *
 * `console` is the exception: after its `ok` line the connection carries the guest's console
 * bytes both ways until either side closes (the console daemon's attach stream).
 * Requests are bounded (1 MiB a line); a malformed line gets an EINVAL answer, never a crash.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { chmod, rm } from 'node:fs/promises';
import { SHUTDOWN_crash } from '../../abi/sched.js';
import { XenpvError } from '../../base/index.js';
import { loadDomainConfig } from '../config/index.js';
import type { Host } from './host.js';
import { accounting, type HostAccounting } from './views.js';

const MAX_LINE = 1 << 20;

type Params = Record<string, unknown>;
type Handler = (p: Params) => Promise<unknown> | unknown;

function str(p: Params, k: string): string {
  const v = p[k];
  if (typeof v !== 'string' && typeof v !== 'number') throw new XenpvError('EINVAL', `missing parameter ${k}`);
  return String(v);
}

function strings(p: Params, k: string): string[] {
  const v = p[k];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new XenpvError('EINVAL', `parameter ${k} must be a list of strings`);
  return v as string[];
}

export interface ControlServer {
  readonly server: Server;
  /** Resolves when a `stop` request arrived. */
  readonly stopped: Promise<void>;
  close(): Promise<void>;
}

export function methods(host: Host, baseFrames: number, stop: () => void): Record<string, Handler> {
  return {
    ping: () => ({ pid: process.pid }),
    create: async (p) => {
      const path = str(p, 'config');
      const cwd = typeof p.cwd === 'string' ? p.cwd : process.cwd();
      const abs = isAbsolute(path) ? path : resolve(cwd, path);
      const overrides = p.overrides === undefined ? [] : strings(p, 'overrides');
      const cfg = await loadDomainConfig(abs, { overrides });
      const d = await host.create(cfg, { paused: p.paused === true, baseDir: dirname(abs) });
      return { domid: d.domid, name: cfg.name, warnings: cfg.warnings.map((w) => `${w.source}:${w.line}:${w.col}: ${w.message}`) };
    },
    destroy: async (p) => host.destroy(str(p, 'domain')),
    shutdown: async (p) => host.shutdown(str(p, 'domain'), p.reboot === true ? 'reboot' : 'poweroff', typeof p.waitMs === 'number' ? p.waitMs : undefined),
    pause: (p) => host.pause(str(p, 'domain')),
    unpause: (p) => host.unpause(str(p, 'domain')),
    list: () => host.list(),
    domid: (p) => host.lookup(str(p, 'domain')).domid,
    info: () => host.info(),
    uplinks: () => host.uplinks.list(),
    'vcpu-list': (p) => host.vcpuList(p.domain === undefined ? undefined : str(p, 'domain')),
    'vcpu-pin': (p) => host.vcpuPin(str(p, 'domain'), str(p, 'vcpu'), str(p, 'cpus')),
    'block-attach': (p) => host.devices.blockAttach(str(p, 'domain'), strings(p, 'spec'), typeof p.cwd === 'string' ? p.cwd : undefined),
    'block-detach': (p) => host.devices.blockDetach(str(p, 'domain'), str(p, 'vdev'), p.force === true),
    'block-list': (p) => host.devices.blockList(str(p, 'domain')),
    'network-attach': (p) => host.devices.networkAttach(str(p, 'domain'), strings(p, 'spec')),
    'network-detach': (p) => host.devices.networkDetach(str(p, 'domain'), str(p, 'which')),
    'network-list': (p) => host.devices.networkList(str(p, 'domain')),
    domstats: (p) => {
      const doms = p.domain === undefined ? [...host.domains.values()] : [host.lookup(str(p, 'domain'))];
      return doms.map((d) => ({ name: d.config.name, domid: d.domid, stats: { ...domainStats(host, d.domid), ...host.devices.stats(d) } }));
    },
    accounting: async (): Promise<HostAccounting> => accounting(host, baseFrames),
    stop: () => void setImmediate(stop),
  };
}

function domainStats(host: Host, domid: number): Record<string, number | string> {
  const info = host.hv.info(domid);
  // virDomainState: 1 running, 3 paused, 4 shutting down, 6 crashed.
  const crashed = info?.state === 'shutdown' && info.shutdownCode === SHUTDOWN_crash;
  const state = crashed ? 6 : { running: 1, paused: 3, shutdown: 4, dying: 4 }[info?.state ?? 'dying'];
  return {
    'state.state': state,
    'state.reason': info?.shutdownCode ?? 0,
    'balloon.current': (info?.memoryPages ?? 0) * 4,
    'balloon.maximum': (info?.memoryPages ?? 0) * 4,
    'vcpu.current': info?.vcpus ?? 0,
    'vcpu.maximum': info?.vcpus ?? 0,
  };
}

function reply(sock: Socket, id: unknown, result: { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } }): void {
  if (!sock.destroyed) sock.write(`${JSON.stringify({ id, ...result })}\n`);
}

function errorOf(err: unknown): { code: string; message: string } {
  if (err instanceof XenpvError) return { code: err.code, message: err.message };
  return { code: 'EIO', message: err instanceof Error ? err.message : String(err) };
}

async function handleLine(host: Host, table: Record<string, Handler>, sock: Socket, line: string): Promise<boolean> {
  let req: { id?: unknown; method?: unknown; params?: unknown };
  try {
    req = JSON.parse(line) as typeof req;
  } catch {
    reply(sock, null, { ok: false, error: { code: 'EINVAL', message: 'not JSON' } });
    return false;
  }
  const params = (typeof req.params === 'object' && req.params !== null ? req.params : {}) as Params;
  if (req.method === 'console') {
    try {
      const stream = await host.consoleAttach(str(params, 'domain'));
      reply(sock, req.id, { ok: true, result: null });
      sock.pipe(stream).pipe(sock);
      sock.on('close', () => stream.destroy());
      stream.on('close', () => sock.end());
      return true;
    } catch (err) {
      reply(sock, req.id, { ok: false, error: errorOf(err) });
      return false;
    }
  }
  const h = typeof req.method === 'string' && Object.hasOwn(table, req.method) ? table[req.method] : undefined;
  if (h === undefined) {
    reply(sock, req.id, { ok: false, error: { code: 'ENOSYS', message: `unknown method ${String(req.method)}` } });
    return false;
  }
  try {
    reply(sock, req.id, { ok: true, result: (await h(params)) ?? null });
  } catch (err) {
    reply(sock, req.id, { ok: false, error: errorOf(err) });
  }
  return false;
}

function serve(host: Host, table: Record<string, Handler>, sock: Socket): void {
  let buf = '';
  let streaming = false;
  let chain = Promise.resolve();
  const onData = (chunk: Buffer): void => {
    if (streaming) return;
    buf += chunk.toString('utf8');
    if (buf.length > MAX_LINE) {
      sock.destroy();
      return;
    }
    let nl: number;
    while (!streaming && (nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      // One request at a time per connection, so replies keep their order.
      chain = chain.then(async () => {
        if (await handleLine(host, table, sock, line)) {
          streaming = true;
          sock.off('data', onData);
        }
      });
    }
  };
  sock.on('data', onData);
  sock.on('error', () => undefined);
}

export async function listenControl(host: Host, path: string, baseFrames: number): Promise<ControlServer> {
  await rm(path, { force: true });
  let stopResolve!: () => void;
  const stopped = new Promise<void>((r) => (stopResolve = r));
  const table = methods(host, baseFrames, () => stopResolve());
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    serve(host, table, sock);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => res());
  });
  // Whoever can talk to this socket can create domains from any file the host can read.
  await chmod(path, 0o600);
  return {
    server,
    stopped,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(path, { force: true });
    },
  };
}
