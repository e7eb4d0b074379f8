/**
 * Xen's own clients against our daemon: Debian's xenstore-utils (libxenstore) and python3-pyxs,
 * found through XENSTORED_PATH. The daemon runs in this process, so the clients are spawned
 * asynchronously (a synchronous spawn would block the daemon's event loop).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startXenstored, type RunningXenstored } from './index.js';
import { TestClient } from './test-support.js';
import { skipUnlessInstalled } from '../../base/testing.js';

const haveUtils = existsSync('/usr/bin/xenstore-read');
const havePyxs = existsSync('/usr/lib/python3/dist-packages/pyxs/__init__.py') && existsSync('/usr/bin/python3');
const skipUtils = skipUnlessInstalled(haveUtils ? false : 'Debian xenstore-utils not installed');
const skipPyxs = skipUnlessInstalled(havePyxs ? false : 'python3-pyxs not installed');

let dir: string;
let xs: RunningXenstored;
let env: NodeJS.ProcessEnv;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xs-interop-'));
  xs = await startXenstored({ socketPath: join(dir, 'socket') });
  env = { ...process.env, XENSTORED_PATH: xs.socketPath };
});

after(async () => {
  await xs.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env, timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function ok(cmd: string, ...args: string[]): Promise<string> {
  const r = await run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('xenstore-write (two pairs = one transaction), -read, -read -p, -exists, -list', { skip: skipUtils }, async () => {
  await ok('xenstore-write', '/local/domain/1/name', 'guest1', '/local/domain/1/device/vbd/51712/state', '4');
  assert.equal(await ok('xenstore-read', '/local/domain/1/name'), 'guest1\n');
  assert.equal(await ok('xenstore-read', '-p', '/local/domain/1/name'), '/local/domain/1/name: guest1\n');
  assert.equal(await ok('xenstore-list', '/local/domain/1'), 'name\ndevice\n');
  assert.equal(await ok('xenstore-list', '-p', '/local/domain/1'), '/local/domain/1/name\n/local/domain/1/device\n');
  assert.equal((await run('xenstore-exists', ['/local/domain/1/name'])).code, 0);
  assert.equal((await run('xenstore-exists', ['/local/domain/1/nope'])).code, 1);
  const miss = await run('xenstore-read', ['/local/domain/1/nope']);
  assert.equal(miss.code, 1);
  assert.equal(miss.stderr, 'xenstore-read: couldn\'t read path /local/domain/1/nope\n');
  await ok('xenstore-write', '/esc', 'a\tb\\\\c'); // the tool un-escapes: \\ is one backslash
  assert.equal(await ok('xenstore-read', '/esc'), 'a\\tb\\\\c\n', 'escaped on output');
  assert.equal(await ok('xenstore-read', '-R', '/esc'), 'a\tb\\c');
});

test('xenstore-ls output byte for byte, and -f -p', { skip: skipUtils }, async () => {
  await ok('xenstore-rm', '/local');
  await ok('xenstore-rm', '/esc');
  await ok('xenstore-write', '/local/domain/0/name', 'Domain-0', '/local/domain/1/device/vbd/51712/backend', '/local/domain/0/backend/vbd/1/51712');
  await ok('xenstore-write', '/local/domain/1/device/vbd/51712/state', '4');
  const want = [
    'tool = ""',
    ' xenstored = ""',
    'local = ""',
    ' domain = ""',
    '  0 = ""',
    '   name = "Domain-0"',
    '  1 = ""',
    '   device = ""',
    '    vbd = ""',
    '     51712 = ""',
    '      backend = "/local/domain/0/backend/vbd/1/51712"',
    '      state = "4"',
    '',
  ].join('\n');
  assert.equal(await ok('xenstore-ls'), want);
  assert.equal(await ok('xenstore-ls', '-f', '-p', '/local/domain/0'), '/local/domain/0/name = "Domain-0"   (n0)\n');
});

test('xenstore-chmod with owners (and -r), read back through xenstore-ls -p', { skip: skipUtils }, async () => {
  await ok('xenstore-chmod', '/local/domain/1', 'n1', 'r0');
  await ok('xenstore-chmod', '-r', '/local/domain/1/device', 'b1', 'r2');
  const out = await ok('xenstore-ls', '-f', '-p', '/local/domain/1');
  assert.match(out, /^\/local\/domain\/1\/device = "" +\(b1,r2\)$/m);
  assert.match(out, /^\/local\/domain\/1\/device\/vbd\/51712\/state = "4" +\(b1,r2\)$/m);
  assert.equal(xs.daemon.db.store.get('/local/domain/1')!.perms.map((p) => `${p.access}${p.domid}`).join(','), 'n1,r0');
});

test('xenstore-rm -t removes empty parents; errors exit 1', { skip: skipUtils }, async () => {
  await ok('xenstore-write', '/tidy/a/b/c', 'v', '/tidy/keep', 'k');
  await ok('xenstore-rm', '-t', '/tidy/a/b/c');
  assert.equal(await ok('xenstore-list', '/tidy'), 'keep\n');
  const bad = await run('xenstore-rm', ['/no/such/parent']);
  assert.equal(bad.code, 1);
});

test('xenstore-watch -n 2: the initial fire, then one change', { skip: skipUtils }, async () => {
  const watching = run('xenstore-watch', ['-n', '2', '/w']);
  await new Promise((r) => setTimeout(r, 300));
  await ok('xenstore-write', '/w/x', '1');
  const r = await watching;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '/w\n/w/x\n');
});

test('a directory over 4096 bytes: libxenstore falls back to DIRECTORY_PART and lists it all', { skip: skipUtils }, async () => {
  const c = new TestClient(xs.daemon);
  const names = Array.from({ length: 300 }, (_, i) => `a-rather-long-child-name-${String(i).padStart(4, '0')}`);
  for (const n of names) assert.equal(c.write(`/big/${n}`, ''), 'OK');
  assert.equal(await ok('xenstore-list', '/big'), names.map((n) => `${n}\n`).join(''));
});

const PYXS = `
import sys
from pyxs import Client
with Client() as a, Client() as b:
    a.transaction()
    a[b"/py/one"] = b"1"
    a[b"/py/two"] = b"2"
    assert not b.exists(b"/py/one"), "transaction writes must be invisible"
    assert a.commit()
    assert b[b"/py/one"] == b"1" and b[b"/py/two"] == b"2"
    a.transaction()
    v = a[b"/py/one"]
    b[b"/py/one"] = b"changed"
    a[b"/py/two"] = b"lost"
    assert a.commit() is False, "conflicting commit must report EAGAIN"
    assert b[b"/py/two"] == b"2"
    a.set_perms(b"/py/one", [b"n5", b"r0"])
    assert a.get_perms(b"/py/one") == [b"n5", b"r0"]
    assert sorted(a.list(b"/py")) == [b"one", b"two"]
    assert a.get_domain_path(3) == b"/local/domain/3"
    try:
        a[b"/py/missing"]
        sys.exit("read of a missing node must fail")
    except Exception as e:
        assert "ENOENT" in repr(e) or "2" in repr(e), repr(e)
    m = b.monitor()
    m.watch(b"/py", b"tok")
    first = next(m.wait())
    assert first.path == b"/py" and first.token == b"tok", first
    a[b"/py/three"] = b"3"
    ev = next(m.wait())
    assert ev.path == b"/py/three", ev
print("ok")
`;

test('python3-pyxs: multi-key transaction, conflict, perms, watch', { skip: skipPyxs }, async () => {
  const r = await run('/usr/bin/python3', ['-c', PYXS]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ok\n');
  assert.deepEqual(xs.daemon.checkAccounting(), []);
});
