/**
 * Our tools acting as an unprivileged domain (dom5). Xen's binary cannot be run that way here
 * (its socket is always dom0), so the expected bytes are derived from xenstore_client.c 4.17:
 * warnx("couldn't read path %s"), ls's `name:` line for an unreadable value followed by
 * warn("\ncould not access permissions for %s"), a child directory that answers EACCES skipped
 * silently, err(1, "xs_directory (%s)") at the top, err(1, "Error occurred setting permissions
 * on '%s'") with strerror.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreTransport } from '../../hv/platform.js';
import { XsClient } from '../../xenstore/client/index.js';
import type { XsPerm } from '../../xenstore/protocol/index.js';
import { startXenstored, type RunningXenstored, type Transport } from '../../xenstore/server/index.js';
import { runOurs } from './oracle.js';

let xs: RunningXenstored;
let dom0: XsClient;

/** An in-process connection to the daemon as `domid` (what a guest's ring would give). */
function connectAs(domid: number): Promise<StoreTransport> {
  const d = xs.daemon;
  let onData: ((b: Uint8Array) => void) | undefined;
  const onClose: ((reason?: Error) => void)[] = [];
  const serverSide: Transport = {
    kind: 'local',
    write: (bytes) => {
      const copy = bytes.slice();
      queueMicrotask(() => onData?.(copy));
    },
    writable: () => true,
    pauseInput: () => undefined,
    resumeInput: () => undefined,
    close: () => queueMicrotask(() => onClose.splice(0).forEach((h) => h())),
  };
  const conn = d.attach(serverSide, domid);
  return Promise.resolve({
    write: (bytes: Uint8Array) => d.input(conn, bytes),
    onData: (h: (b: Uint8Array) => void) => void (onData = h),
    onClose: (h: (reason?: Error) => void) => void onClose.push(h),
    dispose: () => d.transportClosed(conn),
  });
}

const p = (...list: string[]): XsPerm[] => list.map((s) => ({ access: s[0] as XsPerm['access'], domid: Number(s.slice(1)) }));

before(async () => {
  xs = await startXenstored({ socketPath: null });
  dom0 = new XsClient(await connectAs(0));
  const tree: [string, string, XsPerm[]][] = [
    ['/u/secret', 's', p('n0')],
    ['/u/open', 'o', p('r0')],
    ['/u/dir', '', p('r0')],
    ['/u/dir/hidden', 'h', p('n0')],
    ['/u/dir/seen', 'v', p('r0')],
    ['/u/mine', 'm', p('b5')],
    ['/local/domain/5/name', 'guest5', p('n5')],
  ];
  for (const [path, value, perms] of tree) {
    await dom0.write(path, value);
    await dom0.setPerms(path, perms);
  }
});

after(async () => {
  dom0.close();
  await xs.close();
});

const as5 = (argv0: string, ...args: string[]) => runOurs(argv0, args, {}, undefined, { connect: () => connectAs(5) });
const padTo60 = (line: string): string => {
  let out = `${line} `;
  for (let col = line.length + 1; col < 60; col++) out += col & 1 ? '.' : ' ';
  return out;
};

test('reads: refused nodes fail like Xen’s tools, readable ones and relative paths work', async () => {
  assert.deepEqual(await as5('xenstore-read', '/u/secret'), { stdout: '', stderr: "xenstore-read: couldn't read path /u/secret\n", code: 1 });
  assert.deepEqual(await as5('xenstore-read', '/u/open', 'name'), { stdout: 'o\nguest5\n', stderr: '', code: 0 });
  assert.deepEqual(await as5('xenstore-exists', '/u/secret'), { stdout: '', stderr: '', code: 1 });
  assert.deepEqual(await as5('xenstore-list', '/u/secret'), { stdout: '', stderr: 'xenstore-list: could not list path /u/secret\n', code: 1 });
});

test('writes, removals and perms changes without the right are refused', async () => {
  assert.deepEqual(await as5('xenstore-write', '/u/open', 'x'), { stdout: '', stderr: 'xenstore-write: could not write path /u/open\n', code: 1 });
  assert.deepEqual(await as5('xenstore-rm', '/u/secret'), { stdout: '', stderr: 'xenstore-rm: could not remove path /u/secret\n', code: 1 });
  assert.deepEqual(await as5('xenstore-chmod', '/u/open', 'b5'), {
    stdout: '',
    stderr: "xenstore-chmod: Error occurred setting permissions on '/u/open': Permission denied\n",
    code: 1,
  });
  // The owner may change the access list but not hand the node to another domain.
  assert.deepEqual(await as5('xenstore-chmod', '/u/mine', 'n7'), {
    stdout: '',
    stderr: "xenstore-chmod: Error occurred setting permissions on '/u/mine': Operation not permitted\n",
    code: 1,
  });
  assert.deepEqual(await as5('xenstore-chmod', '/u/mine', 'b5', 'r7'), { stdout: '', stderr: '', code: 0 });
  assert.deepEqual(await dom0.getPerms('/u/mine'), p('b5', 'r7'));
});

test('ls: an unreadable node prints "name:", its perms warning, and its subtree is skipped', async () => {
  assert.deepEqual(await as5('xenstore-ls', '-p', '/u/dir'), {
    stdout: `hidden:\n\n${padTo60('seen = "v"')}  (r0)\n`,
    stderr: 'xenstore-ls: \ncould not access permissions for hidden: Permission denied\n',
    code: 0,
  });
  assert.deepEqual(await as5('xenstore-ls', '/u/secret'), {
    stdout: '',
    stderr: 'xenstore-ls: xs_directory (/u/secret): Permission denied\n',
    code: 1,
  });
});
