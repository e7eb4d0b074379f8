import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeRequest, encodeRequest, type XsRequest } from './requests.js';
import { opName, XsOp } from './ops.js';
import { decodeErrorPayload, encodeErrorPayload } from './errors.js';
import { decodeDirectoryPart, decodeWatchEvent, encodeWatchEvent } from './replies.js';
import { parsePerm } from './perms.js';
import { canonicalPath, depthBelow, isValidCanonicalPath, quotaPathLength, relativeTo } from './paths.js';
import { latin1 } from './strings.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

function decode(op: keyof typeof XsOp, payload: string) {
  return decodeRequest(op, bytes(payload));
}

test('golden request payloads as libxenstore sends them', () => {
  const cases: [XsRequest, string][] = [
    [{ op: 'read', path: '/a' }, '/a\0'],
    [{ op: 'write', path: '/a', value: bytes('v\0x') }, '/a\0v\0x'],
    [{ op: 'watch', path: '/a', token: 'tok' }, '/a\0tok\0'],
    [{ op: 'watch', path: '/a', token: 'tok', depth: 1 }, '/a\0tok\x001\0'],
    [{ op: 'transactionStart' }, '\0'],
    [{ op: 'transactionEnd', commit: true }, 'T\0'],
    [{ op: 'setPerms', path: '/a', perms: [{ access: 'n', domid: 0 }, { access: 'r', domid: 5 }] }, '/a\0n0\0r5\0'],
    [{ op: 'introduce', domid: 3, gfn: -1, port: 7 }, '3\0-1\x007\0'],
    [{ op: 'directoryPart', path: '/', offset: 10 }, '/\x0010\0'],
    [{ op: 'getQuota' }, ''],
    [{ op: 'setQuota', domid: 2, quota: 'nodes', value: 5 }, '2\0nodes\x005\0'],
  ];
  for (const [req, payload] of cases) {
    const enc = encodeRequest(req);
    assert.equal(enc.type, XsOp[req.op]);
    assert.equal(latin1(enc.payload), payload, req.op);
    const dec = decodeRequest(req.op, enc.payload);
    assert.ok(dec.ok, req.op);
    assert.deepEqual(dec.req, req);
  }
});

test('one-argument requests need exactly one terminated string (onearg)', () => {
  assert.equal(decode('read', '/a').ok, false);
  assert.equal(decode('read', '/a\0/b\0').ok, false);
  assert.equal(decode('read', '').ok, false);
  assert.ok(decode('read', '\0').ok, 'the empty path decodes; the path check rejects it');
  assert.equal(decode('transactionEnd', 'X\0').ok, false);
  assert.equal(decode('release', '65536\0').ok, false);
  assert.equal(decode('release', '-1\0').ok, false);
  assert.equal(decode('write', '/a').ok, false, 'WRITE needs the NUL after the path');
  assert.equal(decode('setPerms', '/a\0').ok, false, 'SET_PERMS needs at least one perm');
  assert.equal(decode('setPerms', '/a\0x1\0').ok, false);
  assert.equal(decode('unwatch', '/a\0').ok, false);
  assert.equal(decode('watch', '/a\0t\0-1\0').ok, false, 'negative depth');
  assert.equal(decode('watchEvent', '/a\0t\0').ok, false);
});

test('perm strings follow libxenstore strtol(…, 0)', () => {
  assert.deepEqual(parsePerm('b0x10'), { access: 'b', domid: 16 });
  assert.deepEqual(parsePerm('r010'), { access: 'r', domid: 8 });
  assert.equal(parsePerm('w'), undefined, 'an empty domid is EINVAL in C');
  assert.equal(parsePerm('r1x'), undefined);
  assert.equal(parsePerm('q1'), undefined);
  assert.equal(parsePerm('r70000'), undefined);
});

test('error and watch-event payloads', () => {
  assert.equal(latin1(encodeErrorPayload('ENOENT')), 'ENOENT\0');
  assert.deepEqual(decodeErrorPayload(bytes('EAGAIN\0')), { name: 'EAGAIN', known: true });
  assert.deepEqual(decodeErrorPayload(bytes('EWHAT\0')), { name: 'EWHAT', known: false });
  const ev = encodeWatchEvent('/a/b', 'tok');
  assert.equal(ev.type, 15);
  assert.deepEqual(decodeWatchEvent(ev.payload), { path: '/a/b', token: 'tok' });
  assert.deepEqual(decodeDirectoryPart(bytes('12\0a\0b\0\0')), { generation: '12', children: ['a', 'b'], done: true });
  assert.deepEqual(decodeDirectoryPart(bytes('12\0a\0b\0')), { generation: '12', children: ['a', 'b'], done: false });
});

test('path rules', () => {
  assert.ok(isValidCanonicalPath('/', false));
  assert.ok(isValidCanonicalPath('/a-b/c_d/@e', false));
  assert.ok(!isValidCanonicalPath('@releaseDomain', false));
  assert.ok(isValidCanonicalPath('@releaseDomain', true));
  for (const p of ['', 'a', '/a/', '/a//b', '/a b', '/a.b', `/${'x'.repeat(3072)}`]) assert.ok(!isValidCanonicalPath(p, true), p);
  assert.equal(canonicalPath('device/vbd', 3), '/local/domain/3/device/vbd');
  assert.equal(canonicalPath('/x', 3), '/x');
  assert.equal(relativeTo('/local/domain/3/device/vbd', 3), 'device/vbd');
  assert.equal(quotaPathLength('/local/domain/3/abc'), 3);
  assert.equal(quotaPathLength('/tool/abc'), 9);
  assert.equal(depthBelow('/a', '/a/b/c'), 2);
  assert.equal(depthBelow('/', '/a'), 1);
  assert.equal(depthBelow('/a', '/ab'), -1);
});

test('fuzz: decodeRequest never throws on any op and payload', () => {
  fc.assert(
    fc.property(fc.nat(30), fc.uint8Array({ maxLength: 64 }), (type, payload) => {
      const op = opName(type);
      if (op === undefined) return;
      const r = decodeRequest(op, payload);
      if (!r.ok) assert.equal(r.error, 'EINVAL');
    }),
    { numRuns: 2000 },
  );
});
