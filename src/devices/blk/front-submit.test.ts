/**
 * BlkFront.submit, the io_submit-style entry point (completion by callback with a tag, no
 * promise per I/O): every started request is answered exactly once with its tag and never
 * from inside the submit; a request refused up front returns its error and is never answered;
 * a hostile backend fails what is pending (R5) through the same callbacks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLKIF_OP_READ } from '../../abi/io/blkif.js';
import { errorCode } from '../../base/index.js';
import type { BlkBuffer } from './blk-buffer.js';
import { startRawBack } from './raw-back.js';
import { MemoryStorage } from './storage/memory.js';
import { pattern, startPair, until, withBlkEnv } from './test-support.js';

/** A completion log: one entry per done() call, and whether it ran inside a submit. */
class Completions {
  readonly seen: { tag: number; err: Error | undefined }[] = [];
  inSubmit = false;
  reentered = false;
  readonly done = (tag: number, err: Error | undefined): void => {
    if (this.inSubmit) this.reentered = true;
    this.seen.push({ tag, err });
  };

  /** Run `fn` (which submits) flagged, so a completion inside it is caught. */
  during<T>(fn: () => T): T {
    this.inSubmit = true;
    try {
      return fn();
    } finally {
      this.inSubmit = false;
    }
  }

  tags(): number[] {
    return this.seen.map((c) => c.tag).sort((a, b) => a - b);
  }
}

test('submit: writes then reads by callback, each tag answered once, never inside submit; data and counters right', () =>
  withBlkEnv(async (env) => {
    const disk = new MemoryStorage(4096);
    const { front } = await startPair(env, disk);
    const c = new Completions();
    const bufs: BlkBuffer[] = [];
    for (let i = 0; i < 8; i++) {
      const b = front.allocBuffer(4096, { persistent: true });
      b.copyIn(0, pattern(i * 16, 8, 3));
      bufs.push(b);
    }
    c.during(() => bufs.forEach((b, i) => assert.equal(front.submit('write', i * 16, b, c.done, i), undefined)));
    // A plain array over several ring requests (past the chunk size) is one operation, one answer.
    const big = pattern(2000, 600, 4);
    c.during(() => assert.equal(front.submit('write', 2000, big, c.done, 100), undefined));
    await until(() => c.seen.length === 9, 3000, 'write completions');
    assert.deepEqual(c.tags(), [0, 1, 2, 3, 4, 5, 6, 7, 100]);
    assert.ok(c.seen.every((x) => x.err === undefined));
    for (let i = 0; i < 8; i++) assert.deepEqual(disk.bytes.subarray(i * 16 * 512, (i * 16 + 8) * 512), pattern(i * 16, 8, 3));
    assert.deepEqual(disk.bytes.subarray(2000 * 512, 2600 * 512), big);

    const r = new Completions();
    const into = bufs.map(() => front.allocBuffer(4096, { persistent: true }));
    r.during(() => into.forEach((b, i) => assert.equal(front.submit('read', i * 16, b, r.done, 10 + i), undefined)));
    await until(() => r.seen.length === 8, 3000, 'read completions');
    assert.deepEqual(r.tags(), [10, 11, 12, 13, 14, 15, 16, 17]);
    into.forEach((b, i) => assert.deepEqual(b.toBytes(), pattern(i * 16, 8, 3), `read ${i}`));
    assert.equal(c.reentered || r.reentered, false, 'no completion inside a submit');
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(c.seen.length + r.seen.length, 17, 'nothing answered twice');
    assert.equal(front.counters.write.requests, 9);
    assert.equal(front.counters.read.requests, 8);
    assert.equal(front.counters.read.bytes, 8 * 4096);
    for (const b of [...bufs, ...into]) b.free();
    await front.close(2000);
  }));

test('submit: resubmitting from every completion, round after round (answered chunks and operations are reused), each tag gets its own data once, beside promise reads', () =>
  withBlkEnv(async (env) => {
    const regions = 64;
    const disk = new MemoryStorage(regions * 16);
    for (let k = 0; k < regions; k++) disk.bytes.set(pattern(k * 16, 16, 5), k * 16 * 512);
    const { front } = await startPair(env, disk);
    const depth = 8;
    const rounds = 40;
    // Tags 0..depth-1 read one page each, tag `depth` reads 8 KiB past the ring request size
    // (several chunks, one operation) from a plain array.
    const bufs = Array.from({ length: depth }, () => front.allocBuffer(4096, { persistent: true }));
    const big = new Uint8Array(16 * 512);
    const done = new Array<number>(depth + 1).fill(0);
    const region = new Array<number>(depth + 1).fill(0);
    const bad: string[] = [];
    const promised: Promise<void>[] = [];
    const start = (tag: number): void => {
      const k = (tag * 7 + done[tag]! * 13) % regions;
      region[tag] = k;
      const err = tag < depth ? front.submit('read', k * 16, bufs[tag]!, onDone, tag) : front.submit('read', k * 16, big, onDone, tag);
      if (err !== undefined) bad.push(`submit ${tag}: ${err.message}`);
    };
    const onDone = (tag: number, err: Error | undefined): void => {
      if (err !== undefined) bad.push(`tag ${tag}: ${err.message}`);
      const k = region[tag]!;
      const got = tag < depth ? bufs[tag]!.toBytes() : big;
      const want = tag < depth ? pattern(k * 16, 8, 5) : pattern(k * 16, 16, 5);
      if (!got.every((v, i) => v === want[i])) bad.push(`tag ${tag} round ${done[tag]}: region ${k} data differs`);
      // A promise read now and then: a promise operation is not one of the reused ones.
      if (tag === 0 && done[0]! % 5 === 0) {
        const into = new Uint8Array(4096);
        const p = (k + 1) % regions;
        promised.push(front.read(p * 16, into).then(() => assert.deepEqual(into, pattern(p * 16, 8, 5), `promise read of region ${p}`)));
      }
      if (++done[tag]! < rounds) start(tag);
    };
    for (let t = 0; t <= depth; t++) start(t);
    await until(() => done.every((n) => n === rounds), 10_000, 'every tag through its rounds');
    await Promise.all(promised);
    await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(bad, []);
    assert.deepEqual(done, new Array<number>(depth + 1).fill(rounds), 'each completion once');
    assert.equal(front.counters.read.requests, (depth + 1) * rounds + promised.length);
    for (const b of bufs) b.free();
    await front.close(2000);
  }));

test('close: a caller resubmitting from every completion is refused (ESHUTDOWN) once close begins, so the drain ends', () =>
  withBlkEnv(async (env) => {
    const { front } = await startPair(env, new MemoryStorage(4096));
    const bufs = Array.from({ length: 4 }, () => front.allocBuffer(4096, { persistent: true }));
    let answered = 0;
    let refusal: Error | undefined;
    const again = (tag: number): void => {
      answered++;
      const err = front.submit('read', tag * 8, bufs[tag]!, again, tag);
      if (err !== undefined) refusal ??= err;
    };
    for (let i = 0; i < 4; i++) assert.equal(front.submit('read', i * 8, bufs[i]!, again, i), undefined);
    await until(() => answered > 100, 3000, 'the loop running');
    const t0 = performance.now();
    await front.close(5000);
    assert.ok(performance.now() - t0 < 2000, `close took ${Math.round(performance.now() - t0)} ms`);
    assert.equal(errorCode(refusal), 'ESHUTDOWN');
    assert.match(refusal?.message ?? '', /is closing/);
    for (const b of bufs) b.free();
  }));

test('submit: a request refused up front returns its error and is never answered', () =>
  withBlkEnv(async (env) => {
    const { front } = await startPair(env, new MemoryStorage(64));
    const c = new Completions();
    assert.equal(errorCode(front.submit('read', 64, new Uint8Array(512), c.done, 1)), 'ERANGE');
    assert.equal(errorCode(front.submit('read', 0, new Uint8Array(100), c.done, 2)), 'EINVAL');
    assert.equal(errorCode(front.submit('read', 1.5, new Uint8Array(512), c.done, 3)), 'EINVAL');
    const freed = front.allocBuffer(4096);
    freed.free();
    assert.equal(errorCode(front.submit('write', 0, freed, c.done, 4)), 'EBUSY');
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(c.seen.length, 0);
    await front.close(2000);
  }));

test('submit: a write to a read-only disk is refused with EROFS', () =>
  withBlkEnv(async (env) => {
    const { front } = await startPair(env, new MemoryStorage(64, { readOnly: true }), { vbd: { mode: 'r' } });
    const c = new Completions();
    assert.equal(errorCode(front.submit('write', 0, new Uint8Array(512), c.done, 1)), 'EROFS');
    assert.equal(front.submit('read', 0, new Uint8Array(512), c.done, 2), undefined);
    await until(() => c.seen.length === 1, 2000, 'the read');
    assert.deepEqual(c.tags(), [2]);
    await front.close(2000);
  }));

test('submit: a hostile backend fails every pending request once through its callback, and later submits are refused', () =>
  withBlkEnv(async (env) => {
    const { raw, front, started } = await startRawBack(env);
    await started;
    const c = new Completions();
    c.during(() => {
      for (let i = 0; i < 3; i++) assert.equal(front.submit('read', i * 8, new Uint8Array(4096), c.done, i), undefined);
    });
    await raw.waitRequests(3);
    raw.respond({ id: 31n, operation: BLKIF_OP_READ, status: 0 });
    await until(() => c.seen.length === 3, 2000, 'pending requests failed');
    assert.deepEqual(c.tags(), [0, 1, 2]);
    assert.ok(c.seen.every((x) => errorCode(x.err) === 'EIO'), JSON.stringify(c.seen.map((x) => x.err?.message)));
    assert.equal(errorCode(front.submit('read', 0, new Uint8Array(512), c.done, 9)), 'EIO', 'the device stays dead');
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(c.seen.length, 3, 'nothing answered twice');
    raw.dispose();
  }));

test('submit: out of guest pages for the bounce page, the request is answered ENOMEM after the submit, not inside it', () =>
  withBlkEnv(async (env) => {
    // No persistent pool: each request of a plain array grants a fresh page of guest memory.
    const { front } = await startPair(env, new MemoryStorage(64), { front: { persistent: false } });
    const hog = env.guest.memory.allocPages(env.guest.memory.freeCount);
    const c = new Completions();
    try {
      c.during(() => assert.equal(front.submit('read', 0, new Uint8Array(4096), c.done, 5), undefined));
      assert.equal(c.seen.length, 0, 'not answered inside the submit');
      await until(() => c.seen.length === 1, 2000, 'the ENOMEM answer');
      assert.equal(c.seen[0]!.tag, 5);
      assert.equal(errorCode(c.seen[0]!.err), 'ENOMEM');
    } finally {
      env.guest.memory.freePages(hog);
    }
    c.during(() => assert.equal(front.submit('read', 0, new Uint8Array(4096), c.done, 6), undefined));
    await until(() => c.seen.length === 2, 2000, 'a read once memory is back');
    assert.equal(c.seen[1]!.err, undefined);
    await front.close(2000);
  }));
