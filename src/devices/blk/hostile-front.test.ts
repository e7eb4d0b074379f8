/**
 * A hostile frontend against BlkBack (issue 4, reliability.md R1-R3, R9, R10): each scenario a
 * named test. The backend must answer with an error response or close the device; never
 * crash, leak (withBlkEnv checks mappings, grants, ports, watches), or touch memory the
 * frontend did not grant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import { BLKIF_REQUEST } from '../../abi/io/blkif.js';
import { MemoryStorage } from './storage/memory.js';
import type { BlockStorage } from './storage/types.js';
import { RawFront } from './raw-front.js';
import { backState, connectRaw, finishRaw, indirectWrite, rw } from './raw-support.js';
import { pattern, until, withBlkEnv } from './test-support.js';

test('hostile front: overflowed req_prod halts the ring and closes the device', () =>
  withBlkEnv(async (env) => {
    const { back, raw } = await connectRaw(env);
    raw.setReqProd(raw.ring.size + 5);
    await until(async () => (await backState(env)) === '5', 3000, 'backend Closing');
    assert.equal(back.isConnected, false, 'rings dropped');
    const err = await env.xs0.readString(`/local/domain/0/error/backend/vbd/${env.guestId}/51712/error`);
    assert.match(err, /request-prod-overflow/);
    await finishRaw(env, raw);
  }));

test('hostile front: a ring broken while a FLUSH waits for storage leaves none of its pages mapped (found by hostile-fuzz)', () =>
  withBlkEnv(async (env) => {
    // A FLUSH_DISKCACHE with data flushes first and maps its pages only then. When the frontend
    // breaks the ring meanwhile, the queue is disposed at once (no drain); the FLUSH must not
    // map its page into the disposed queue's persistent cache, where nothing would unmap it.
    const disk = new MemoryStorage(64);
    let release = (): void => undefined;
    const flushed = new Promise<void>((r) => (release = r));
    let flushing = false;
    const gated: BlockStorage = Object.assign(Object.create(disk) as BlockStorage, {
      flush: async () => {
        flushing = true;
        await flushed;
      },
    });
    await env.addVbd();
    const back = env.newBack(gated, { persistent: true });
    await back.start();
    const raw = new RawFront(env);
    await raw.connect({ 'feature-persistent': '1' });
    await until(async () => (await backState(env)) === '4', 3000, 'backend Connected');
    const page = raw.dataPage(true, 0xee);
    raw.send({ kind: 'rw', operation: BLKIF_OP_FLUSH_DISKCACHE, nr_segments: 1, handle: 0, id: 1n, sector_number: 8n, seg: [{ gref: page.ref, first_sect: 0, last_sect: 7 }] });
    await until(() => flushing, 3000, 'the FLUSH reaches storage');
    raw.setReqProd(raw.ring.size + 5);
    await until(async () => (await backState(env)) === '5', 3000, 'backend Closing');
    assert.equal(back.isConnected, false);
    release();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(env.hv.dom0.grants.maptrack.live().length, 0, 'nothing mapped once the queue is closed');
    assert.ok(disk.bytes.every((b) => b === 0), 'and nothing of the FLUSH written after it');
    await finishRaw(env, raw);
  }));

test('hostile front: a slot rewritten after the backend read it changes nothing (copy-once)', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(64);
    let slot: Uint8Array | undefined;
    const writes: number[] = [];
    // Storage that, while the backend works on the request, lets the frontend rewrite the slot.
    const spy: BlockStorage = Object.assign(Object.create(disk) as BlockStorage, {
      write: async (sector: number, src: Uint8Array) => {
        writes.push(sector);
        const v = new DataView(slot!.buffer, slot!.byteOffset);
        const f = BLKIF_REQUEST.layouts.x86_64.fields;
        v.setBigUint64(64 + f.id, 999n, true);
        v.setBigUint64(64 + f.sector_number, 40n, true);
        v.setUint8(64 + f.seg + 5, 200);
        return disk.write(sector, src);
      },
    });
    const { raw } = await connectRaw(env, spy);
    slot = raw.pages[0]!.bytes;
    const page = raw.dataPage(false);
    page.bytes.set(pattern(8, 8, 3));
    raw.send(rw(BLKIF_OP_WRITE, 5n, 8, page.ref));
    const [rsp] = await raw.waitResponses(1);
    assert.deepEqual(rsp, { id: 5n, operation: BLKIF_OP_WRITE, status: BLKIF_RSP_OKAY });
    assert.deepEqual(writes, [8]);
    assert.deepEqual(disk.bytes.subarray(8 * 512, 16 * 512), pattern(8, 8, 3));
    assert.ok(disk.bytes.subarray(40 * 512, 48 * 512).every((b) => b === 0), 'the rewritten sector was never used');
    await finishRaw(env, raw);
  }));

test('hostile front: an indirect page rewritten after the backend copied it changes nothing', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256);
    let indirect: Uint8Array | undefined;
    const seen: number[] = [];
    // The frontend rewrites its segment list while the backend works: gref and sectors.
    const scribble = (): void => {
      const v = new DataView(indirect!.buffer, indirect!.byteOffset);
      for (let i = 0; i < 12; i++) {
        v.setUint32(i * 8, 3, true);
        v.setUint8(i * 8 + 5, 200);
      }
    };
    const spy: BlockStorage = Object.assign(Object.create(disk) as BlockStorage, {
      write: async (sector: number, src: Uint8Array) => {
        seen.push(sector, src.byteLength);
        scribble();
        return disk.write(sector, src);
      },
      read: async (sector: number, dst: Uint8Array) => {
        scribble();
        return disk.read(sector, dst);
      },
    });
    const { raw } = await connectRaw(env, spy);
    const w = indirectWrite(raw, 12, 16);
    indirect = w.indirect.bytes;
    raw.send(w.req);
    const [rsp] = await raw.waitResponses(1);
    assert.deepEqual(rsp, { id: 9n, operation: BLKIF_OP_WRITE, status: BLKIF_RSP_OKAY }, 'answered with the indirect_op, as Linux blkback');
    assert.deepEqual(seen, [16, 12 * 4096]);
    for (let i = 0; i < 12; i++) {
      assert.ok(disk.bytes.subarray((16 + i * 8) * 512, (24 + i * 8) * 512).every((b) => b === i + 1), `page ${i} written from its original grant`);
    }
    // A READ: the data lands in the pages named before the rewrite.
    const into = Array.from({ length: 12 }, () => raw.dataPage(true));
    const v = new DataView(w.indirect.bytes.buffer, w.indirect.bytes.byteOffset);
    into.forEach((p, i) => {
      v.setUint32(i * 8, p.ref, true);
      v.setUint8(i * 8 + 4, 0);
      v.setUint8(i * 8 + 5, 7);
    });
    raw.send({ kind: 'indirect', operation: 6, indirect_op: BLKIF_OP_READ, nr_segments: 12, id: 10n, sector_number: 16n, handle: 0, indirect_grefs: [w.indirect.ref, 0, 0, 0, 0, 0, 0, 0] });
    const rsps = await raw.waitResponses(2);
    assert.deepEqual(rsps[1], { id: 10n, operation: BLKIF_OP_READ, status: BLKIF_RSP_OKAY });
    into.forEach((p, i) => assert.ok(p.bytes.every((b) => b === i + 1), `read page ${i}`));
    await finishRaw(env, raw);
  }));

for (const dataPath of ['map', 'copy'] as const) test(`hostile front: bad grant refs get BLKIF_RSP_ERROR, and the ring keeps working (${dataPath})`, () =>
  withBlkEnv(async (env) => {
    const { raw } = await connectRaw(env, new MemoryStorage(64), { dataPath });
    const good = raw.dataPage(true);
    const roPage = raw.dataPage(false);
    raw.send(
      rw(BLKIF_OP_READ, 1n, 0, 0), // reserved ref
      rw(BLKIF_OP_READ, 2n, 0, 0x7fffffff), // beyond the table
      rw(BLKIF_OP_READ, 3n, 0, 500), // never granted
      rw(BLKIF_OP_READ, 4n, 0, roPage.ref), // a READ needs to write: read-only grant refused
      rw(BLKIF_OP_READ, 5n, 0, good.ref),
    );
    const rsps = await raw.waitResponses(5);
    const byId = new Map(rsps.map((r) => [r.id, r.status]));
    assert.deepEqual([1n, 2n, 3n, 4n, 5n].map((i) => byId.get(i)), [BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY]);
    assert.ok(roPage.bytes.every((b) => b === 0), 'nothing written into a read-only grant');
    await finishRaw(env, raw);
  }));

test('hostile front: segments outside the page, sectors past the end, unknown ops', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(64);
    const { raw } = await connectRaw(env, disk);
    const page = raw.dataPage(false, 0xee);
    raw.send(
      rw(BLKIF_OP_WRITE, 1n, 0, page.ref, 0, 8),
      rw(BLKIF_OP_WRITE, 2n, 0, page.ref, 6, 2),
      rw(BLKIF_OP_WRITE, 3n, 60, page.ref),
      rw(BLKIF_OP_WRITE, 4n, 2 ** 40, page.ref),
    );
    raw.ring.putRequest({ kind: 'rw', operation: 9 as 0, nr_segments: 0, handle: 0, id: 5n, sector_number: 0n, seg: [] });
    raw.send();
    const rsps = await raw.waitResponses(5);
    const byId = new Map(rsps.map((r) => [r.id, r.status]));
    assert.deepEqual([1n, 2n, 3n, 4n, 5n].map((i) => byId.get(i)), [BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP]);
    assert.ok(disk.bytes.every((b) => b === 0), 'no refused request touched the disk');
    await finishRaw(env, raw);
  }));

test('hostile front: writes to a read-only disk (mode r) are refused', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(64);
    const { raw } = await connectRaw(env, disk, { mode: 'r' });
    assert.equal(await env.xs0.readString(`${env.backPath}/info`), '4', 'VDISK_READONLY');
    assert.equal(await env.xs0.readString(`${env.backPath}/feature-flush-cache`), '0');
    const page = raw.dataPage(false, 0x11);
    raw.send(rw(BLKIF_OP_WRITE, 1n, 0, page.ref));
    raw.ring.putRequest({ kind: 'discard', operation: 5, flag: 0, handle: 0, id: 2n, sector_number: 0n, nr_sectors: 8n });
    raw.send();
    const rsps = await raw.waitResponses(2);
    assert.equal(rsps.find((r) => r.id === 1n)?.status, BLKIF_RSP_ERROR);
    assert.notEqual(rsps.find((r) => r.id === 2n)?.status, BLKIF_RSP_OKAY);
    assert.ok(disk.bytes.every((b) => b === 0));
    await finishRaw(env, raw);
  }));

const GARBAGE: [string, Record<string, string>][] = [
  ['ring-ref not a number', { 'ring-ref': 'abc' }],
  ['ring-ref negative', { 'ring-ref': '-1' }],
  ['ring-ref huge', { 'ring-ref': '99999999999999' }],
  ['ring-ref never granted', { 'ring-ref': '700' }],
  ['event-channel 0', { 'event-channel': '0' }],
  ['event-channel not ours', { 'event-channel': '1000' }],
  ['event-channel hex', { 'event-channel': '0x10' }],
  ['ring-page-order too big', { 'ring-page-order': '9' }],
  ['protocol arm-abi', { protocol: 'arm-abi' }],
  ['protocol garbage', { protocol: 'x'.repeat(300) }],
  ['num-ring-pages 3', { 'num-ring-pages': '3' }],
  ['multi-queue-num-queues 1000', { 'multi-queue-num-queues': '1000' }],
  ['multi-queue-num-queues 2 without queue dirs', { 'multi-queue-num-queues': '2' }],
  ['feature-persistent garbage', { 'feature-persistent': 'yes' }],
];

for (const [name, keys] of GARBAGE) {
  test(`hostile front: garbage key (${name}) closes the device`, () =>
    withBlkEnv(async (env) => {
      await env.addVbd();
      const back = env.newBack(new MemoryStorage(64), { persistent: false });
      await back.start();
      const raw = new RawFront(env);
      await raw.connect(keys);
      await until(async () => (await backState(env)) === '5', 3000, 'backend Closing');
      assert.equal(back.isConnected, false);
      assert.equal(env.hv.dom0.grants.maptrack.live().length, 0, 'nothing left mapped');
      await finishRaw(env, raw);
    }));
}

test('hostile front: state flapping while connected leaves no mapping, port or watch behind', () =>
  withBlkEnv(async (env) => {
    const { back, raw } = await connectRaw(env);
    const page = raw.dataPage(true);
    raw.send(rw(BLKIF_OP_READ, 1n, 0, page.ref));
    let seed = 7;
    for (let i = 0; i < 150; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      await env.xsGuest.write(`${env.frontPath}/state`, String([1, 2, 3, 4, 5, 6, 7, 8, 42][seed % 9]));
    }
    await env.xsGuest.write(`${env.frontPath}/state`, '6');
    // Watch events still in flight may start one more step: wait until the backend is quiet.
    await until(async () => {
      await new Promise((r) => setTimeout(r, 30));
      await back.idle();
      return ['5', '6'].includes(await backState(env)) && env.hv.dom0.grants.maptrack.live().length === 0;
    }, 3000, 'backend settles closed and unmapped');
    assert.equal(back.isConnected, false);
    await raw.dispose();
  }));
