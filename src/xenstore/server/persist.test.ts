/**
 * `--state FILE`: restart from disk, torn journal tails, the compaction crash window, and the
 * real thing — a daemon child process SIGKILLed mid-workload loses no acknowledged write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { JournalPersistence } from './persist.js';
import { Xenstored } from './xenstored.js';
import { SocketTestClient, TestClient } from './test-support.js';

function tempState(): { dir: string; state: string } {
  const dir = mkdtempSync(join(tmpdir(), 'xs-persist-'));
  return { dir, state: join(dir, 'state') };
}

function open(state: string): { d: Xenstored; c: TestClient; p: JournalPersistence } {
  const d = new Xenstored();
  const p = JournalPersistence.open(state, d);
  return { d, c: new TestClient(d), p };
}

test('tree, permissions and quota settings survive a restart; accounting is recomputed', () => {
  const { dir, state } = tempState();
  let { d, c } = open(state);
  c.write('/a/b', 'v');
  c.setPerms('/a/b', 'n3,r4');
  c.request({ op: 'setQuota', domid: 3, quota: 'nodes', value: 9 });
  c.rm('/tool');
  const usage = d.db.allUsage();
  d.close();
  ({ d, c } = open(state));
  assert.equal(c.read('/a/b'), 'v');
  assert.equal(c.getPerms('/a/b'), 'n3,r4');
  assert.equal(c.read('/tool'), 'ENOENT');
  assert.equal(d.quota(3, 'nodes'), 9);
  assert.deepEqual(d.db.allUsage(), usage);
  assert.deepEqual(d.checkAccounting(), []);
  const g4 = new TestClient(d, 4);
  assert.equal(g4.read('/a/b'), 'v', 'the r4 entry is honoured after the restart');
  assert.equal(new TestClient(d, 5).read('/a/b'), 'EACCES');
  d.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a torn journal tail is dropped; the crash window of compaction replays idempotently', () => {
  const { dir, state } = tempState();
  let { d, c, p } = open(state);
  c.write('/x', '1');
  c.write('/y', '2');
  d.afterBatch();
  // Simulate "snapshot renamed, journal not yet truncated": keep a copy of the journal.
  copyFileSync(`${state}.journal`, `${state}.journal.keep`);
  p.compact();
  c.write('/z', '3');
  d.close();
  const tail = readFileSync(`${state}.journal`);
  copyFileSync(`${state}.journal.keep`, `${state}.journal`);
  appendFileSync(`${state}.journal`, tail);
  appendFileSync(`${state}.journal`, '{"w":[["/torn",{"v":"');
  ({ d, c } = open(state));
  assert.equal(c.read('/x'), '1');
  assert.equal(c.read('/y'), '2');
  assert.equal(c.read('/z'), '3');
  assert.equal(c.read('/torn'), 'ENOENT');
  assert.deepEqual(d.checkAccounting(), []);
  d.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a state file that is not ours is refused with EBADSTATE', () => {
  const { dir, state } = tempState();
  appendFileSync(state, 'garbage');
  assert.throws(() => open(state), (e: unknown) => (e as { code?: string }).code === 'EBADSTATE');
  rmSync(dir, { recursive: true, force: true });
});

// ---- crash test: SIGKILL a real daemon process mid-workload -------------------------------

const cli = fileURLToPath(new URL('../../../bin/xenpv.js', import.meta.url));

interface Daemon {
  readonly child: ChildProcess;
  readonly exited: Promise<unknown>;
}

function startDaemon(socket: string, state: string): Promise<Daemon> {
  const child = spawn(process.execPath, [cli, 'xenstored', '-F', '--socket', socket, '--state', state], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve({ child, exited }));
    void exited.then((code) => reject(new Error(`daemon exited ${String(code)}`)));
  });
}

test('SIGKILL mid-workload: every acknowledged write survives the restart', { skip: existsSync(cli) ? false : 'bin/xenpv.js missing' }, async () => {
  const { dir, state } = tempState();
  const socket = join(dir, 'socket');
  // Unique keys: an unacknowledged write may or may not have landed, an acknowledged one must have.
  const acked = new Map<string, string>();
  const live = new Set<Daemon>();
  try {
    for (let round = 0; round < 3; round++) {
      const daemon = await startDaemon(socket, state);
      live.add(daemon);
      const p = await SocketTestClient.open(socket);
      for (const [k, v] of acked) assert.equal(await p.call({ op: 'read', path: k }), v, `round ${round}: ${k} lost`);
      const killAt = Date.now() + 150 + round * 70;
      const writers = [0, 1, 2, 3].map(async (w) => {
        for (let i = 0; !p.dead; i++) {
          const key = `/crash/r${round}/w${w}/k${i}`;
          const value = `${round}.${w}.${i}`;
          let timer: ReturnType<typeof setTimeout> | undefined;
          const timeout = new Promise<string>((res) => (timer = setTimeout(() => res('TIMEOUT'), 3000)));
          const r = await Promise.race([p.call({ op: 'write', path: key, value: new Uint8Array(Buffer.from(value)) }), timeout]);
          clearTimeout(timer);
          if (r !== 'OK') break;
          acked.set(key, value);
          if (Date.now() > killAt && w === 0) daemon.child.kill('SIGKILL');
        }
      });
      await Promise.all(writers);
      daemon.child.kill('SIGKILL'); // in case every writer stopped before the planned kill
      await daemon.exited;
      live.delete(daemon);
      p.close();
    }
    const daemon = await startDaemon(socket, state);
    live.add(daemon);
    const p = await SocketTestClient.open(socket);
    assert.ok(acked.size > 50, `only ${acked.size} writes acknowledged`);
    for (const [k, v] of acked) assert.equal(await p.call({ op: 'read', path: k }), v, `${k} lost`);
    p.close();
  } finally {
    for (const d of live) {
      d.child.kill('SIGKILL');
      await d.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
