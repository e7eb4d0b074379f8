import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoLeaks } from '../../base/index.js';
import { encodeMessage, encodeRequest, FrameParser, latin1, type XsMessage } from '../protocol/index.js';
import { connectInProcess } from './local.js';
import { Xenstored } from './xenstored.js';

test('an in-process StoreTransport: replies arrive asynchronously, in order; dispose closes it', async () => {
  const d = new Xenstored();
  const t = connectInProcess(d, 0);
  const parser = new FrameParser();
  const got: XsMessage[] = [];
  t.onData((chunk) => got.push(...parser.push(chunk).messages));
  const send = (reqId: number, req: Parameters<typeof encodeRequest>[0]) => {
    const { type, payload } = encodeRequest(req);
    t.write(encodeMessage({ type, reqId, txId: 0, payload }));
  };
  send(1, { op: 'write', path: '/x', value: new Uint8Array([97]) });
  send(2, { op: 'read', path: '/x' });
  assert.equal(got.length, 0, 'not delivered re-entrantly');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got.map((m) => [m.reqId, latin1(m.payload)]), [[1, 'OK\0'], [2, 'a']]);
  let closed = false;
  t.onClose(() => (closed = true));
  t.dispose();
  assert.equal(d.connections.size, 0);
  d.close();
  await new Promise((r) => setImmediate(r));
  assert.equal(closed, true);
  assertNoLeaks(['xs-connection']);
});
