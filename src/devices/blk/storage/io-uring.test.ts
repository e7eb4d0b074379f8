/**
 * io_uring batches (io-uring.ts) on real files: many transfers at their own offsets in one
 * io_uring_enter, each with its own outcome, bytes checked against what pread/pwrite see.
 * SplitBatch hands it the batches of one-buffer transfers and another engine the rest (the raw
 * storage batch tests in linux-aio.test.ts go through both: openStorage builds one).
 */
import assert from 'node:assert/strict';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { BugError } from '../../../base/index.js';
import { IoUring, SplitBatch } from './io-uring.js';
import { BufferAddresses, LinuxAio, writeIovecs, type AioOp, type BatchEngine } from './linux-aio.js';
import { loadLibc } from '../../../hv/native-libc.js';
import { checkEngineWrites, filled, tempDir, writeFilled } from './test-util.js';

const dir = tempDir('io-uring');
after(() => dir.remove());


function ring(maxOps = 16, maxBuffers = 64): IoUring {
  const r = IoUring.create(maxOps, maxBuffers);
  assert.ok(typeof r === 'object', `io_uring is available on the machines xenpv runs on: ${String(r)}`);
  return r;
}

/** The engine SplitBatch hands the rest to, scripted: `run` answers each batch. */
function otherEngine(run: (ops: readonly AioOp[], results: number[]) => void, close: () => void = () => undefined): BatchEngine {
  return { name: 'scripted', maxOps: 8, maxBuffers: 32, usable: true, run: (_fd, ops, results) => run(ops, results), close };
}

test('io_uring: batches of scattered reads (one and several buffers) fill SharedArrayBuffer pages as pread would, run after run', () => {
  const path = dir.file('r.img');
  const content = writeFilled(path, 1 << 20, 1);
  const fd = openSync(path, 'r');
  const r = ring();
  try {
    const sab = new SharedArrayBuffer(16 * 4096);
    // More runs than the ring has entries: the rings wrap.
    for (let run = 0; run < 12; run++) {
      const offsets = [7, 0, 200, 13, 255, 64, 1, 99].map((p) => ((p + run * 17) % 256) * 4096);
      // Op 3 scatters one 8 KiB transfer over two pages in reverse order of memory; op 5 reads 512 bytes.
      const ops = offsets.map((offset, i) => ({
        write: false,
        offset,
        bufs: i === 3 ? [new Uint8Array(sab, 12 * 4096, 4096), new Uint8Array(sab, 11 * 4096, 4096)] : [new Uint8Array(sab, i * 4096, i === 5 ? 512 : 4096)],
      }));
      const results: number[] = [];
      r.run(fd, ops, results);
      assert.deepEqual(results, ops.map((op) => op.bufs.reduce((n, b) => n + b.byteLength, 0)), `run ${run}`);
      ops.forEach((op, i) => {
        const got = Buffer.concat(op.bufs.map((b) => Buffer.from(b)));
        assert.deepEqual(new Uint8Array(got), content.subarray(op.offset, op.offset + got.length), `run ${run} op ${i}`);
      });
    }
  } finally {
    r.close();
    closeSync(fd);
  }
});

test('io_uring: a registered file is read and written as fixed file 0; another descriptor on the same ring still reaches its own file', () => {
  const pathA = dir.file('fixed-a.img');
  const pathB = dir.file('fixed-b.img');
  const a = writeFilled(pathA, 64 * 1024, 5);
  const b = writeFilled(pathB, 64 * 1024, 6);
  const fdA = openSync(pathA, 'r+');
  const fdB = openSync(pathB, 'r');
  const r = ring();
  try {
    r.registerFile(fdA);
    assert.equal(r.fixedFile, fdA);
    r.registerFile(fdB);
    assert.equal(r.fixedFile, fdA, 'one fixed file: a second stays a plain descriptor');
    for (const [fd, content] of [[fdA, a], [fdB, b], [fdA, a]] as const) {
      const pages = [new Uint8Array(4096), new Uint8Array(4096)];
      const results: number[] = [];
      r.run(fd, [{ write: false, offset: 8192, bufs: [pages[0]!] }, { write: false, offset: 4096 * 15, bufs: [pages[1]!] }], results);
      assert.deepEqual(results, [4096, 4096]);
      assert.deepEqual(pages[0], content.subarray(8192, 12288));
      assert.deepEqual(pages[1], content.subarray(4096 * 15, 4096 * 16));
    }
    const data = filled(4096, 7);
    const results: number[] = [];
    r.run(fdA, [{ write: true, offset: 4096, bufs: [data] }], results);
    assert.deepEqual(results, [4096]);
    assert.deepEqual(new Uint8Array(readFileSync(pathA).subarray(4096, 8192)), data);
  } finally {
    r.close();
    closeSync(fdA);
    closeSync(fdB);
  }
});

/** `count` views of 4 KiB, each at a page-aligned address (O_DIRECT's rule), in one buffer. */
function alignedPages(count: number): Uint8Array[] {
  const libc = loadLibc('test');
  assert.ok(typeof libc === 'object', String(libc));
  const whole = new Uint8Array((count + 1) * 4096);
  const skip = (4096 - (libc.addressOf(whole) % 4096)) % 4096;
  return Array.from({ length: count }, (_, i) => whole.subarray(skip + i * 4096, skip + (i + 1) * 4096));
}

test('io_uring: reads that do not complete inside the submitting enter (O_DIRECT, from the device) are waited for, each with its own result', (t) => {
  const path = dir.file('direct.img');
  const content = writeFilled(path, 256 * 1024, 9);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
  } catch (err) {
    return t.skip(`no O_DIRECT here: ${String(err)}`);
  }
  const r = ring();
  try {
    r.registerFile(fd);
    for (let run = 0; run < 4; run++) {
      const pages = alignedPages(8);
      const offsets = [3, 60, 17, 0, 41, 22, 9, 63].map((p) => ((p + run * 5) % 64) * 4096);
      const results: number[] = [];
      r.run(fd, offsets.map((offset, i) => ({ write: false, offset, bufs: [pages[i]!] })), results);
      assert.deepEqual(results, offsets.map(() => 4096), `run ${run}`);
      offsets.forEach((offset, i) => assert.deepEqual(pages[i], content.subarray(offset, offset + 4096), `run ${run} op ${i}`));
    }
  } finally {
    r.close();
    closeSync(fd);
  }
});

/** The kernel calls IoUring.open takes (io-uring.ts `Calls`), as far as these tests touch them. */
type UringCalls = { setup(entries: number, params: Uint8Array): number; registerFiles(fd: number, fds: Int32Array): number; errno(): number };
type UringOpen = { open(calls: UringCalls, maxOps: number, maxBuffers: number): IoUring | string };

test('io_uring: a kernel refusing SINGLE_ISSUER|DEFER_TASKRUN gets COOP_TASKRUN, then no flags, then no ring; a refused file registration leaves runs on the descriptor', () => {
  const probe = ring();
  const real = (probe as unknown as { calls: UringCalls }).calls;
  probe.close();
  const path = dir.file('fallback.img');
  const content = writeFilled(path, 64 * 1024, 11);
  const fd = openSync(path, 'r');
  const singleIssuer = (1 << 12) | (1 << 13);
  const coop = 1 << 8;
  try {
    for (const refused of [[singleIssuer], [singleIssuer, coop], [singleIssuer, coop, 0]]) {
      const tried: number[] = [];
      const calls: UringCalls = {
        ...real,
        setup: (entries, params) => {
          const flags = new DataView(params.buffer).getUint32(8, true);
          tried.push(flags);
          return refused.includes(flags) ? -1 : real.setup(entries, params);
        },
        registerFiles: () => -1,
      };
      const r = (IoUring as unknown as UringOpen).open(calls, 16, 64);
      const all = [singleIssuer, coop, 0];
      assert.deepEqual(tried, all.slice(0, Math.min(refused.length + 1, all.length)), `refused ${refused}`);
      if (refused.length === all.length) {
        assert.equal(typeof r, 'string', 'every setup refused: no ring, and why');
        continue;
      }
      assert.ok(typeof r === 'object', String(r));
      try {
        r.registerFile(fd);
        assert.equal(r.fixedFile, undefined, 'the registration was refused');
        const pages = [new Uint8Array(4096), new Uint8Array(4096)];
        const results: number[] = [];
        r.run(fd, [{ write: false, offset: 4096 * 9, bufs: [pages[0]!] }, { write: false, offset: 0, bufs: [pages[1]!] }], results);
        assert.deepEqual(results, [4096, 4096], `refused ${refused}`);
        assert.deepEqual(pages[0], content.subarray(4096 * 9, 4096 * 10));
        assert.deepEqual(pages[1], content.subarray(0, 4096));
      } finally {
        r.close();
      }
    }
  } finally {
    closeSync(fd);
  }
});

test('io_uring: writes land where pread finds them; a refused op gets its errno and the others still run; a read past the end is short', () => {
  checkEngineWrites(ring(), dir.file('w.img'));
});

test('io_uring: bounds are enforced and a closed ring is refused', () => {
  const r = ring(4, 8);
  const fd = openSync(dir.file('r.img'), 'r');
  try {
    const page = (): Uint8Array => new Uint8Array(4096);
    assert.throws(() => r.run(fd, Array.from({ length: 5 }, () => ({ write: false, offset: 0, bufs: [page()] })), []), BugError);
    assert.throws(() => r.run(fd, [{ write: false, offset: 0, bufs: Array.from({ length: 9 }, page) }], []), BugError);
    const results: number[] = [];
    r.run(fd, [{ write: false, offset: 0, bufs: [page(), page()] }], results);
    assert.deepEqual(results, [8192], 'still usable after refusing');
    assert.equal(r.usable, true);
    r.close();
    r.close();
    assert.equal(r.usable, false);
    assert.throws(() => r.run(fd, [{ write: false, offset: 0, bufs: [page()] }], []), BugError);
  } finally {
    closeSync(fd);
  }
});

test('split batch: a batch of one-buffer reads goes to io_uring, one with any longer transfer or any write to the other engine', () => {
  const fd = openSync(dir.file('r.img'), 'r');
  const content = readFileSync(dir.file('r.img'));
  const calls: number[][] = [];
  const other = otherEngine(
    (ops, results) => {
      calls.push(ops.map((op) => op.bufs.length));
      ops.forEach((_, i) => (results[i] = -5));
    },
    () => void calls.push([]),
  );
  const split = new SplitBatch(ring(16, 64), other);
  try {
    assert.deepEqual([split.maxOps, split.maxBuffers], [8, 32]);
    const pages = [new Uint8Array(4096), new Uint8Array(4096)];
    const results: number[] = [];
    split.run(fd, [{ write: false, offset: 4096, bufs: [pages[0]!] }, { write: false, offset: 0, bufs: [pages[1]!] }], results);
    assert.deepEqual(results, [4096, 4096]);
    assert.deepEqual(pages[0], new Uint8Array(content.subarray(4096, 8192)));
    assert.deepEqual(calls, [], 'io_uring moved it');
    split.run(fd, [{ write: false, offset: 0, bufs: [pages[0]!] }, { write: false, offset: 0, bufs: [pages[0]!, pages[1]!] }], results);
    assert.deepEqual(calls, [[1, 2]], 'the other engine moved it');
    assert.deepEqual(results, [-5, -5]);
    split.run(fd, [{ write: false, offset: 0, bufs: [pages[0]!] }, { write: true, offset: 0, bufs: [pages[1]!] }], results);
    assert.deepEqual(calls, [[1, 2], [1, 1]], 'a batch with a write: the other engine');
    assert.deepEqual(results, [-5, -5]);
  } finally {
    split.close();
    closeSync(fd);
  }
  assert.equal(split.usable, false, 'closed with its io_uring');
  assert.deepEqual(calls.at(-1), [], 'and the other engine closed');
});

/** A scripted kernel for IoUring's private constructor: rings in plain arrays, `enter` played by `kernel`. */
type ScriptedKernel = { submit: (n: number) => void; complete: (n: number) => void; post: (user: number, res: number) => void; errno: (e: number) => void };

function scripted(kernel: (k: ScriptedKernel, toSubmit: number) => number): { r: IoUring; log: string[] } {
  const log: string[] = [];
  const sq = new Uint32Array(16); // the array at words 8..15
  const cq = new Uint32Array(4 + 16 * 4); // cqes from word 4
  // The ring masks as mapRings reads them (once): 8 sq entries, 16 cq entries.
  const rings = { regions: [], sq, cq, cqes: new Int32Array(cq.buffer, 16), sqes: new Uint32Array(8 * 16), sqTail: 0, sqArray: 8, cqHead: 0, cqTail: 1, sqMask: 7, cqMask: 15 };
  let sqHead = 0;
  const issued: number[] = [];
  let errno = 0;
  const k: ScriptedKernel = {
    // The kernel takes n entries: sqe index from the array, its user_data and length.
    submit: (n: number) => {
      for (let i = 0; i < n; i++, sqHead++) {
        const sqe = sq[8 + (sqHead & 7)]! * 16;
        issued.push(rings.sqes[sqe + 8]!, rings.sqes[sqe + 6]!);
      }
    },
    complete: (n: number) => {
      for (let i = 0; i < n; i++) {
        const [user, len] = issued.splice(0, 2);
        k.post(user!, len!);
      }
    },
    // Post a completion as given (user_data's low half, res): what the kernel should not do too.
    post: (user: number, res: number) => {
      const at = 4 * (cq[1]! & 15);
      rings.cqes[at] = user;
      rings.cqes[at + 1] = 0;
      rings.cqes[at + 2] = res;
      cq[1] = cq[1]! + 1;
    },
    errno: (e: number) => void (errno = e),
  };
  const calls = {
    enter: (_fd: number, toSubmit: number, min: number) => (log.push(`enter ${toSubmit} ${min}`), kernel(k, toSubmit)),
    close: (fd: number) => (log.push(`close ${fd}`), 0),
    munmap: () => 0,
    errno: () => errno,
    addressOf: () => 4096,
  };
  const Ctor = IoUring as unknown as new (c: typeof calls, fd: number, rings: unknown, maxOps: number, maxBuffers: number) => IoUring;
  return { r: new Ctor(calls, 9, rings, 4, 8), log };
}

/** A scripted kernel playing `turns` in order, one per io_uring_enter; the last repeats. */
function inTurns(...turns: ((k: ScriptedKernel, toSubmit: number) => number)[]): (k: ScriptedKernel, toSubmit: number) => number {
  let turn = 0;
  return (k, toSubmit) => turns[Math.min(turn++, turns.length - 1)]!(k, toSubmit);
}

test('io_uring: an interrupted wait is waited again until every transfer completed; a refused enter closes the ring and throws', () => {
  const { r, log } = scripted(inTurns(
    // A signal cut the wait short after the three were taken and one finished: the count taken.
    (k, toSubmit) => (k.submit(toSubmit), k.complete(1), 3),
    (k) => (k.complete(1), k.errno(4), -1), // EINTR, with nothing left to take
    (k) => (k.complete(1), 0),
    (k) => (k.errno(14), -1), // EFAULT
  ));
  const op = (len: number): AioOp => ({ write: false, offset: 0, bufs: [new Uint8Array(len)] });
  const results: number[] = [];
  r.run(3, [op(512), op(1024), op(2048)], results);
  assert.deepEqual(results, [512, 1024, 2048]);
  // The first enter only submits (min_complete 0); the waits ask for what is left.
  assert.deepEqual(log, ['enter 3 0', 'enter 0 2', 'enter 0 1'], 'nothing submitted twice; the wait goes on for those left');
  log.length = 0;
  assert.throws(() => r.run(3, [op(512)], []), BugError);
  assert.deepEqual(log, ['enter 1 0', 'close 9']);
  assert.equal(r.usable, false);
});

test('io_uring: a run failing after the kernel took its transfers waits for those still in flight before closing the ring', () => {
  const { r, log } = scripted(inTurns(
    (k, toSubmit) => (k.submit(toSubmit), k.complete(1), toSubmit), // all three taken, one finished
    (k) => (k.errno(14), -1), // EFAULT on the wait: the run fails with two still reading into its buffers
    (k) => (k.complete(1), k.errno(4), -1), // the settling wait is interrupted once after one more completed
    (k) => (k.complete(1), 0),
  ));
  const op = (len: number): AioOp => ({ write: false, offset: 0, bufs: [new Uint8Array(len)] });
  assert.throws(() => r.run(3, [op(512), op(1024), op(2048)], []), BugError);
  assert.deepEqual(log, ['enter 3 0', 'enter 0 2', 'enter 0 2', 'enter 0 1', 'close 9'], 'the two in flight are waited for, then the ring closes');
  assert.equal(r.usable, false);
});

test('io_uring: a completion the run does not owe (an op twice, an index outside the run, more than submitted) fails the run and closes the ring', () => {
  const op = (len: number): AioOp => ({ write: false, offset: 0, bufs: [new Uint8Array(len)] });
  const bad: ((k: ScriptedKernel) => void)[] = [
    (k) => (k.post(0, 512), k.post(0, 512)),
    (k) => (k.post(0, 512), k.post(5, 512)),
    (k) => (k.post(0, 512), k.post(-1, 512)),
    (k) => (k.post(0, 512), k.post(1, 1024), k.post(1, 1024)),
  ];
  for (const [n, post] of bad.entries()) {
    const { r, log } = scripted((k, toSubmit) => {
      k.submit(toSubmit);
      post(k);
      return toSubmit;
    });
    const results = [7, 7];
    assert.throws(() => r.run(3, [op(512), op(1024)], results), BugError, `case ${n}`);
    assert.equal(r.usable, false, `case ${n}: closed`);
    assert.deepEqual(log.at(-1), 'close 9', `case ${n}`);
    assert.notEqual(results[1], 512, `case ${n}: op 1 not given op 0's result`);
  }
});

test('io_uring: an enter refused with EAGAIN again and again gives the run up (to the other engine when nothing was taken); EINTR does not count', () => {
  let calls = 0;
  const { r } = scripted((k) => {
    calls++;
    k.errno(calls % 2 === 0 ? 4 : 11); // EINTR and EAGAIN in turn, nothing ever taken
    return -1;
  });
  const other = otherEngine((ops, results) => ops.forEach((op, i) => (results[i] = op.bufs[0]!.byteLength)));
  const split = new SplitBatch(r, other);
  const results: number[] = [];
  split.run(3, [{ write: false, offset: 0, bufs: [new Uint8Array(512)] }], results);
  assert.deepEqual(results, [512], 'done by the other engine');
  assert.equal(calls, 20_001, '10 000 EAGAIN answers (and the EINTRs between them) before giving up');
  assert.equal(r.usable, false, 'the ring is closed');
  split.close();
});

test('split batch: io_uring refusing a run before taking any of it (EPERM) hands that run and every later one to the other engine', () => {
  const { r, log } = scripted((k) => {
    k.errno(1); // EPERM: a filter that lets io_uring_setup through but not io_uring_enter
    return -1;
  });
  const calls: number[] = [];
  const other = otherEngine((ops, results) => {
    calls.push(ops.length);
    ops.forEach((op, i) => (results[i] = op.bufs[0]!.byteLength));
  });
  const split = new SplitBatch(r, other);
  const op = (len: number): AioOp => ({ write: false, offset: 0, bufs: [new Uint8Array(len)] });
  const results: number[] = [];
  split.run(3, [op(512), op(1024)], results);
  assert.deepEqual(results, [512, 1024], 'the refused run done by the other engine');
  assert.deepEqual(log, ['enter 2 0', 'close 9']);
  assert.equal(split.usable, true, 'still usable: the other engine is');
  split.run(3, [op(2048)], results);
  assert.equal(results[0], 2048);
  assert.deepEqual(calls, [2, 1]);
  assert.deepEqual(log, ['enter 2 0', 'close 9'], 'io_uring not tried again');
  split.close();
  assert.equal(split.usable, false);
});

test('iovecs: buffers that follow each other in memory become one iovec, others their own; io_uring and AIO move the same bytes either way', () => {
  // The pure part: a scripted base address (0x10000) for one buffer, and another buffer elsewhere.
  const a = new ArrayBuffer(8 * 4096);
  const b = new ArrayBuffer(4096);
  const bases = new Map<ArrayBufferLike, number>([[a, 0x10000], [b, 0x90000]]);
  const addresses = new BufferAddresses((v) => bases.get(v.buffer)! + v.byteOffset);
  const iovecs = new Uint32Array(8 * 4);
  const bufs = [new Uint8Array(a, 0, 4096), new Uint8Array(a, 4096, 4096), new Uint8Array(a, 8192, 512), new Uint8Array(b, 0, 4096), new Uint8Array(a, 5 * 4096, 4096), new Uint8Array(a, 6 * 4096, 4096)];
  const n = writeIovecs(iovecs, 1, bufs, addresses);
  assert.equal(n, 3);
  const iov = (k: number): [number, number] => [iovecs[(1 + k) * 4]! + iovecs[(1 + k) * 4 + 1]! * 2 ** 32, iovecs[(1 + k) * 4 + 2]!];
  assert.deepEqual([iov(0), iov(1), iov(2)], [[0x10000, 8192 + 512], [0x90000, 4096], [0x10000 + 5 * 4096, 8192]]);

  // The real part: reads into adjacent pages, pages in reverse order, and a gap, through both engines.
  const path = dir.file('merge.img');
  const content = writeFilled(path, 1 << 20, 5);
  const fd = openSync(path, 'r');
  const sab = new SharedArrayBuffer(32 * 4096);
  const page = (p: number, len = 4096): Uint8Array => new Uint8Array(sab, p * 4096, len);
  const engines: BatchEngine[] = [ring()];
  const aio = LinuxAio.create(8, 64);
  if (typeof aio === 'object') engines.push(aio);
  try {
    for (const e of engines) {
      new Uint8Array(sab).fill(0);
      const ops: AioOp[] = [
        { write: false, offset: 3 * 4096, bufs: [page(0), page(1), page(2)] },
        { write: false, offset: 40 * 4096, bufs: [page(6), page(5)] },
        { write: false, offset: 90 * 4096, bufs: [page(8), page(9, 512), page(12)] },
      ];
      const results: number[] = [];
      e.run(fd, ops, results);
      assert.deepEqual(results, [3 * 4096, 8192, 4096 + 512 + 4096], e.name);
      for (const op of ops) {
        const got = Buffer.concat(op.bufs.map((v) => Buffer.from(v)));
        assert.deepEqual(new Uint8Array(got), content.subarray(op.offset, op.offset + got.length), `${e.name} at ${op.offset}`);
      }
    }
  } finally {
    for (const e of engines) e.close();
    closeSync(fd);
  }
});
