/**
 * The /dev/xen/xenbus write gate: a WATCH or UNWATCH is written only once every earlier
 * request's reply has been read back (Linux's driver deadlocks otherwise), order is kept, and
 * replies are counted however the reads split them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XenbusWriteGate } from './xenbus-gate.js';

const READ = 2;
const WATCH = 4;
const UNWATCH = 5;
const EVENT = 15;
const ERROR = 16;

function msg(type: number, reqId: number, body = 'x\0'): Uint8Array {
  const b = new TextEncoder().encode(body);
  const m = new Uint8Array(16 + b.length);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, reqId, true);
  dv.setUint32(12, b.length, true);
  m.set(b, 16);
  return m;
}

function typed(written: Uint8Array[]): string[] {
  return written.map((m) => {
    const dv = new DataView(m.buffer, m.byteOffset);
    return `${dv.getUint32(0, true)}/${dv.getUint32(4, true)}`;
  });
}

test('xenbus gate: a WATCH behind an unanswered READ waits for its reply, and what follows waits behind it', () => {
  const written: Uint8Array[] = [];
  const gate = new XenbusWriteGate((m) => written.push(m));
  gate.send(msg(READ, 1));
  gate.send(msg(WATCH, 2, 'a\0t\0'));
  gate.send(msg(READ, 3));
  assert.deepEqual(typed(written), ['2/1'], 'the WATCH (and the READ after it) wait: the READ 1 reply is still owed');
  assert.equal(gate.waiting, 2);
  // A watch event is not a reply.
  gate.received(msg(EVENT, 0, 'p\0t\0'));
  assert.deepEqual(typed(written), ['2/1']);
  gate.received(msg(READ, 1, 'v'));
  assert.deepEqual(typed(written), ['2/1', '4/2', '2/3'], 'released in order once READ 1 is answered');
  assert.equal(gate.waiting, 0);
  assert.equal(gate.outstanding, 1, 'READ 3 owed; the WATCH is answered by the driver itself');
});

test('xenbus gate: the WATCH\'s own OK does not stand in for a reply still owed', () => {
  const written: Uint8Array[] = [];
  const gate = new XenbusWriteGate((m) => written.push(m));
  gate.send(msg(WATCH, 1, 'a\0t\0'));
  gate.send(msg(READ, 2));
  gate.send(msg(UNWATCH, 3, 'a\0t\0'));
  assert.deepEqual(typed(written), ['4/1', '2/2'], 'nothing owed: the WATCH goes at once; the UNWATCH waits for READ 2');
  gate.received(msg(WATCH, 1, 'OK\0'));
  assert.deepEqual(typed(written), ['4/1', '2/2'], 'the WATCH reply is not READ 2\'s');
  gate.received(msg(ERROR, 2, 'ENOENT\0'));
  assert.deepEqual(typed(written), ['4/1', '2/2', '5/3'], 'an error reply answers too');
});

test('xenbus gate: replies split at every byte, or several in one read, are counted exactly', () => {
  const written: Uint8Array[] = [];
  const gate = new XenbusWriteGate((m) => written.push(m));
  for (let id = 1; id <= 3; id++) gate.send(msg(READ, id));
  gate.send(msg(WATCH, 9, 'a\0t\0'));
  const stream = new Uint8Array([...msg(READ, 2, 'two'), ...msg(EVENT, 0, 'long/path\0tok\0'), ...msg(READ, 1, ''), ...msg(READ, 3, 'three')]);
  const lastReplyStarts = stream.length - msg(READ, 3, 'three').length;
  for (let i = 0; i < stream.length; i++) {
    gate.received(stream.subarray(i, i + 1));
    // The WATCH goes with the header of the last reply owed, not a byte earlier.
    assert.equal(written.length, i >= lastReplyStarts + 15 ? 4 : 3, `after byte ${i}`);
  }
  assert.equal(gate.outstanding, 0);
  written.length = 0;
  gate.send(msg(READ, 4));
  gate.send(msg(WATCH, 5, 'a\0t\0'));
  gate.received(new Uint8Array([...msg(EVENT, 0, 'p\0t\0'), ...msg(READ, 4, 'v')]));
  assert.deepEqual(typed(written), ['2/4', '4/5'], 'an event and a reply in one read');
});

test('xenbus gate: a write that fails is not counted and reaches the sender; a message too short for a header is refused', () => {
  let fail = true;
  const written: Uint8Array[] = [];
  const gate = new XenbusWriteGate((m) => {
    if (fail) throw new Error('EPIPE');
    written.push(m);
  });
  assert.throws(() => gate.send(msg(READ, 1)), /EPIPE/);
  fail = false;
  gate.send(msg(WATCH, 2, 'a\0t\0'));
  assert.deepEqual(typed(written), ['4/2'], 'the failed READ is not owed a reply');
  assert.throws(() => gate.send(new Uint8Array(8)), /at least 16 bytes/);
});
