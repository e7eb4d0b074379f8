/** daemonise() with a stand-in daemon script: ready when its socket answers, detached, and a dead child is not waited for. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../base/index.js';
import { socketAnswers } from '../xenstore/server/index.js';
import { daemonise } from './daemonise.js';

/** Listens on argv[2] after 100 ms (a daemon starting up), says so on stdout, and leaves on SIGTERM; `exit` as argv[3] dies at once. */
const STAND_IN = `import { createServer } from 'node:net';
const [path, mode] = process.argv.slice(2);
if (mode === 'exit') process.exit(3);
setTimeout(() => {
  console.log('listening, mark=' + process.env.XENPV_DAEMONISE_MARK); // before the socket exists: no race with the reader
  const srv = createServer((c) => c.destroy()).listen(path);
  process.once('SIGTERM', () => srv.close(() => process.exit(0)));
}, 100);
`;

async function withScript(body: (script: string, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-daemonise-'));
  try {
    writeFileSync(join(dir, 'd.mjs'), STAND_IN);
    await body(join(dir, 'd.mjs'), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('daemonise waits until the daemon answers; the daemon runs detached, with the given environment and log', () =>
  withScript(async (script, dir) => {
    const sock = join(dir, 's');
    const log = openSync(join(dir, 'log'), 'a');
    const env = { ...process.env, XENPV_DAEMONISE_MARK: 'm1' };
    const pid = await daemonise({ script, args: [sock], ready: () => socketAnswers(sock), timeoutMs: 5000, output: log, env }).finally(() => closeSync(log));
    assert.ok(pid !== undefined, 'the stand-in became ready');
    try {
      assert.equal(await socketAnswers(sock), true);
      assert.equal(readFileSync(join(dir, 'log'), 'utf8'), 'listening, mark=m1\n');
      const pgid = Number(execFileSync('ps', ['-o', 'pgid=', '-p', String(pid)], { encoding: 'utf8' }).trim());
      assert.equal(pgid, pid, 'detached: a session of its own, so a terminal hang-up does not reach it');
    } finally {
      process.kill(pid, 'SIGTERM');
    }
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(20);
    assert.equal(alive(pid), false);
  }));

test('daemonise gives up as soon as the child has exited, not at the timeout', () =>
  withScript(async (script, dir) => {
    const sock = join(dir, 's');
    const t0 = Date.now();
    const pid = await daemonise({ script, args: [sock, 'exit'], ready: () => socketAnswers(sock), timeoutMs: 20_000 });
    assert.equal(pid, undefined);
    assert.ok(Date.now() - t0 < 5000, `waited ${Date.now() - t0} ms for a dead child`);
  }));

test('daemonise refuses with EADDRINUSE, starting nothing, when a daemon already answers', () =>
  withScript(async (_script, dir) => {
    const sock = join(dir, 's');
    const marker = join(dir, 'started');
    const script = join(dir, 'mark.mjs');
    writeFileSync(script, `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\n`);
    const other = createServer((c) => c.destroy());
    await new Promise<void>((r) => other.listen(sock, r));
    try {
      await assert.rejects(daemonise({ script, args: [sock], ready: () => socketAnswers(sock), timeoutMs: 5000 }), { code: 'EADDRINUSE' });
      await sleep(300); // a child, had one been spawned, writes its marker at once
      assert.equal(existsSync(marker), false, 'no child was started');
    } finally {
      await new Promise((r) => other.close(r));
    }
  }));
