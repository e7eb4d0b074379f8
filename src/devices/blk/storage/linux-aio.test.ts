/**
 * Linux AIO batches (linux-aio.ts) on real files, and the storage batch built on them
 * (sync-file.ts, raw.ts, checked.ts): many transfers at their own offsets in one
 * submission, each with its own outcome, bytes checked against what pread/pwrite see.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, truncateSync } from 'node:fs';
import { after, test } from 'node:test';
import { BugError, XenpvError } from '../../../base/index.js';
import { BufferAddresses, LinuxAio } from './linux-aio.js';
import { NodeImageFile } from './node-file.js';
import { SyncImageFile } from './sync-file.js';
import { openStorage } from './open.js';
import { checkEngineWrites, filled, tempDir, writeFilled } from './test-util.js';
import type { SyncBlockOp } from './types.js';

const dir = tempDir('linux-aio');
after(() => dir.remove());


function blockOp(write: boolean, sector: number, bufs: Uint8Array[]): SyncBlockOp {
  return { write, sector, bufs, bytes: bufs.reduce((n, b) => n + b.byteLength, 0) };
}

function aio(): LinuxAio {
  const a = LinuxAio.create(16, 64);
  assert.ok(typeof a === 'object', `Linux AIO is available on the machines xenpv runs on: ${String(a)}`);
  return a;
}

test('linux aio: a batch of reads at scattered offsets fills SharedArrayBuffer pages as pread would', () => {
  const path = dir.file('r.img');
  const content = writeFilled(path, 1 << 20, 1);
  const fd = openSync(path, 'r');
  const a = aio();
  try {
    const sab = new SharedArrayBuffer(16 * 4096);
    const offsets = [7, 0, 200, 13, 255, 64, 1, 99].map((p) => p * 4096);
    // Op 3 scatters one 8 KiB transfer over two pages in reverse order of memory.
    const ops = offsets.map((offset, i) => ({ write: false, offset, bufs: i === 3 ? [new Uint8Array(sab, 12 * 4096, 4096), new Uint8Array(sab, 11 * 4096, 4096)] : [new Uint8Array(sab, i * 4096, 4096)] }));
    const results: number[] = [];
    a.run(fd, ops, results);
    assert.deepEqual(results, ops.map((op) => op.bufs.length * 4096));
    ops.forEach((op, i) => {
      const got = Buffer.concat(op.bufs.map((b) => Buffer.from(b)));
      assert.deepEqual(new Uint8Array(got), content.subarray(op.offset, op.offset + got.length), `op ${i}`);
    });
  } finally {
    a.close();
    closeSync(fd);
  }
});

test('linux aio: writes land where pread finds them; a refused op gets its errno and the others still run; a read past the end is short', () => {
  checkEngineWrites(aio(), dir.file('w.img'));
});

test('linux aio: bounds are enforced and a closed context is refused', () => {
  const a = aio();
  const fd = openSync(dir.file('r.img'), 'r');
  try {
    const page = (): Uint8Array => new Uint8Array(4096);
    assert.throws(() => a.run(fd, Array.from({ length: 17 }, () => ({ write: false, offset: 0, bufs: [page()] })), []), BugError);
    assert.throws(() => a.run(fd, [{ write: false, offset: 0, bufs: Array.from({ length: 65 }, page) }], []), BugError);
    a.close();
    a.close();
    assert.throws(() => a.run(fd, [{ write: false, offset: 0, bufs: [page()] }], []), BugError);
  } finally {
    closeSync(fd);
  }
});

test('raw storage batch: per-op outcomes (a range error among good ops), a read past the end of a shorter file reads zero, counters count', async () => {
  const path = dir.file('s.img');
  const content = writeFilled(path, 64 * 1024, 5);
  const s = await openStorage({ format: 'raw', target: path, sync: true });
  try {
    const batch = s.syncIo?.batch;
    assert.ok(batch !== undefined, 'a sync-opened raw file offers a batch');
    const bufs = [new Uint8Array(4096), new Uint8Array(4096), new Uint8Array(4096), new Uint8Array(2048)];
    // The file shrinks behind the store's back: sector 112.. now lies past its end.
    truncateSync(path, 56 * 1024 + 1024);
    const ops: SyncBlockOp[] = [
      blockOp(false, 8, [bufs[0]!]),
      blockOp(false, 128, [bufs[1]!]),
      blockOp(true, 16, [filled(4096, 9)]),
      blockOp(false, 112, [bufs[2]!, bufs[3]!]),
    ];
    const errors: unknown[] = [];
    batch.run(ops, errors);
    assert.equal(errors[0], undefined);
    assert.ok(errors[1] instanceof XenpvError && errors[1].code === 'ERANGE', 'sector 128 is past the disk');
    assert.equal(errors[2], undefined);
    assert.equal(errors[3], undefined);
    assert.deepEqual(bufs[0], content.subarray(4096, 8192));
    assert.deepEqual(bufs[2]!.subarray(0, 1024), content.subarray(56 * 1024, 57 * 1024));
    assert.ok(bufs[2]!.subarray(1024).every((b) => b === 0) && bufs[3]!.every((b) => b === 0), 'past the end of the file reads as zero');
    const check = new Uint8Array(4096);
    const fd = openSync(path, 'r');
    readSync(fd, check, 0, 4096, 16 * 512);
    closeSync(fd);
    assert.deepEqual(check, filled(4096, 9));
    assert.equal(s.counters.read.requests, 3);
    assert.equal(s.counters.read.errors, 1);
    assert.equal(s.counters.read.bytes, 4096 + 6144);
    assert.equal(s.counters.write.bytes, 4096);
  } finally {
    await s.close();
  }
});

test('raw storage batch: a read-only disk refuses the writes of a batch and serves its reads', async () => {
  const path = dir.file('s.img');
  const s = await openStorage({ format: 'raw', target: path, sync: true, readOnly: true });
  try {
    const errors: unknown[] = [];
    const into = new Uint8Array(4096);
    s.syncIo!.batch!.run([blockOp(true, 0, [new Uint8Array(4096)]), blockOp(false, 8, [into])], errors);
    assert.ok(errors[0] instanceof XenpvError && errors[0].code === 'EROFS');
    assert.equal(errors[1], undefined);
    assert.deepEqual(into, filled(64 * 1024, 5).subarray(4096, 8192));
  } finally {
    await s.close();
  }
});

test('raw storage: aio=false (or XENPV_BLK_AIO=0) keeps the one-call-per-run path', async () => {
  const s = await openStorage({ format: 'raw', target: dir.file('s.img'), sync: true, aio: false });
  try {
    assert.equal(s.syncIo?.batch, undefined);
    assert.ok(s.syncIo !== undefined);
  } finally {
    await s.close();
  }
});

test('linux aio: a failed io_getevents renews the context before throwing (no event owed to the old one reaches a later run)', () => {
  // Kernel calls scripted: the first collection fails with EFAULT, the next run's succeeds.
  const log: string[] = [];
  let failNext = true;
  let nextCtx = 2;
  const calls = {
    setup: (_nr: number, ctx: BigUint64Array) => ((ctx[0] = BigInt(nextCtx++)), log.push(`setup ${ctx[0]}`), 0),
    destroy: (ctx: number) => (log.push(`destroy ${ctx}`), 0),
    submit: (ctx: number, nr: number) => (log.push(`submit ${ctx}`), nr),
    getevents: (ctx: number, min: number) => {
      log.push(`getevents ${ctx}`);
      if (failNext) return ((failNext = false), -1);
      return min;
    },
    addressOf: () => 4096,
    errno: () => 14,
  };
  const Ctor = LinuxAio as unknown as new (c: typeof calls, ctx: number, maxOps: number, maxBuffers: number) => LinuxAio;
  const a = new Ctor(calls, 1, 4, 8);
  const op = { write: false, offset: 0, bufs: [new Uint8Array(4096)] };
  assert.throws(() => a.run(3, [op], []), BugError);
  assert.deepEqual(log, ['submit 1', 'getevents 1', 'destroy 1', 'setup 2']);
  log.length = 0;
  a.run(3, [op], []);
  assert.deepEqual(log, ['submit 2', 'getevents 2'], 'the next run goes to the fresh context');
  a.close();
  assert.deepEqual(log.slice(2), ['destroy 2']);
});

test('linux aio: an event naming an op outside the run, with a high half, or twice fails the run and renews the context', () => {
  // Kernel calls scripted: getevents reports what `report` says in the events array.
  let report: [number, number][] = [];
  let nextCtx = 2;
  const log: string[] = [];
  const calls = {
    setup: (_nr: number, ctx: BigUint64Array) => ((ctx[0] = BigInt(nextCtx++)), log.push(`setup ${ctx[0]}`), 0),
    destroy: (ctx: number) => (log.push(`destroy ${ctx}`), 0),
    submit: (_ctx: number, nr: number) => nr,
    getevents: (_ctx: number, min: number) => {
      const events = (a as unknown as { events: Int32Array }).events;
      const n = Math.min(min, report.length);
      for (let k = 0; k < n; k++) {
        const [low, high] = report.shift()!;
        events[k * 8] = low; // data, low half
        events[k * 8 + 1] = high; // data, high half
        events[k * 8 + 4] = 4096; // res
      }
      return n;
    },
    addressOf: () => 4096,
    errno: () => 0,
  };
  const Ctor = LinuxAio as unknown as new (c: typeof calls, ctx: number, maxOps: number, maxBuffers: number) => LinuxAio;
  const a = new Ctor(calls, 1, 4, 8);
  const op = (): { write: boolean; offset: number; bufs: Uint8Array[] } => ({ write: false, offset: 0, bufs: [new Uint8Array(4096)] });
  const results: number[] = [];
  report = [[1, 0], [0, 0]];
  a.run(3, [op(), op()], results);
  assert.deepEqual(results, [4096, 4096], 'in any order, each at its index');
  for (const bad of [[[2, 0], [0, 0]], [[0, 1], [1, 0]], [[0, 0], [0, 0]], [[-1, 0], [0, 0]]] as [number, number][][]) {
    report = bad.slice();
    log.length = 0;
    assert.throws(() => a.run(3, [op(), op()], []), (err: Error) => err instanceof BugError && /io_getevents reported op/.test(err.message), JSON.stringify(bad));
    assert.equal(log[0]?.startsWith('destroy'), true, 'the context is renewed');
  }
  a.close();
});

test('sync file batch: once AIO has lost its context (renewal refused), each op goes by itself and still succeeds', async () => {
  const path = dir.file('fallback.img');
  const content = writeFilled(path, 64 * 1024, 7);
  // Kernel calls scripted: a collection fails, and the renewal's io_setup is refused.
  const calls = {
    setup: () => -1,
    destroy: () => 0,
    submit: (_ctx: number, nr: number) => nr,
    getevents: () => -1,
    addressOf: () => 4096,
    errno: () => 12,
  };
  const Ctor = LinuxAio as unknown as new (c: typeof calls, ctx: number, maxOps: number, maxBuffers: number) => LinuxAio;
  const aio = new Ctor(calls, 1, 4, 8);
  assert.throws(() => aio.run(3, [{ write: false, offset: 0, bufs: [new Uint8Array(4096)] }], []), BugError);
  assert.equal(aio.usable, false);
  const file = new SyncImageFile(await NodeImageFile.open(path, { readOnly: false }), false, aio);
  try {
    const into = [new Uint8Array(4096), new Uint8Array(4096)];
    const data = filled(4096, 8);
    const errors: unknown[] = [];
    file.sync.batch!.run(
      [
        { write: false, offset: 8192, bufs: [into[0]!], bytes: 4096 },
        { write: true, offset: 0, bufs: [data], bytes: 4096 },
        { write: false, offset: 0, bufs: [into[1]!], bytes: 4096 },
      ],
      errors,
    );
    assert.deepEqual(errors, [undefined, undefined, undefined]);
    assert.deepEqual(into[0], content.subarray(8192, 12288));
    assert.deepEqual(into[1], data, 'in op order: the read after the write sees it');
  } finally {
    await file.close();
  }
});

test('buffer addresses: engines with the same addressOf share one property per view; another addressOf keeps its own addresses', () => {
  const buffer = new ArrayBuffer(3 * 4096);
  const page = new Uint8Array(buffer, 4096, 4096);
  let asked = 0;
  const real = (): number => (asked++, 1 << 20);
  const scripted = (): number => 4096;
  const a = new BufferAddresses(real);
  const b = new BufferAddresses(real);
  assert.equal(a.of(page), (1 << 20) + 4096);
  assert.equal(b.of(page), (1 << 20) + 4096);
  assert.equal(asked, 1, 'the second engine found the address the first left on the view');
  assert.equal(b.of(new Uint8Array(buffer, 8192, 4096)), (1 << 20) + 8192);
  assert.equal(asked, 1, 'nor is a new view of a buffer the first engine saw asked again');
  assert.equal(Object.getOwnPropertySymbols(page).length, 1);
  assert.equal(new BufferAddresses(scripted).of(page), 4096 + 4096, 'not the other function\'s address');
  assert.equal(Object.getOwnPropertySymbols(page).length, 2);
  assert.deepEqual(Object.keys(page).length, 4096, 'no enumerable property added');
});
