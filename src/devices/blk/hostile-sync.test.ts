/**
 * blkback's synchronous data path (back-sync.ts: storage with `syncIo`, requests served inside
 * the serve pass, adjacent ones in one preadv/pwritev) against a hostile or merely unusual
 * frontend: refusals, bad grants, rewrites of the ring slot or the indirect page during the
 * I/O, partial segments, a failing run, and the coalescing itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BLKIF_REQUEST } from '../../abi/io/blkif.js';
import type { BlkifIndirectRequest } from '../../abi/io/blkif-codec.js';
import { XenpvError } from '../../base/index.js';
import { MemoryStorage } from './storage/memory.js';
import type { BlockStorage, SyncBlockIo } from './storage/types.js';
import { connectRaw, finishRaw, indirectWrite, rw } from './raw-support.js';
import { pattern, withBlkEnv } from './test-support.js';

/** A sync store whose syncIo calls are recorded and may be hooked (`before` runs ahead of each). */
function spyStorage(disk: MemoryStorage, before: (op: 'readv' | 'writev', sector: number, n: number) => void = () => undefined) {
  const calls: [string, number, number][] = [];
  const inner = disk.syncIo!;
  const syncIo: SyncBlockIo = {
    readv: (sector, dests) => {
      calls.push(['readv', sector, dests.length]);
      before('readv', sector, dests.length);
      inner.readv(sector, dests);
    },
    writev: (sector, srcs) => {
      calls.push(['writev', sector, srcs.length]);
      before('writev', sector, srcs.length);
      inner.writev(sector, srcs);
    },
  };
  const storage: BlockStorage = Object.assign(Object.create(disk) as BlockStorage, { syncIo });
  return { storage, calls };
}

test('sync path: adjacent writes become one pwritev, then adjacent reads one preadv, data intact', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256, { sync: true });
    const { storage, calls } = spyStorage(disk);
    const { raw } = await connectRaw(env, storage);
    const pages = [0, 1, 2, 3].map((i) => {
      const p = raw.dataPage(false);
      p.bytes.set(pattern(16 + i * 8, 8, 1));
      return p;
    });
    raw.send(...pages.map((p, i) => rw(BLKIF_OP_WRITE, BigInt(i), 16 + i * 8, p.ref)));
    const w = await raw.waitResponses(4);
    assert.ok(w.every((r) => r.status === BLKIF_RSP_OKAY && r.operation === BLKIF_OP_WRITE));
    assert.deepEqual(calls, [['writev', 16, 4]], 'one call for the four adjacent requests');
    assert.deepEqual(disk.bytes.subarray(16 * 512, 48 * 512), pattern(16, 32, 1));
    const into = [0, 1, 2, 3].map(() => raw.dataPage(true));
    // Out of disk order on the ring: 2 and 3 follow each other, 0 and 1 too, but not 3 and 0.
    raw.send(rw(BLKIF_OP_READ, 12n, 32, into[2]!.ref), rw(BLKIF_OP_READ, 13n, 40, into[3]!.ref), rw(BLKIF_OP_READ, 10n, 16, into[0]!.ref), rw(BLKIF_OP_READ, 11n, 24, into[1]!.ref));
    const r = await raw.waitResponses(8);
    assert.ok(r.slice(4).every((x) => x.status === BLKIF_RSP_OKAY && x.operation === BLKIF_OP_READ));
    assert.deepEqual(calls.slice(1), [['readv', 32, 2], ['readv', 16, 2]]);
    into.forEach((p, i) => assert.deepEqual(p.bytes, pattern(16 + i * 8, 8, 1), `page ${i}`));
    await finishRaw(env, raw);
  }));

test('sync path: partial segments move only their sectors', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(64, { sync: true });
    disk.bytes.set(pattern(0, 64, 2));
    const { raw } = await connectRaw(env, disk, { persistent: true });
    const page = raw.dataPage(true, 0xaa);
    raw.send(rw(BLKIF_OP_READ, 1n, 8, page.ref, 2, 4));
    const [rsp] = await raw.waitResponses(1);
    assert.equal(rsp!.status, BLKIF_RSP_OKAY);
    assert.ok(page.bytes.subarray(0, 1024).every((b) => b === 0xaa), 'before first_sect untouched');
    assert.deepEqual(page.bytes.subarray(1024, 2560), pattern(8, 3, 2));
    assert.ok(page.bytes.subarray(2560).every((b) => b === 0xaa), 'after last_sect untouched');
    const src = raw.dataPage(false);
    src.bytes.set(pattern(40, 8, 3));
    raw.send(rw(BLKIF_OP_WRITE, 2n, 20, src.ref, 5, 6));
    await raw.waitResponses(2);
    assert.deepEqual(disk.bytes.subarray(20 * 512, 22 * 512), pattern(40, 8, 3).subarray(5 * 512, 7 * 512));
    assert.deepEqual(disk.bytes.subarray(22 * 512, 23 * 512), pattern(22, 1, 2), 'the next sector kept');
    await finishRaw(env, raw);
  }));

test('sync path: bad grants, bad ranges and unknown ops are refused one by one; the ring keeps working', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(64, { sync: true });
    const { raw } = await connectRaw(env, disk, { persistent: true });
    const good = raw.dataPage(true);
    const roPage = raw.dataPage(false);
    raw.send(
      rw(BLKIF_OP_READ, 1n, 0, 0),
      rw(BLKIF_OP_READ, 2n, 8, 0x7fffffff),
      rw(BLKIF_OP_READ, 3n, 0, roPage.ref),
      rw(BLKIF_OP_WRITE, 4n, 60, roPage.ref),
      rw(BLKIF_OP_WRITE, 5n, 0, roPage.ref, 6, 2),
      rw(BLKIF_OP_READ, 6n, 0, good.ref),
    );
    raw.ring.putRequest({ kind: 'rw', operation: 9 as 0, nr_segments: 0, handle: 0, id: 7n, sector_number: 0n, seg: [] });
    raw.send();
    const byId = new Map((await raw.waitResponses(7)).map((r) => [r.id, r.status]));
    assert.deepEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n].map((i) => byId.get(i)), [
      BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BLKIF_RSP_EOPNOTSUPP,
    ]);
    assert.ok(roPage.bytes.every((b) => b === 0), 'nothing written into a read-only grant');
    assert.ok(disk.bytes.every((b) => b === 0), 'no refused request touched the disk');
    await finishRaw(env, raw);
  }));

test('sync path: a slot and an indirect page rewritten during the I/O change nothing (copy-once)', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256, { sync: true });
    let slots: Uint8Array | undefined;
    let indirect: Uint8Array | undefined;
    const f = BLKIF_REQUEST.layouts.x86_64.fields;
    const { storage, calls } = spyStorage(disk, () => {
      const v = new DataView(slots!.buffer, slots!.byteOffset);
      for (let s = 0; s < 4; s++) {
        v.setBigUint64(64 + s * 112 + f.id, 999n, true);
        v.setBigUint64(64 + s * 112 + f.sector_number, 200n, true);
      }
      const iv = new DataView(indirect!.buffer, indirect!.byteOffset);
      for (let i = 0; i < 12; i++) {
        iv.setUint32(i * 8, 3, true);
        iv.setUint8(i * 8 + 5, 200);
      }
    });
    const { raw } = await connectRaw(env, storage);
    slots = raw.pages[0]!.bytes;
    const w = indirectWrite(raw, 12, 16);
    indirect = w.indirect.bytes;
    raw.send(w.req);
    const [rsp] = await raw.waitResponses(1);
    assert.deepEqual(rsp, { id: 9n, operation: BLKIF_OP_WRITE, status: BLKIF_RSP_OKAY });
    assert.deepEqual(calls, [['writev', 16, 12]]);
    for (let i = 0; i < 12; i++) {
      assert.ok(disk.bytes.subarray((16 + i * 8) * 512, (24 + i * 8) * 512).every((b) => b === i + 1), `page ${i} from its original grant`);
    }
    assert.ok(disk.bytes.subarray(200 * 512).every((b) => b === 0), 'the rewritten sector was never used');
    await finishRaw(env, raw);
  }));

test('sync path: when a run fails, each request gets its own status', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256, { sync: true });
    // The medium fails for any transfer that touches sector 24.
    const { storage, calls } = spyStorage(disk, (_op, sector, n) => {
      if (sector <= 24 && 24 < sector + n * 8) throw new XenpvError('EIO', 'bad sector 24');
    });
    const { raw, back } = await connectRaw(env, storage);
    const pages = [0, 1, 2].map((i) => raw.dataPage(false, i + 1));
    raw.send(...pages.map((p, i) => rw(BLKIF_OP_WRITE, BigInt(i), 16 + i * 8, p.ref)));
    const byId = new Map((await raw.waitResponses(3)).map((r) => [r.id, r.status]));
    assert.deepEqual([0n, 1n, 2n].map((i) => byId.get(i)), [BLKIF_RSP_OKAY, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY]);
    assert.deepEqual(calls, [['writev', 16, 3], ['writev', 16, 1], ['writev', 24, 1], ['writev', 32, 1]]);
    assert.ok(disk.bytes.subarray(16 * 512, 24 * 512).every((b) => b === 1));
    assert.ok(disk.bytes.subarray(32 * 512, 40 * 512).every((b) => b === 3));
    assert.equal(back.counters.write.errors, 1);
    assert.equal(back.counters.write.requests, 3);
    await finishRaw(env, raw);
  }));

test('sync path: indirect requests with a bad segment, a range past the end, or a grant that will not map are refused one by one; a good one is served', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(256, { sync: true });
    const { storage, calls } = spyStorage(disk);
    const { raw, back } = await connectRaw(env, storage, { persistent: true });
    const setSeg = (page: Uint8Array, i: number, ref: number, first: number, last: number): void => {
      const v = new DataView(page.buffer, page.byteOffset);
      v.setUint32(i * 8, ref, true);
      v.setUint8(i * 8 + 4, first);
      v.setUint8(i * 8 + 5, last);
    };
    const badSect = indirectWrite(raw, 12, 16);
    setSeg(badSect.indirect.bytes, 5, raw.dataPage(false).ref, 3, 8); // last_sect past the page
    const pastEnd = indirectWrite(raw, 12, 200); // 96 sectors from 200 on a 256-sector disk
    const badData = indirectWrite(raw, 12, 16);
    setSeg(badData.indirect.bytes, 11, 0x7fffffff, 0, 7); // a data ref never granted
    const good = indirectWrite(raw, 12, 16);
    const req = (w: ReturnType<typeof indirectWrite>, id: bigint): BlkifIndirectRequest => ({ ...(w.req as BlkifIndirectRequest), id });
    raw.send(
      req(badSect, 1n),
      req(pastEnd, 2n),
      { ...req(good, 3n), indirect_grefs: [0x7ffffffe, 0, 0, 0, 0, 0, 0, 0] }, // the indirect page itself will not map
      req(badData, 4n),
      req(good, 5n),
    );
    const byId = new Map((await raw.waitResponses(5)).map((r) => [r.id, r]));
    assert.deepEqual([1n, 2n, 3n, 4n, 5n].map((i) => byId.get(i)!.status), [BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY]);
    assert.ok([...byId.values()].every((r) => r.operation === BLKIF_OP_WRITE), 'answered with the indirect_op');
    assert.deepEqual(calls, [['writev', 16, 12]], 'only the good request reached the disk');
    for (let i = 0; i < 12; i++) assert.ok(disk.bytes.subarray((16 + i * 8) * 512, (24 + i * 8) * 512).every((b) => b === i + 1), `page ${i}`);
    assert.equal(back.counters.write.errors, 4);
    await finishRaw(env, raw);
  }));
