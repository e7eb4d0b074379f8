/**
 * The socket transport with hostile clients: oversized frames and garbage mark only that client
 * bad; a well-behaved client on another connection keeps getting correct replies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import fc from 'fast-check';
import {
  encodeHeader,
  encodeMessage,
  encodeRequest,
  FrameParser,
  latin1,
  PAYLOAD_MAX,
  type XsMessage,
  type XsRequest,
} from '../protocol/index.js';
import { defaultSocketPath, startXenstored } from './index.js';

class SockClient {
  private readonly parser = new FrameParser();
  private readonly waiting = new Map<number, (m: XsMessage) => void>();
  private nextId = 1;
  closed: Promise<void>;

  constructor(readonly sock: Socket) {
    sock.on('data', (c) => {
      for (const m of this.parser.push(c).messages) this.waiting.get(m.reqId)?.(m);
    });
    this.closed = new Promise((r) => sock.once('close', () => r()));
    sock.on('error', () => {});
  }

  static open(path: string): Promise<SockClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new SockClient(s)));
      s.once('error', reject);
    });
  }

  call(req: XsRequest): Promise<string> {
    const id = this.nextId++;
    const { type, payload } = encodeRequest(req);
    return new Promise((resolve) => {
      this.waiting.set(id, (m) => resolve(latin1(m.payload).replace(/\0$/, '')));
      this.sock.write(encodeMessage({ type, reqId: id, txId: 0, payload }));
    });
  }
}

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
    const good = await SockClient.open(path);
    const bad = await SockClient.open(path);
    assert.equal(await good.call({ op: 'write', path: '/k', value: new Uint8Array([118]) }), 'OK');
    bad.sock.write(encodeHeader({ type: 2, reqId: 1, txId: 0, len: PAYLOAD_MAX + 1 }));
    await bad.closed;
    assert.equal(await good.call({ op: 'read', path: '/k' }), 'v');
  });
});

test('fuzz: random garbage from many clients never disturbs a well-behaved one', async () => {
  await withDaemon(async (path) => {
    const good = await SockClient.open(path);
    const samples = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 5000 }), { numRuns: 40, seed: 42 });
    for (const junk of samples) {
      const c = await SockClient.open(path);
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
