/**
 * The socket transport with hostile clients: oversized frames and garbage mark only that client
 * bad; a well-behaved client on another connection keeps getting correct replies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import fc from 'fast-check';
import { encodeHeader, PAYLOAD_MAX } from '../protocol/index.js';
import { defaultSocketPath, startXenstored } from './index.js';
import { SocketTestClient } from './test-support.js';

async function withDaemon(fn: (path: string, close: () => Promise<void>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xs-sock-'));
  const xs = await startXenstored({ socketPath: join(dir, 'socket') });
  try {
    await fn(xs.socketPath!, () => xs.close());
  } finally {
    await xs.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('an oversized frame marks only that client bad; others keep working', async () => {
  await withDaemon(async (path) => {
    const good = await SocketTestClient.open(path);
    const bad = await SocketTestClient.open(path);
    assert.equal(await good.call({ op: 'write', path: '/k', value: new Uint8Array([118]) }), 'OK');
    bad.sock.write(encodeHeader({ type: 2, reqId: 1, txId: 0, len: PAYLOAD_MAX + 1 }));
    await bad.closed;
    assert.equal(await good.call({ op: 'read', path: '/k' }), 'v');
  });
});

test('fuzz: random garbage from many clients never disturbs a well-behaved one', async () => {
  await withDaemon(async (path) => {
    const good = await SocketTestClient.open(path);
    const samples = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 5000 }), { numRuns: 40, seed: 42 });
    for (const junk of samples) {
      const c = await SocketTestClient.open(path);
      c.sock.write(junk);
      c.sock.end();
      assert.equal(await good.call({ op: 'read', path: '/' }), '');
    }
    assert.equal(await good.call({ op: 'write', path: '/still', value: new Uint8Array([49]) }), 'OK');
  });
});

test('a socket path that is already served is refused; a stale one is replaced', async () => {
  await withDaemon(async (path) => {
    await assert.rejects(startXenstored({ socketPath: path }), /already listens/);
  });
});

test('default socket path: XENSTORED_PATH, then XENSTORED_RUNDIR/socket', () => {
  assert.equal(defaultSocketPath({ XENSTORED_PATH: '/x/s' }), '/x/s');
  assert.equal(defaultSocketPath({ XENSTORED_RUNDIR: '/r' }), '/r/socket');
  assert.match(defaultSocketPath({}), /xenstored\/socket$/);
});
