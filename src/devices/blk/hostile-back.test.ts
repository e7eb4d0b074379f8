/**
 * A hostile backend against BlkFront (reliability.md R5, R8): bogus and duplicate response
 * ids, wrong operations, an overflowed rsp_prod, garbage device properties, pages kept
 * mapped. The frontend fails pending I/O with an error, closes the device, and never crashes
 * or reuses a page the backend still maps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLKIF_OP_READ, BLKIF_OP_WRITE } from '../../abi/io/blkif.js';
import type { DomId, GrantRef } from '../../base/index.js';
import { errorCode } from '../../base/index.js';
import { MAX_OPEN_OPS } from './protocol.js';
import { startRawBack, type RawBack } from './raw-back.js';
import { until, withBlkEnv, type BlkEnv } from './test-support.js';
import type { BlkFront } from './front.js';

async function expectBroken(env: BlkEnv, front: BlkFront, op: Promise<void>): Promise<void> {
  await assert.rejects(op, (err) => errorCode(err) === 'EIO');
  await until(async () => (await env.xsGuest.readString(`${env.frontPath}/state`)) === '5', 2000, 'frontend Closing');
  await assert.rejects(front.read(0, new Uint8Array(512)), (err) => errorCode(err) === 'EIO', 'the device stays dead');
}

const MISBEHAVIOURS: [string, (raw: RawBack, id: bigint) => void][] = [
  ['a response with an unknown id', (raw) => raw.respond({ id: 31n, operation: BLKIF_OP_READ, status: 0 })],
  ['a response with an id beyond the ring', (raw) => raw.respond({ id: 2n ** 63n, operation: BLKIF_OP_READ, status: 0 })],
  ['a response with the wrong operation', (raw, id) => raw.respond({ id, operation: BLKIF_OP_WRITE, status: 0 })],
  ['an overflowed rsp_prod', (raw) => raw.setRspProd(1000)],
];

for (const [name, misbehave] of MISBEHAVIOURS) {
  test(`hostile back: ${name} fails pending I/O and closes the frontend`, () =>
    withBlkEnv(async (env) => {
      const { raw, front, started } = await startRawBack(env);
      await started;
      const op = front.read(0, new Uint8Array(4096));
      const [req] = await raw.waitRequests(1);
      misbehave(raw, req!.kind === 'unknown' ? 0n : req!.id);
      await expectBroken(env, front, op);
      raw.dispose();
    }));
}

test('hostile back: a duplicate response id completes nothing twice and closes the frontend', () =>
  withBlkEnv(async (env) => {
    const { raw, front, started } = await startRawBack(env);
    await started;
    const a = front.read(0, new Uint8Array(512));
    const b = front.read(8, new Uint8Array(512));
    const reqs = await raw.waitRequests(2);
    const idA = reqs[0]!.kind === 'rw' ? reqs[0]!.id : -1n;
    // Two responses for two requests (ring accounting is fine), both naming the first id.
    raw.respond({ id: idA, operation: BLKIF_OP_READ, status: 0 }, { id: idA, operation: BLKIF_OP_READ, status: 0 });
    await a;
    await expectBroken(env, front, b);
    raw.dispose();
  }));

test(`hostile back: one that stops answering — past ${MAX_OPEN_OPS} open operations new I/O is refused with EAGAIN, not queued without bound`, { timeout: 30_000 }, () =>
  // (Without the bound the refused reads would be queued and never settle: the timeout fails it.)
  withBlkEnv(async (env) => {
    const { raw, front, started } = await startRawBack(env);
    await started;
    const settled: Promise<unknown>[] = [];
    for (let i = 0; i < MAX_OPEN_OPS; i++) settled.push(front.read(0, new Uint8Array(4096)).catch((err: unknown) => err));
    assert.equal(front.pending, MAX_OPEN_OPS, 'all accepted, on the ring or queued');
    await assert.rejects(front.read(0, new Uint8Array(512)), (err) => errorCode(err) === 'EAGAIN', 'read');
    await assert.rejects(front.flush(), (err) => errorCode(err) === 'EAGAIN', 'flush (the raw backend offers flush-cache)');
    const refused = front.submit('read', 0, new Uint8Array(512), () => assert.fail('a refused submit never completes'), 7);
    assert.equal(errorCode(refused), 'EAGAIN', 'submit');
    assert.equal(front.pending, MAX_OPEN_OPS, 'nothing more was queued');
    // One answer ends one operation: room for one more, and only one.
    const [req] = await raw.waitRequests(1);
    assert.ok(req !== undefined && req.kind === 'rw');
    raw.respond({ id: req.id, operation: BLKIF_OP_READ, status: 0 });
    await settled[0];
    const next = front.read(0, new Uint8Array(512)).catch((err: unknown) => err);
    await assert.rejects(front.read(0, new Uint8Array(512)), (err) => errorCode(err) === 'EAGAIN');
    raw.dispose();
    settled.push(next);
    void Promise.all(settled);
  }));

const BAD_PROPS: [string, Record<string, string>][] = [
  ['sectors not a number', { sectors: 'lots' }],
  ['sector-size not a power of two', { 'sector-size': '1000' }],
  ['sector-size above a page', { 'sector-size': '8192' }],
  ['info garbage', { info: '-4' }],
];

for (const [name, props] of BAD_PROPS) {
  test(`hostile back: ${name} — the frontend refuses to connect`, () =>
    withBlkEnv(async (env) => {
      const { raw, started } = await startRawBack(env, props);
      await assert.rejects(started, (err) => errorCode(err) === 'EIO');
      await until(async () => (await env.xsGuest.readString(`${env.frontPath}/state`)) === '5', 2000, 'frontend Closing');
      raw.dispose();
    }));
}

test('hostile back: a data page still mapped after the response is never reused or freed (R8)', () =>
  withBlkEnv(async (env) => {
    const { raw, front, started } = await startRawBack(env);
    await started;
    const buf = new Uint8Array(512);
    const op = front.read(0, buf);
    const req = (await raw.waitRequests(1))[0]!;
    assert.equal(req.kind, 'rw');
    if (req.kind !== 'rw') return;
    const gref = req.seg[0]!.gref as GrantRef;
    // Keep the data page mapped past the response, as a malicious backend would.
    const m = env.dom0.grants.map(env.guestId as DomId, [gref], true);
    raw.held.push(m);
    m.pages[0]!.fill(0x5a, 0, 512);
    raw.respond({ id: req.id, operation: BLKIF_OP_READ, status: 0 });
    await op;
    assert.ok(buf.every((b) => b === 0x5a));
    assert.equal(front.unreclaimedGrants, 1, 'the page waits in the reclaimer');
    // Later I/O never gets that page: the backend scribbling on it cannot reach new data.
    const second = front.read(8, new Uint8Array(512));
    const reqs = await raw.waitRequests(2);
    const r2 = reqs[1]!;
    assert.ok(r2.kind === 'rw' && r2.seg[0]!.gref !== gref, 'a different grant');
    raw.respond({ id: r2.kind === 'rw' ? r2.id : 0n, operation: BLKIF_OP_READ, status: 0 });
    await second;
    raw.dispose();
    await until(() => front.unreclaimedGrants === 0, 2000, 'reclaimed once unmapped');
  }));
