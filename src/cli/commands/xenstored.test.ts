import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { encodeMessage, encodeRequest, FrameParser, latin1 } from '../../xenstore/protocol/index.js';
import { socketAnswers } from '../../xenstore/server/index.js';

const cli = fileURLToPath(new URL('../../../bin/xenpv.js', import.meta.url));

test('xenpv xenstored -F --socket --quota: serves, applies the quota, stops on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xs-cli-'));
  const socket = join(dir, 'socket');
  const child = spawn(process.execPath, [cli, 'xenstored', '-F', '--socket', socket, '-Q', 'nodes=7'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  try {
    const line = await new Promise<string>((r) => child.stdout!.once('data', (b) => r(String(b))));
    assert.equal(line, `xenstored: listening on ${socket}\n`);
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(socket, () => {
        const { type, payload } = encodeRequest({ op: 'getQuota', quota: 'nodes' });
        s.write(encodeMessage({ type, reqId: 1, txId: 0, payload }));
      });
      const p = new FrameParser();
      s.on('data', (c) => {
        const m = p.push(c).messages[0];
        if (m !== undefined) {
          s.destroy();
          resolve(latin1(m.payload));
        }
      });
      s.once('error', reject);
    });
    assert.equal(reply, '7\0');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(existsSync(socket), false, 'the socket is removed on exit');
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('xenpv xenstored without -F: returns once the detached daemon answers, printing its pid', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xs-cli-'));
  const socket = join(dir, 'socket');
  let pid: number | undefined;
  try {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [cli, 'xenstored', '--socket', socket], { timeout: 15_000 }, (err, stdout) => (err === null ? resolve(stdout) : reject(err))),
    );
    const m = /^xenstored: pid (\d+), socket (.*)\n$/.exec(out);
    assert.ok(m !== null, out);
    pid = Number(m[1]);
    assert.equal(m[2], socket);
    assert.equal(await socketAnswers(socket), true, 'the daemon outlives the command that started it');
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(existsSync(socket), false, 'SIGTERM stops it and removes the socket');
  } finally {
    try {
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
