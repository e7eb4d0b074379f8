import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDirectoryPart, encodeMessage, latin1, XsOp, type XsRequest } from '../protocol/index.js';
import { Xenstored } from './xenstored.js';
import { str, TestClient } from './test-support.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

function setup() {
  const d = new Xenstored();
  const dom0 = new TestClient(d, 0);
  const dom1 = new TestClient(d, 1);
  const dom2 = new TestClient(d, 2);
  return { d, dom0, dom1, dom2, close: () => d.close() };
}

test('scenario table: (who, request, expected)', () => {
  const s = setup();
  const who = { dom0: s.dom0, dom1: s.dom1, dom2: s.dom2 };
  const rows: [keyof typeof who, XsRequest, string][] = [
    ['dom0', { op: 'read', path: '/' }, ''],
    ['dom0', { op: 'getPerms', path: '/' }, 'n0'],
    ['dom0', { op: 'getPerms', path: '@releaseDomain' }, 'n0'],
    ['dom0', { op: 'read', path: '/nope' }, 'ENOENT'],
    ['dom0', { op: 'write', path: '/a/b/c', value: bytes('v') }, 'OK'],
    ['dom0', { op: 'read', path: '/a/b/c' }, 'v'],
    ['dom0', { op: 'read', path: '/a/b' }, ''],
    ['dom0', { op: 'mkdir', path: '/a/b' }, 'OK'],
    ['dom0', { op: 'read', path: '/a/b/c' }, 'v'],
    ['dom0', { op: 'write', path: 'rel', value: bytes('r') }, 'OK'],
    ['dom0', { op: 'read', path: '/local/domain/0/rel' }, 'r'],
    ['dom0', { op: 'write', path: '/a/', value: bytes('') }, 'EINVAL'],
    ['dom0', { op: 'write', path: '/a//b', value: bytes('') }, 'EINVAL'],
    ['dom0', { op: 'write', path: '/a b', value: bytes('') }, 'EINVAL'],
    ['dom0', { op: 'write', path: '', value: bytes('') }, 'EINVAL'],
    ['dom0', { op: 'write', path: '@releaseDomain', value: bytes('') }, 'EINVAL'],
    ['dom0', { op: 'rm', path: '/' }, 'EINVAL'],
    ['dom0', { op: 'rm', path: '/a/zz' }, 'OK'],
    ['dom0', { op: 'rm', path: '/zz/yy' }, 'ENOENT'],
    ['dom0', { op: 'getDomainPath', domid: 7 }, '/local/domain/7'],
    ['dom1', { op: 'getDomainPath', domid: 7 }, '/local/domain/7'],
    ['dom1', { op: 'introduce', domid: 3, gfn: 1, port: 1 }, 'EACCES'],
    ['dom1', { op: 'release', domid: 3 }, 'EACCES'],
    ['dom1', { op: 'isDomainIntroduced', domid: 3 }, 'EACCES'],
    ['dom1', { op: 'setTarget', domid: 3, target: 4 }, 'EACCES'],
    ['dom1', { op: 'getQuota' }, 'EACCES'],
    ['dom1', { op: 'control', args: ['check'] }, 'EACCES'],
    ['dom0', { op: 'isDomainIntroduced', domid: 0 }, 'T'],
    ['dom0', { op: 'isDomainIntroduced', domid: 3 }, 'F'],
    ['dom0', { op: 'release', domid: 3 }, 'ENOENT'],
    ['dom0', { op: 'release', domid: 0 }, 'EINVAL'],
    ['dom0', { op: 'resume', domid: 3 }, 'ENOENT'],
    ['dom0', { op: 'introduce', domid: 3, gfn: 100, port: 5 }, 'OK'],
    ['dom0', { op: 'isDomainIntroduced', domid: 3 }, 'T'],
    ['dom0', { op: 'introduce', domid: 3, gfn: 101, port: 5 }, 'EINVAL'],
    ['dom0', { op: 'introduce', domid: 3, gfn: 100, port: 6 }, 'OK'],
    ['dom0', { op: 'setFeature', domid: 3, features: 1 }, 'EBUSY'],
    ['dom0', { op: 'setFeature', domid: 4, features: 16 }, 'EINVAL'],
    ['dom0', { op: 'setFeature', domid: 4, features: 3 }, 'OK'],
    ['dom0', { op: 'getFeature', domid: 4 }, '3'],
    ['dom0', { op: 'getFeature' }, '15'],
    ['dom1', { op: 'getFeature', domid: 4 }, 'EACCES'],
    ['dom0', { op: 'resume', domid: 3 }, 'OK'],
    ['dom0', { op: 'release', domid: 3 }, 'OK'],
    ['dom0', { op: 'isDomainIntroduced', domid: 3 }, 'F'],
    ['dom0', { op: 'getQuota' }, 'nodes watches outstanding memory soft-memory transactions transaction-nodes node-permissions path-max node-size'],
    ['dom0', { op: 'getQuota', quota: 'nodes' }, '1000'],
    ['dom0', { op: 'getQuota', quota: 'bogus' }, 'EINVAL'],
    ['dom0', { op: 'setQuota', domid: 5, quota: 'nodes', value: 7 }, 'OK'],
    ['dom0', { op: 'getQuota', domid: 5, quota: 'nodes' }, '7'],
    ['dom0', { op: 'getQuota', quota: 'nodes' }, '1000'],
    ['dom0', { op: 'setQuota', quota: 'watches', value: 0 }, 'EINVAL'],
    ['dom0', { op: 'control', args: ['check'] }, 'OK'],
    ['dom0', { op: 'control', args: ['frobnicate'] }, 'EINVAL'],
    ['dom0', { op: 'transactionEnd', commit: true }, 'ENOENT'],
    ['dom0', { op: 'unwatch', path: '/a', token: 't' }, 'ENOENT'],
  ];
  for (const [w, req, want] of rows) assert.equal(str(who[w].request(req)), want, `${w} ${JSON.stringify(req)}`);
  s.close();
});

test('unknown, removed and server-only message types get ENOSYS; the client stays usable', () => {
  const s = setup();
  for (const type of [20, 27, 99, 0xffff, XsOp.watchEvent, XsOp.error]) {
    s.dom0.raw(encodeMessage({ type, reqId: 77, txId: 0, payload: bytes('/\0') }));
    const m = s.dom0.transport.received.pop()!;
    assert.equal(m.type, XsOp.error);
    assert.equal(m.reqId, 77);
    assert.equal(latin1(m.payload), 'ENOSYS\0');
  }
  assert.equal(s.dom0.read('/'), '');
  s.close();
});

test('a request naming an unknown transaction gets ENOENT; WATCH ignores tx_id', () => {
  const s = setup();
  assert.equal(s.dom0.read('/', 42), 'ENOENT');
  assert.equal(str(s.dom0.request({ op: 'watch', path: '/', token: 'x' }, 42)), 'OK');
  s.close();
});

test('a directory reply over 4096 bytes is E2BIG; DIRECTORY_PART pages through it', () => {
  const s = setup();
  const names: string[] = [];
  for (let i = 0; i < 300; i++) {
    const n = `child-with-a-long-name-${String(i).padStart(4, '0')}`;
    names.push(n);
    assert.equal(s.dom0.write(`/big/${n}`, ''), 'OK');
  }
  assert.equal(str(s.dom0.request({ op: 'directory', path: '/big' })), 'E2BIG');
  const got: string[] = [];
  let offset = 0;
  let gen: string | undefined;
  for (;;) {
    const r = s.dom0.request({ op: 'directoryPart', path: '/big', offset });
    assert.ok(r.ok);
    assert.ok(r.payload.length <= 4096);
    const part = decodeDirectoryPart(r.payload)!;
    gen ??= part.generation;
    assert.equal(part.generation, gen, 'gencnt stable while unchanged');
    got.push(...part.children);
    offset += part.children.reduce((n, c) => n + c.length + 1, 0);
    if (part.done) break;
  }
  assert.deepEqual(got, names);
  s.close();
});

test('WRITE values are binary-safe; READ returns the exact bytes', () => {
  const s = setup();
  const value = new Uint8Array([0, 1, 255, 0, 10]);
  assert.equal(str(s.dom0.request({ op: 'write', path: '/bin', value })), 'OK');
  const r = s.dom0.request({ op: 'read', path: '/bin' });
  assert.ok(r.ok);
  assert.deepEqual([...r.payload], [...value]);
  s.close();
});
