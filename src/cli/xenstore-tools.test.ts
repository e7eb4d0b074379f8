/**
 * Command-line handling of our xenstore-* tools against Xen's own binary, byte for byte:
 * usage texts, getopt diagnostics, unknown modes, argument counts, and the failure to reach a
 * daemon. No daemon is needed: the store socket points nowhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oracleMissing, runOurs, runXen } from './xenstore-tools/oracle.js';

const skip = oracleMissing();
const env = { XENSTORED_PATH: '/nonexistent/xenpv-test/socket' };

const CASES: readonly (readonly string[])[] = [
  ['xenstore-read', '-h'],
  ['xenstore-read'],
  ['xenstore-read', '--help'],
  ['xenstore-read', '--he', 'a'],
  ['xenstore-exists'],
  ['xenstore-exists', '-p'],
  ['xenstore-write', 'a'],
  ['xenstore-write', 'a', 'b', 'c'],
  ['xenstore-write', '--raw', 'a'],
  ['xenstore-rm', '-h'],
  ['xenstore-list', '-h'],
  ['xenstore-ls', '-h'],
  ['xenstore-ls', '--flat=1'],
  ['xenstore-chmod', '-h'],
  ['xenstore-chmod'],
  ['xenstore-watch', '-h'],
  ['xenstore-watch', '-n'],
  ['xenstore-watch', '--number'],
  ['xenstore-watch', '-n', '2'],
  ['xenstore-read', '-f', 'a'],
  ['xenstore-read', '-t', 'a'],
  ['xenstore-rm', '-p', 'a'],
  ['xenstore-list', '-R', 'a'],
  ['xenstore-ls', '-u'],
  ['xenstore-read', '-z', 'a'],
  ['xenstore-read', '-z', '-f', 'a'],
  ['xenstore-read', '-pz', 'a'],
  ['xenstore-read', '--r', 'a'],
  ['xenstore-read', '--r=5', 'a'],
  ['xenstore-read', '--=5', 'a'],
  ['xenstore-read', '--bogus=1', 'a'],
  ['xenstore-read', '--socket', 'a'],
  ['xenstore-read', '-s', 'a'],
  ['xenstore-read', '--pre=3', 'a'],
  ['xenstore-read', 'a', '-h'], // permuted: the option after the operand still counts
  ['xenstore-write', '--', '-a', 'b'],
  ['xenstore-ls'],
  ['xenstore-ls', 'a', 'b'],
  ['xenstore'],
  ['xenstore', 'foo'],
  ['xenstore-foo'],
  ['xenstore', 'read'],
  ['xenstore', 'read', '-z', 'a'],
  ['xenstore', 'exists', '-h'],
  ['xenstore', 'watch', '--number'],
  ['xenstore', 'ls', '-f', '-p', '/'],
  ['xenstore', 'chmod', 'a', 'r0'],
];

test('command-line handling matches Xen 4.17 xenstore-* byte for byte', { skip }, async () => {
  for (const [argv0, ...args] of CASES) {
    const label = [argv0, ...args].join(' ');
    const xen = await runXen(argv0!, args, env);
    const ours = await runOurs(argv0!, args, env);
    assert.deepEqual(ours, xen, label);
  }
});

test('POSIXLY_CORRECT stops option parsing at the first operand, as in glibc', { skip }, async () => {
  const posix = { ...env, POSIXLY_CORRECT: '1' };
  for (const args of [['a', '-z'], ['-p', 'a', '-h']]) {
    assert.deepEqual(await runOurs('xenstore-read', args, posix), await runXen('xenstore-read', args, posix), args.join(' '));
  }
});

test('a socket that refuses connections reads as xs_open: Connection refused', async (t) => {
  const { createServer } = await import('node:net');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-xs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A socket file with nobody listening: bind, then close the server (the file stays).
  const path = join(dir, 'socket');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const ours = await runOurs('xenstore-read', ['/a'], { XENSTORED_PATH: path });
  assert.equal(ours.code, 1);
  if (skip === undefined) assert.deepEqual(ours, await runXen('xenstore-read', ['/a'], { XENSTORED_PATH: path }));
  else assert.match(ours.stderr, /^xenstore-read: xs_open: /);
});
