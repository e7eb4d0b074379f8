/**
 * Our xenstore-* tools against Xen's own (Debian xenstore-utils 4.17), both talking to our
 * daemon on a temporary socket, on the same tree: stdout and stderr byte for byte, exit codes,
 * and the tree each leaves behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { errorCode } from '../../base/index.js';
import { skipUnlessInstalled } from '../../base/testing.js';
import { connectXenstored, type XsClient } from '../../xenstore/client/index.js';
import { formatPerm } from '../../xenstore/protocol/index.js';
import { startXenstored, type RunningXenstored } from '../../xenstore/server/index.js';
import { sanitise } from './escape.js';
import { oracleMissing, runOurs, runXen, type Outcome } from './oracle.js';
import { CASES, TREE } from './vs-xen-cases.js';

const skip = skipUnlessInstalled(oracleMissing());
let dir: string;
let xs: RunningXenstored;
let client: XsClient;
let env: Record<string, string>;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'xenpv-tools-'));
  xs = await startXenstored({ socketPath: join(dir, 'socket') });
  env = { XENSTORED_PATH: xs.socketPath! };
  client = await connectXenstored({ path: xs.socketPath! });
});

after(async () => {
  if (skip) return;
  client.close();
  await xs.close();
  rmSync(dir, { recursive: true, force: true });
});

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

/** A fresh copy of TREE under /t. */
async function reset(): Promise<void> {
  await client.rm('/t').catch((e: unknown) => {
    if (errorCode(e) !== 'ENOENT') throw e;
  });
  for (const n of TREE) {
    if (n.value === undefined) await client.mkdir(n.path);
    else await client.write(n.path, bytes(n.value));
    if (n.perms !== undefined) await client.setPerms(n.path, n.perms);
  }
}

/** Everything under /t: path, escaped value, perms; one line per node, depth first. */
async function snapshot(path = '/t'): Promise<string> {
  let value: Uint8Array;
  try {
    value = await client.read(path);
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return `${path}: absent\n`;
    throw e;
  }
  const perms = (await client.getPerms(path)).map(formatPerm).join(',');
  let out = `${path} = "${sanitise(value)}" (${perms})\n`;
  for (const child of await client.directory(path)) out += await snapshot(`${path}/${child}`);
  return out;
}

async function compare(argv: readonly string[]): Promise<void> {
  const [argv0, ...args] = argv as [string, ...string[]];
  const label = argv.join(' ');
  await reset();
  const xen = await runXen(argv0, args, env);
  const xenTree = await snapshot();
  await reset();
  const ours = await runOurs(argv0, args, env);
  const ourTree = await snapshot();
  assert.deepEqual(ours, xen, `${label}: output`);
  assert.equal(ourTree, xenTree, `${label}: tree after`);
}

test('every case: same stdout, stderr, exit code and resulting tree as Xen 4.17 xenstore-*', { skip, timeout: 60_000 }, async () => {
  for (const argv of CASES) await compare(argv);
});

test('the oracle notices a difference (the comparison can fail)', { skip, timeout: 60_000 }, async () => {
  await reset();
  const xen = await runXen('xenstore-read', ['/t/a'], env);
  const other = await runOurs('xenstore-read', ['/t/b/c'], env);
  assert.notDeepEqual(other, xen);
});

/** Run a watch, and once its first line is out, change the store. */
async function watchWithWrites(run: (onStdout: (b: Buffer) => void) => Promise<Outcome>): Promise<Outcome> {
  let fired = false;
  let writes: Promise<void> = Promise.resolve();
  const outcome = run(() => {
    if (fired) return;
    fired = true;
    writes = (async () => {
      await client.write('/t/a', bytes('changed'));
      await client.write('/t/new/node', bytes('n'));
      await client.rm('/t/b');
    })();
  });
  const result = await outcome;
  await writes;
  return result;
}

test('xenstore-watch -n prints the initial event and then each change, like Xen', { skip, timeout: 60_000 }, async () => {
  const args = ['-n', '4', '/t'];
  await reset();
  const xen = await watchWithWrites((cb) => runXen('xenstore-watch', args, env, cb));
  await reset();
  const ours = await watchWithWrites((cb) => runOurs('xenstore-watch', args, env, cb));
  assert.equal(xen.stdout.split('\n')[0], '/t', 'the first event is the watched path');
  assert.deepEqual(ours, xen);
});

test('a multi-key xenstore-write is one transaction: a watcher never sees half of it', { skip, timeout: 60_000 }, async () => {
  await reset();
  const seen: string[] = [];
  const watch = client.watch('/t/pair', 'pair');
  await watch.ready;
  const collector = (async () => {
    for await (const ev of watch) {
      seen.push(ev.path);
      const left = await client.read('/t/pair/left').catch(() => undefined);
      const right = await client.read('/t/pair/right').catch(() => undefined);
      assert.equal(left === undefined, right === undefined, 'both keys or neither');
      if (left !== undefined) break;
    }
  })();
  const r = await runOurs('xenstore-write', ['/t/pair/left', 'L', '/t/pair/right', 'R'], env);
  assert.equal(r.code, 0);
  await collector;
  assert.ok(seen.length >= 2, 'initial event and the commit');
});

function runNode(script: string, args: readonly string[]): Promise<Outcome> {
  return runNodeLike(process.execPath, [script, ...args]);
}

function runNodeLike(cmd: string, args: readonly string[]): Promise<Outcome> {
  return new Promise<Outcome>((done) => {
    const child = spawn(cmd, args, { env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('close', (code) => done({ stdout: Buffer.concat(out).toString('latin1'), stderr: Buffer.concat(err).toString('latin1'), code: code ?? -1 }));
  });
}

const binDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin');

test('bin/xenstore.js called as xenstore-ls prints what Xen’s xenstore-ls prints', { skip, timeout: 60_000 }, async () => {
  const bin = join(binDir, 'xenstore.js');
  const link = join(dir, 'xenstore-ls');
  if (!existsSync(link)) symlinkSync(bin, link);
  await reset();
  assert.deepEqual(await runNode(link, ['-p', '/t/deep']), await runXen('xenstore-ls', ['-p', '/t/deep'], env));
});

test('`xenpv xenstore <mode>` behaves as Xen’s `xenstore <mode>`', { skip, timeout: 60_000 }, async () => {
  const bin = join(binDir, 'xenpv.js');
  await reset();
  for (const args of [['ls', '-f', '/t/b'], ['read', '/t/missing'], ['list', '-p', '/t/deep'], ['-h']]) {
    assert.deepEqual(await runNode(bin, ['xenstore', ...args]), await runXen('xenstore', args, env), args.join(' '));
  }
});

const ESCAPE_ALPHABET = ['\\', '\\', 'x', 't', 'n', 'r', '0', '1', '4', '7', '8', 'a', 'F', 'g', ' ', '-', '+', 'q'];

test('unsanitise: what Xen’s xenstore-write stores for escape-heavy arguments is what ours stores', { skip, timeout: 60_000 }, async () => {
  const { default: fc } = await import('fast-check');
  const specs = fc.array(fc.array(fc.constantFrom(...ESCAPE_ALPHABET), { maxLength: 12 }).map((cs) => `v${cs.join('')}`), {
    minLength: 1,
    maxLength: 24,
  });
  await fc.assert(
    fc.asyncProperty(specs, async (values) => {
      await reset();
      const args = values.flatMap((v, i) => [`/t/f/${i}`, v]);
      const xen = await runXen('xenstore-write', args, env);
      assert.equal(xen.code, 0, xen.stderr);
      const xenStored = await Promise.all(values.map((_, i) => client.read(`/t/f/${i}`)));
      await reset();
      assert.deepEqual(await runOurs('xenstore-write', args, env), xen);
      const ourStored = await Promise.all(values.map((_, i) => client.read(`/t/f/${i}`)));
      assert.deepEqual(ourStored, xenStored, JSON.stringify(values));
    }),
    { numRuns: 12 },
  );
});

test('xenstore-ls and xenstore-read of random binary values print what Xen prints', { skip, timeout: 60_000 }, async () => {
  const { default: fc } = await import('fast-check');
  const values = fc.array(fc.uint8Array({ maxLength: 120 }), { minLength: 1, maxLength: 16 });
  await fc.assert(
    fc.asyncProperty(values, async (vals) => {
      await reset();
      for (const [i, v] of vals.entries()) await client.write(`/t/r/${i}`, v);
      for (const argv of [['xenstore-ls', '-p', '/t/r'], ['xenstore-read', ...vals.map((_, i) => `/t/r/${i}`)]]) {
        const [argv0, ...args] = argv as [string, ...string[]];
        assert.deepEqual(await runOurs(argv0, args, env), await runXen(argv0, args, env), argv.join(' '));
      }
    }),
    { numRuns: 12 },
  );
});

// script(1) is util-linux's (Debian bsdutils, essential): skipped only off CI where it is missing.
const noScript = skip || skipUnlessInstalled(existsSync('/usr/bin/script') ? false : 'script(1) (Debian bsdutils) is not installed');

test('on a terminal, xenstore-ls cuts lines at its width - 2, like Xen', { skip: noScript, timeout: 60_000 }, async () => {
  const bin = join(binDir, 'xenstore.js');
  const link = join(dir, 'xenstore-ls');
  if (!existsSync(link)) symlinkSync(bin, link);
  // script(1) gives the tool a pseudo-terminal whose width stty sets.
  const inPty = (cmd: string) => runNodeLike('/usr/bin/script', ['-qec', cmd, '/dev/null']);
  await reset();
  for (const cols of [40, 0]) {
    const xen = await inPty(`stty cols ${cols}; /usr/bin/xenstore-ls -p /t`);
    assert.equal(xen.code, 0);
    assert.deepEqual(await inPty(`stty cols ${cols}; ${process.execPath} ${link} -p /t`), xen, `${cols} columns`);
  }
});
