/**
 * The console daemon's attach socket against the sim hypervisor and an in-process xenstored:
 * a client attaches by name or domid, gets the buffered boot output then live output, types
 * input the guest reads, is refused politely (EBUSY, ENOENT, EINVAL, ENOSYS), and sees the
 * stream end when the domain is released.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNoLeaks, errorCode } from '../../base/index.js';
import type { Hypervisor } from '../../hv/sim/hypervisor.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import { startTestStore, type TestStore } from '../../xenbus/testing.js';
import { callConsoleDaemon, openConsoleSocket } from './attach-client.js';
import { ConsoleAttachServer, MAX_REQUEST } from './attach-server.js';
import { ConsoleDaemon } from './daemon.js';
import { createGuest, eventually, type GuestConsole } from './test-support.js';

interface World {
  readonly hv: Hypervisor;
  readonly store: TestStore;
  readonly daemon: ConsoleDaemon;
  readonly path: string;
}

async function withServer(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-consock-'));
  await withHypervisor(async (hv) => {
    const store = startTestStore();
    hv.dom0.events.startAsync();
    const client = store.connect(0);
    const daemon = new ConsoleDaemon({ platform: hv.dom0, client });
    const path = join(dir, 'console.sock');
    let server: ConsoleAttachServer | undefined;
    try {
      await daemon.start();
      server = await ConsoleAttachServer.listen({ path, daemon, client, attachWaitMs: 1500 });
      await fn({ hv, store, daemon, path });
    } finally {
      await server?.close();
      await daemon.close();
      client.close();
      store.close();
    }
  });
  rmSync(dir, { recursive: true, force: true });
  assertNoLeaks(['xs-watch', 'xs-transaction', 'xs-connection']);
}

function dispose(g: GuestConsole): void {
  g.front.dispose();
  g.guest.dispose();
}

/** Everything a raw connection receives until it closes. */
function rawExchange(path: string, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: Socket = createConnection(path);
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(got).toString('utf8')));
    s.write(bytes);
  });
}

test('attach by name: buffered boot output, live output, input to the guest, EBUSY for a second reader, end on release', () =>
  withServer(async ({ hv, store, path }) => {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const g = await createGuest(hv, store, 'web');
    g.front.write('Linux version 6.1 (boot)\r\n');
    const { socket, first } = await openConsoleSocket(path, 'web');
    const got: Buffer[] = [first];
    socket.on('data', (b: Buffer) => got.push(b));
    socket.resume();
    g.front.write('login: ');
    const out = (): string => Buffer.concat(got).toString('latin1');
    await eventually(() => out() === 'Linux version 6.1 (boot)\r\nlogin: ', 'buffered then live output');
    await assert.rejects(openConsoleSocket(path, String(g.domid)), (e) => errorCode(e) === 'EBUSY');
    const typed: Uint8Array[] = [];
    g.front.onData((b) => typed.push(b));
    socket.write('root\n');
    await eventually(() => Buffer.concat(typed).toString() === 'root\n', 'input reaching the guest');
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    await store.connect(0).release(g.domid);
    await closed;
    dispose(g);
  }));

test('a domid attaches too; the request line may carry the first input; a detached reader frees the console', () =>
  withServer(async ({ hv, store, path, daemon }) => {
    const g = await createGuest(hv, store, 'db');
    await eventually(() => daemon.console(g.domid) !== undefined, 'the daemon to serve the console');
    const typed: Uint8Array[] = [];
    g.front.onData((b) => typed.push(b));
    const s = createConnection(path);
    s.write(`${JSON.stringify({ id: 7, method: 'console', params: { domain: g.domid } })}\nls\n`);
    await eventually(() => Buffer.concat(typed).toString() === 'ls\n', 'input sent with the request');
    s.destroy();
    await eventually(() => daemon.console(g.domid)?.isAttached === false, 'detached');
    const again = await openConsoleSocket(path, 'db');
    again.socket.destroy();
    dispose(g);
  }));

test('refusals: unknown names, bad requests, oversize lines, unknown methods; ping and list answer', () =>
  withServer(async ({ hv, store, path }) => {
    const g = await createGuest(hv, store, 'twin');
    const h = await createGuest(hv, store, 'twin');
    await assert.rejects(openConsoleSocket(path, 'nobody'), (e) => errorCode(e) === 'ENOENT' && /no domain named 'nobody'/.test(String(e)));
    await assert.rejects(openConsoleSocket(path, 'twin'), (e) => errorCode(e) === 'ENOENT' && /2 domains/.test(String(e)));
    // A domid that exists nowhere: the wait for its console ends in ENOENT, not a hang.
    await assert.rejects(openConsoleSocket(path, '4000'), (e) => errorCode(e) === 'ENOENT');
    const bad = JSON.parse(await rawExchange(path, 'not json\n')) as { ok: boolean; error: { code: string } };
    assert.deepEqual([bad.ok, bad.error.code], [false, 'EINVAL']);
    const huge = JSON.parse(await rawExchange(path, Buffer.alloc(MAX_REQUEST + 10, 0x61))) as { error: { code: string } };
    assert.equal(huge.error.code, 'EINVAL');
    const nosys = JSON.parse(await rawExchange(path, '{"id":3,"method":"destroy"}\n')) as { id: number; error: { code: string } };
    assert.deepEqual([nosys.id, nosys.error.code], [3, 'ENOSYS']);
    assert.equal((await callConsoleDaemon<{ pid: number }>(path, 'ping')).pid, process.pid);
    const list = await callConsoleDaemon<{ domid: number }[]>(path, 'list');
    assert.deepEqual(list.map((c) => c.domid).sort(), [g.domid, h.domid].sort());
    dispose(g);
    dispose(h);
  }));

test('a second daemon on the same socket is refused while the first answers', () =>
  withServer(async ({ path, daemon, store }) => {
    const client = store.connect(0);
    await assert.rejects(ConsoleAttachServer.listen({ path, daemon, client }), (e) => errorCode(e) === 'EADDRINUSE');
    client.close();
  }));
