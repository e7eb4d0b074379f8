/**
 * State helpers, typed keys and paths against an in-process xenstored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoLeaks, errorCode, type DomId } from '../base/index.js';
import { XenbusStateClosed, XenbusStateClosing, XenbusStateConnected, XenbusStateInitialising, XenbusStateInitWait, XenbusStateReconfiguring } from '../abi/io/xenbus.js';
import { isAllowedTransition, isState, readState, switchState, waitForState } from './state.js';
import { readBool, readChoice, readStr, readUint, removeKeys, withdrawIfUnsupported, writeKeys } from './keys.js';
import { backendPath, errorPath, frontendPath, parseBackendPath, parseDevid, parseFrontendPath } from './paths.js';
import { startTestStore, type TestStore } from './testing.js';

async function withStore(fn: (s: TestStore) => Promise<void>): Promise<void> {
  const s = startTestStore();
  try {
    await fn(s);
  } finally {
    s.close();
  }
  assertNoLeaks(['xs-watch', 'xs-transaction', 'xs-connection']);
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return errorCode(err);
  }
  return 'no error';
}

const DIR = '/local/domain/0/backend/vbd/3/51712';

test('readState: missing is Unknown-ish, garbage is invalid (never thrown), values parse', () =>
  withStore(async (s) => {
    const c = s.connect(0);
    assert.deepEqual(await readState(c, DIR), { kind: 'missing' });
    for (const [raw, want] of [
      ['4', { kind: 'state', state: 4 }],
      ['04', { kind: 'state', state: 4 }], // as Linux's %d reads it (abi parseXenbusState)
      ['4x', { kind: 'invalid', raw: '4x' }],
      ['9', { kind: 'invalid', raw: '9' }],
      ['-1', { kind: 'invalid', raw: '-1' }],
      [' 4', { kind: 'invalid', raw: ' 4' }],
      ['Connected', { kind: 'invalid', raw: 'Connected' }],
      ['', { kind: 'invalid', raw: '' }],
      ['x'.repeat(2000), { kind: 'invalid', raw: 'x'.repeat(32) }],
    ] as const) {
      await c.write(`${DIR}/state`, raw);
      assert.deepEqual(await readState(c, DIR), want, JSON.stringify(raw.slice(0, 8)));
    }
  }));

test('switchState: writes in a transaction, skips a same-state write, refuses forbidden transitions, never re-creates a removed node', () =>
  withStore(async (s) => {
    const c = s.connect(0);
    assert.equal(await switchState(c, DIR, XenbusStateInitWait), false, 'no node: nothing written');
    await assert.rejects(c.read(`${DIR}/state`));
    await c.write(`${DIR}/state`, '1');
    assert.equal(await switchState(c, DIR, XenbusStateInitWait), true);
    assert.equal(await c.readString(`${DIR}/state`), '2');
    assert.equal(await switchState(c, DIR, XenbusStateConnected), true);
    assert.equal(await code(switchState(c, DIR, XenbusStateReconfiguring + 1 as 8)), 'EINVAL', 'Connected -> Reconfigured skips Reconfiguring');
    assert.equal(await switchState(c, DIR, XenbusStateClosing), true);
    assert.equal(await code(switchState(c, DIR, XenbusStateConnected)), 'EINVAL', 'Closing -> Connected');
    assert.equal(await c.readString(`${DIR}/state`), '5', 'a refused switch changes nothing');
    assert.equal(await switchState(c, DIR, XenbusStateClosed), true);
    assert.equal(await switchState(c, DIR, XenbusStateInitWait), true, 'Closed -> InitWait: reconnect');
    // A garbage value of our own node (the toolstack wrote it) counts as Unknown: any move is allowed.
    await c.write(`${DIR}/state`, 'junk');
    assert.equal(await switchState(c, DIR, XenbusStateConnected), true);
  }));

test('switchState rewrite fires the peer\'s watch even for the same state (resize notification)', () =>
  withStore(async (s) => {
    const c = s.connect(0);
    await c.write(`${DIR}/state`, '4');
    const w = c.watch(`${DIR}/state`);
    await w.ready;
    await w.next(); // the registration event
    assert.equal(await switchState(c, DIR, XenbusStateConnected), true);
    assert.equal(await switchState(c, DIR, XenbusStateConnected, { rewrite: true }), true);
    const ev = await w.next();
    assert.equal(ev.value?.path, `${DIR}/state`);
    assert.equal(w.queued, 0, 'the plain same-state switch wrote nothing');
    w.dispose();
  }));

test('transition table: Closing/Closed from anywhere, no way back from Closing except Closed', () => {
  for (let from = 0; from <= 8; from++) {
    assert.ok(isAllowedTransition(from as 0, XenbusStateClosing));
    assert.ok(isAllowedTransition(from as 0, XenbusStateClosed));
  }
  assert.ok(!isAllowedTransition(XenbusStateClosing, XenbusStateInitWait));
  assert.ok(!isAllowedTransition(XenbusStateClosed, XenbusStateConnected));
  assert.ok(isAllowedTransition(XenbusStateConnected, XenbusStateInitialising), 'frontend restart after a backend restart');
  assert.ok(!isAllowedTransition(XenbusStateInitialising, XenbusStateReconfiguring));
});

test('waitForState: resolves on the wanted state, times out otherwise, and leaves no watch behind', () =>
  withStore(async (s) => {
    const c = s.connect(0);
    const peer = s.connect(0);
    await c.write(`${DIR}/state`, '1');
    const waiting = waitForState(c, DIR, isState(XenbusStateConnected), 2000);
    await peer.write(`${DIR}/state`, '2');
    await peer.write(`${DIR}/state`, '4');
    assert.deepEqual(await waiting, { kind: 'state', state: 4 });
    const t0 = Date.now();
    assert.equal(await code(waitForState(c, DIR, isState(XenbusStateClosed), 60)), 'ETIMEDOUT');
    assert.ok(Date.now() - t0 >= 55);
    // Already satisfied: the registration event is enough.
    assert.deepEqual(await waitForState(c, DIR, isState(XenbusStateConnected), 1000), { kind: 'state', state: 4 });
  }));

test('typed keys: defaults, bounds, strict decimals; writeKeys is atomic; removeKeys tolerates absence', () =>
  withStore(async (s) => {
    const c = s.connect(0);
    await writeKeys(c, DIR, { 'feature-a': true, 'feature-b': false, order: 4, name: 'xvda', bad: '0x10', neg: '-3', big: '99999999999999999' });
    assert.equal(await readBool(c, DIR, 'feature-a'), true);
    assert.equal(await readBool(c, DIR, 'feature-b', true), false);
    assert.equal(await readBool(c, DIR, 'feature-missing', true), true);
    assert.equal(await readUint(c, DIR, 'order', { max: 4 }), 4);
    assert.equal(await readUint(c, DIR, 'absent', { default: 7 }), 7);
    assert.equal(await code(readUint(c, DIR, 'order', { max: 3 })), 'EPROTO', 'above max');
    assert.equal(await code(readUint(c, DIR, 'order', { min: 5 })), 'EPROTO', 'below min');
    assert.equal(await code(readUint(c, DIR, 'absent')), 'EPROTO', 'missing without a default');
    for (const k of ['bad', 'neg', 'big', 'name']) assert.equal(await code(readUint(c, DIR, k)), 'EPROTO', k);
    assert.equal(await code(readBool(c, DIR, 'name')), 'EPROTO');
    assert.equal(await readStr(c, DIR, 'name', { pattern: /^xvd[a-z]$/ }), 'xvda');
    assert.equal(await code(readStr(c, DIR, 'name', { maxLength: 3 })), 'EPROTO');
    assert.equal(await code(readStr(c, DIR, 'bad', { pattern: /^[0-9]+$/ })), 'EPROTO');
    assert.equal(await readChoice(c, DIR, 'protocol', ['x86_64-abi', 'x86_32-abi'], 'x86_64-abi'), 'x86_64-abi');
    assert.equal(await code(readChoice(c, DIR, 'name', ['x86_64-abi'])), 'EPROTO');
    await removeKeys(c, DIR, ['feature-a', 'never-there']);
    assert.equal(await readBool(c, DIR, 'feature-a'), false);
  }));

test('withdrawIfUnsupported: EOPNOTSUPP withdraws the feature (it reads 0), other errors change nothing', () =>
  withStore(async (s) => {
    const c = s.connect(0);
    await writeKeys(c, DIR, { 'feature-discard': 1, 'feature-flush-cache': 1 });
    const unsupported = Object.assign(new Error('discard not supported'), { code: 'EOPNOTSUPP' });
    const io = Object.assign(new Error('I/O error'), { code: 'EIO' });
    assert.equal(await withdrawIfUnsupported(c, DIR, 'feature-flush-cache', io), false);
    assert.equal(await c.readString(`${DIR}/feature-flush-cache`), '1');
    assert.equal(await withdrawIfUnsupported(c, DIR, 'feature-discard', unsupported), true);
    assert.equal(await c.readString(`${DIR}/feature-discard`), '0');
    assert.equal(await readBool(c, DIR, 'feature-discard'), false);
  }));

test('paths: libxl shapes both ways, error nodes under the writer\'s home, strict parsers', () => {
  const dev = { frontClass: 'vbd', backClass: 'qdisk', frontDomid: 3 as DomId, backDomid: 0 as DomId, devid: 51712 };
  assert.equal(frontendPath(dev), '/local/domain/3/device/vbd/51712');
  assert.equal(backendPath(dev), '/local/domain/0/backend/qdisk/3/51712');
  assert.deepEqual(parseBackendPath(backendPath(dev)), { backDomid: 0, backClass: 'qdisk', frontDomid: 3, devid: 51712 });
  assert.deepEqual(parseFrontendPath(frontendPath(dev)), { frontDomid: 3, frontClass: 'vbd', devid: 51712 });
  for (const bad of ['/local/domain/0/backend/vbd/3/51712/x', '/local/domain/00/backend/vbd/3/1', '/local/domain/0/backend/vbd/32752/1', 'local/domain/0/backend/vbd/3/1', '/local/domain/0/backend/VBD/3/1']) {
    assert.equal(parseBackendPath(bad), undefined, bad);
  }
  assert.equal(parseDevid('4294967296'), undefined);
  assert.equal(parseDevid('007'), undefined);
  assert.equal(errorPath(frontendPath(dev), 3), '/local/domain/3/error/device/vbd/51712');
  assert.equal(errorPath(backendPath(dev), 0), '/local/domain/0/error/backend/qdisk/3/51712');
});

test('switchState and readState leave the state of a removed device alone (Initialising written by nobody)', () =>
  withStore(async (s) => {
    const c = s.connect(0);
    await c.write(`${DIR}/state`, String(XenbusStateInitialising));
    await c.rm(DIR);
    assert.equal(await switchState(c, DIR, XenbusStateClosed), false);
    assert.deepEqual(await readState(c, DIR), { kind: 'missing' });
  }));

test('RateBudget: at most max per sliding window', async () => {
  const { RateBudget } = await import('./reactor.js');
  let t = 0;
  const b = new RateBudget(3, 100, () => t);
  assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
  t = 99;
  assert.equal(b.take(), false);
  t = 100;
  assert.equal(b.take(), true, 'the first three left the window');
  assert.equal(b.take(), true);
  assert.equal(b.take(), true);
  assert.equal(b.take(), false);
});

test('Reactor: events during a step coalesce into one more step; a step error does not stop it', async () => {
  const { Reactor } = await import('./reactor.js');
  let steps = 0;
  const errors: unknown[] = [];
  let release: (() => void) | undefined;
  const r = new Reactor(async () => {
    steps++;
    if (steps === 1) await new Promise<void>((res) => (release = res));
    if (steps === 2) throw new Error('boom');
  }, (e) => errors.push(e));
  r.kick();
  for (let i = 0; i < 1000; i++) r.kick();
  await new Promise((res) => setImmediate(res));
  release!();
  await r.idle();
  assert.equal(steps, 2, '1000 kicks during step 1 cost one more step');
  assert.equal(errors.length, 1);
  r.kick();
  await r.idle();
  assert.equal(steps, 3);
  r.dispose();
  r.kick();
  await r.idle();
  assert.equal(steps, 3, 'no steps after dispose');
});
