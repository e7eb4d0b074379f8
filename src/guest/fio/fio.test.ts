/**
 * fio's pure parts: crc32c against its published check value, argument parsing (and the
 * messages for bad arguments), the verify header catching each kind of corruption, the
 * latency histogram, and whole jobs against an in-memory disk (I/O counts, verify phase,
 * detection of a corrupted, a stale and a misdirected block).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { parseFioArgs, parseFioSize } from './args.js';
import { crc32c } from './crc32c.js';
import { runFio, type FioBuffer, type FioDisk, type IoDone } from './job.js';
import { IoStats } from './stats.js';
import { checkBlock, fillBlock, HEADER_BYTES } from './verify.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Bit-at-a-time CRC-32C, the definition, to hold the table-driven one against. */
function crcReference(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('crc32c: the standard check value, RFC 3720 vectors, chaining, and the bitwise definition', () => {
  assert.equal(crc32c(ascii('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 B.4: 32 bytes of zeroes, of 0xff, and ascending 0..31.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(100), (bytes, cut) => {
      const at = Math.min(cut, bytes.length);
      assert.equal(crc32c(bytes), crcReference(bytes));
      assert.equal(crc32c(bytes.subarray(at), crc32c(bytes.subarray(0, at))), crc32c(bytes));
    }),
  );
});

test('args: defaults, fio spellings, sizes', () => {
  assert.deepEqual(parseFioArgs([]), {
    rw: 'read', bs: 4096, iodepth: 1, size: undefined, offset: 0, runtimeMs: 0, rampMs: 0, timeBased: false, verify: 'none', seed: 1, rwmixread: 50,
  });
  const j = parseFioArgs('rw=randread bs=4k iodepth=32 size=256M runtime=10 verify=crc32c'.split(' '));
  assert.deepEqual([j.rw, j.bs, j.iodepth, j.size, j.runtimeMs, j.verify], ['randread', 4096, 32, 256 * 2 ** 20, 10_000, 'crc32c']);
  const k = parseFioArgs(['rw=randrw', 'rwmixread=70', 'bs=1m', 'offset=1M', 'runtime=1.5', 'time_based', 'direct=1', 'seed=7', 'name=x']);
  assert.deepEqual([k.rwmixread, k.bs, k.offset, k.runtimeMs, k.timeBased, k.seed], [70, 2 ** 20, 2 ** 20, 1500, true, 7]);
  assert.equal(parseFioSize('size', '1g'), 2 ** 30);
  assert.equal(parseFioSize('size', '512'), 512);
  assert.equal(parseFioSize('size', '4KiB'), 4096);
});

test('args: every bad argument is refused with a message naming it', () => {
  const cases: [string, RegExp][] = [
    ['rw=sideways', /rw=sideways: use one of read, write/],
    ['bs=1000', /bs=1000 must be a multiple of 512/],
    ['bs=32M', /bs=32M must be a multiple of 512 up to 16M/],
    ['iodepth=0', /iodepth=0 out of range/],
    ['iodepth=abc', /iodepth=abc is not a whole number/],
    ['size=12x', /size=12x is not a size/],
    ['bs=4k size=6k', /size=6k must be a whole number of blocks/],
    ['offset=100', /offset=100 must be a multiple of 512/],
    ['runtime=-1', /runtime=-1 must be seconds/],
    ['ramp_time=1s', /ramp_time=1s must be seconds/],
    ['time_based', /time_based needs runtime=/],
    ['verify=md5', /verify=md5: use crc32c or none/],
    ['direct=yes', /direct=yes: use 0 or 1/],
    ['numjobs=4', /unknown option 'numjobs'/],
    ['randread', /'randread' is not key=value/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => parseFioArgs(argv.split(' ')), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EINVAL');
      assert.match(err.message, /^fio: /);
      assert.match(err.message, message);
      return true;
    }, argv);
  }
});

test('verify header: a good block passes; corruption, misdirection, staleness and foreign data fail', () => {
  const block = new Uint8Array(4096);
  fillBlock(block, 8192, 5, 1);
  assert.equal(checkBlock(block, 8192, 5), undefined);
  assert.equal(checkBlock(block, 8192), undefined);
  assert.match(checkBlock(block, 12288) ?? '', /header names offset 8192: misdirected/);
  assert.match(checkBlock(block, 8192, 6) ?? '', /generation 5, expected 6: a write was lost/);
  for (const at of [HEADER_BYTES, 100, 4095, 16, 20]) {
    const bad = block.slice();
    bad[at]! ^= 0x01;
    assert.match(checkBlock(bad, 8192, 5) ?? '', /crc32c .* does not match|generation|offset/, `bit flip at ${at}`);
  }
  assert.match(checkBlock(new Uint8Array(4096), 8192) ?? '', /no fio header/);
  // Offsets past 4 GiB keep their high half.
  fillBlock(block, 2 ** 40 + 4096, 1, 1);
  assert.equal(checkBlock(block, 2 ** 40 + 4096, 1), undefined);
  assert.match(checkBlock(block, 4096) ?? '', /misdirected/);
});

test('latency histogram: percentiles within the bucket precision, exact mean and max', () => {
  const s = new IoStats();
  for (let i = 1; i <= 1000; i++) s.record(4096, i * 1000); // 1 µs .. 1 ms
  const r = s.report(1e9);
  assert.equal(r.ios, 1000);
  assert.equal(r.iops, 1000);
  assert.equal(r.mbps, 4.1);
  assert.equal(r.lat_us.mean, 500.5);
  assert.equal(r.lat_us.max, 1000);
  assert.ok(Math.abs(r.lat_us.p50 - 500) / 500 < 0.035, String(r.lat_us.p50));
  assert.ok(Math.abs(r.lat_us.p99 - 990) / 990 < 0.035, String(r.lat_us.p99));
  assert.equal(new IoStats().report(1e9).lat_us.p99, 0);
});

class MemBuffer implements FioBuffer {
  constructor(readonly bytes: Uint8Array) {}
  copyIn(offset: number, src: Uint8Array): void {
    this.bytes.set(src, offset);
  }
  copyOut(offset: number, dst: Uint8Array): void {
    dst.set(this.bytes.subarray(offset, offset + dst.length));
  }
}

/** An in-memory disk with hooks to misbehave. */
class MemDisk implements FioDisk {
  readonly sectorSize = 512;
  readonly readOnly = false;
  readonly data: Uint8Array;
  reads = 0;
  writes = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** Drop writes to this byte offset (a lost write). */
  loseWritesAt = -1;
  constructor(readonly sectors: number) {
    this.data = new Uint8Array(sectors * 512);
  }
  /** Service time of every I/O (0: the next turn of the event loop). */
  delayMs = 0;
  private async io(fn: () => void): Promise<void> {
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    await new Promise((r) => (this.delayMs > 0 ? setTimeout(r, this.delayMs) : setImmediate(r)));
    fn();
    this.inFlight--;
  }
  read(sector: number, buf: FioBuffer): Promise<void> {
    this.reads++;
    const b = (buf as MemBuffer).bytes;
    return this.io(() => b.set(this.data.subarray(sector * 512, sector * 512 + b.length)));
  }
  write(sector: number, buf: FioBuffer): Promise<void> {
    this.writes++;
    const b = (buf as MemBuffer).bytes;
    return this.io(() => {
      if (sector * 512 !== this.loseWritesAt) this.data.set(b, sector * 512);
    });
  }
  alloc(bytes: number): FioBuffer {
    return new MemBuffer(new Uint8Array(bytes));
  }
  free(): void {}
}

/**
 * The same disk through FioDisk.submit (io_submit-style: completion by callback, later); the
 * job then runs its submit engine instead of one async worker per buffer.
 */
class SubmitMemDisk extends MemDisk {
  /** Refuse the next submit with this error (returned, never answered). */
  refuseNext: Error | undefined;
  /** Answer the next submitted I/O with this error. */
  failNext: Error | undefined;
  submit(write: boolean, sector: number, buf: FioBuffer, done: IoDone, tag: number): Error | undefined {
    const refused = this.refuseNext;
    this.refuseNext = undefined;
    if (refused !== undefined) return refused;
    const failed = this.failNext;
    this.failNext = undefined;
    const io = write ? this.write(sector, buf) : this.read(sector, buf);
    io.then(() => done(tag, failed), (err: Error) => done(tag, err));
    return undefined;
  }
}

/**
 * A disk whose completions are drained in one loop, as blkfront drains its rings: an I/O
 * submitted from a completion callback whose answer is already there completes in the same
 * drain (the backend on another core answered at once).
 */
class DrainMemDisk extends MemDisk {
  private readonly pending: { write: boolean; sector: number; buf: FioBuffer; done: IoDone; tag: number }[] = [];
  private scheduled = false;
  submit(write: boolean, sector: number, buf: FioBuffer, done: IoDone, tag: number): Error | undefined {
    this.pending.push({ write, sector, buf, done, tag });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
    return undefined;
  }
  private drain(): void {
    this.scheduled = false;
    for (let io = this.pending.shift(); io !== undefined; io = this.pending.shift()) {
      const b = (io.buf as MemBuffer).bytes;
      if (io.write) this.data.set(b, io.sector * 512);
      else b.set(this.data.subarray(io.sector * 512, io.sector * 512 + b.length));
      io.done(io.tag, undefined);
    }
  }
}

test('latency with verify, completions drained in one loop: never below zero (the issue and completion readings are both fresh)', async () => {
  const r = await runFio(new DrainMemDisk(2048), job('rw=randwrite bs=4k iodepth=8 size=256k verify=crc32c'));
  assert.equal(r.verify, 'ok');
  assert.ok(r.write.ios >= 64, String(r.write.ios));
  assert.ok(r.write.lat_us.mean >= 0 && r.write.lat_us.p50 >= 0, JSON.stringify(r.write.lat_us));
});

const ENGINES: [string, (sectors: number) => MemDisk][] = [
  ['async workers', (n) => new MemDisk(n)],
  ['submit engine', (n) => new SubmitMemDisk(n)],
];

const job = (args: string) => parseFioArgs(args.split(' '));

for (const [engine, mk] of ENGINES) {
  test(`latency: at least each I/O's service time, and the mean is iodepth / IOPS (Little's law) (${engine})`, async () => {
    const disk = mk(2048);
    disk.delayMs = 4;
    const r = await runFio(disk, job('rw=randread bs=4k iodepth=4 runtime=0.3 time_based'));
    const lat = r.read.lat_us;
    assert.ok(r.read.ios > 20, String(r.read.ios));
    // A timer fires no earlier than asked (less 1 ms of libuv rounding).
    assert.ok(lat.p50 >= 3000 && lat.mean >= 3000, JSON.stringify(lat));
    // Little's law: mean latency = mean occupancy / IOPS, and the occupancy is at most iodepth.
    // It is iodepth less the gaps between a completion and its resubmission, which grow when the
    // machine is loaded (a 10 % bound failed under a neighbour's load: 7.3 ms against 8.2 ms),
    // so the mean may fall short of iodepth / IOPS, but never exceed it past the window's edges.
    const little = (4 / r.read.iops) * 1e6;
    assert.ok(lat.mean <= little * 1.1 && lat.mean >= little * 0.6, `mean ${lat.mean} µs, iodepth / IOPS ${little} µs`);
  });

  test(`ramp_time: the job runs through it uncounted; figures cover runtime only, and a size-bound job still moves size in its timed phase (${engine})`, async () => {
    assert.equal(job('ramp_time=0.25').rampMs, 250);
    const disk = mk(2048);
    const t0 = performance.now();
    const r = await runFio(disk, job('rw=randread bs=4k iodepth=4 ramp_time=0.1 runtime=0.1 time_based'));
    const wallS = (performance.now() - t0) / 1000;
    assert.ok(wallS >= 0.2, `ramp comes on top of runtime: ran ${wallS} s`);
    assert.ok(r.elapsed_s >= 0.1 && r.elapsed_s < 0.15, `timed window ${r.elapsed_s} s`);
    assert.ok(disk.reads > r.read.ios + 4, `reads during the ramp are not counted: ${disk.reads} done, ${r.read.ios} counted`);
    assert.ok(Math.abs(r.read.iops - r.read.ios / r.elapsed_s) / r.read.iops < 0.01, 'the rate is over the timed window');
    const sized = mk(2048);
    const s = await runFio(sized, job('rw=read bs=4k iodepth=2 size=64k ramp_time=0.05'));
    assert.equal(s.read.ios, 16, 'size=64k moved in the timed phase');
    assert.ok(sized.reads > 16, `plus what the ramp read: ${sized.reads}`);
  });

  test(`a sequential write job with verify: size covered once, iodepth kept, every block read back (${engine})`, async () => {
    const disk = mk(2048); // 1 MiB
    const r = await runFio(disk, job('rw=write bs=4k iodepth=8 size=256k verify=crc32c'));
    assert.equal(r.write.ios, 64);
    assert.equal(r.write.bytes, 256 * 1024);
    assert.equal(r.read.ios, 0, 'verify-phase reads are not timed I/O');
    assert.equal(disk.reads, 64);
    assert.equal(r.verified, 64);
    assert.equal(r.verify, 'ok');
    assert.equal(r.errors, 0);
    assert.equal(r.failure, undefined);
    assert.equal(disk.maxInFlight, 8);
    // A later read-only job verifies what this one left, in any order.
    const again = await runFio(disk, job('rw=randread bs=4k iodepth=4 size=256k verify=crc32c seed=3'));
    assert.equal(again.read.ios, 64);
    assert.equal(again.verified, 64);
    assert.equal(again.verify, 'ok');
  });

  test(`verify catches a block corrupted on the disk between the write and the read, naming its offset (${engine})`, async () => {
    const disk = mk(2048);
    assert.equal((await runFio(disk, job('rw=write bs=4k size=64k verify=crc32c'))).verify, 'ok');
    disk.data[5 * 4096 + 1000]! ^= 0x40;
    const r = await runFio(disk, job('rw=read bs=4k iodepth=4 size=64k verify=crc32c'));
    assert.equal(r.verify, 'failed');
    assert.match(r.failure ?? '', /^verify failed at offset 20480 \(block 5\): crc32c/);
  });

  test(`verify catches a lost write (stale generation) and a misdirected block (${engine})`, async () => {
    const disk = mk(256);
    await runFio(disk, job('rw=write bs=4k size=128k verify=crc32c'));
    disk.loseWritesAt = 3 * 4096;
    const lost = await runFio(disk, job('rw=write bs=4k size=128k verify=crc32c'));
    assert.equal(lost.verify, 'failed');
    assert.match(lost.failure ?? '', /offset 12288 .*a write was lost/);
    disk.loseWritesAt = -1;
    await runFio(disk, job('rw=write bs=4k size=128k verify=crc32c'));
    disk.data.copyWithin(7 * 4096, 2 * 4096, 3 * 4096);
    const moved = await runFio(disk, job('rw=read bs=4k size=128k verify=crc32c'));
    assert.match(moved.failure ?? '', /offset 28672 .*header names offset 8192/);
  });

  test(`randrw with verify: mixes reads and writes, never overlaps I/O on one block, verifies what it wrote (${engine})`, async () => {
    const disk = mk(512);
    const r = await runFio(disk, job('rw=randrw rwmixread=60 bs=4k iodepth=16 size=64k verify=crc32c seed=9'));
    assert.equal(r.read.ios + r.write.ios, 16);
    assert.equal(r.verify, 'ok');
    const t = await runFio(disk, job('rw=randrw bs=4k iodepth=16 size=64k runtime=0.05 time_based verify=crc32c'));
    assert.ok(t.read.ios > 16 && t.write.ios > 16, JSON.stringify(t));
    assert.equal(t.verify, 'ok');
    assert.ok(t.verified > 0);
  });
}

test('a job that does not fit the disk, or writes a read-only one, is refused', async () => {
  const disk = new MemDisk(64);
  await assert.rejects(runFio(disk, job('size=64k')), /does not fit the 32768-byte disk/);
  await assert.rejects(runFio(disk, job('bs=512 offset=32k')), /does not fit/);
  await assert.rejects(runFio({ ...disk, readOnly: true, read: disk.read.bind(disk), write: disk.write.bind(disk), alloc: disk.alloc.bind(disk), free: () => undefined }, job('rw=write')), { code: 'EROFS' });
});

test('buffers that do not fit in guest memory are refused before any I/O, naming iodepth and bs', async () => {
  const disk = new MemDisk(2048);
  let allocated = 0;
  let freed = 0;
  const small: FioDisk = Object.assign(Object.create(disk) as MemDisk, {
    alloc: (bytes: number): FioBuffer => {
      if (allocated === 3) throw new Error('domain 1: out of pages');
      allocated++;
      return disk.alloc(bytes);
    },
    free: () => void freed++,
  });
  await assert.rejects(runFio(small, job('bs=64k iodepth=8')), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ENOMEM');
    assert.match(err.message, /^fio: iodepth=8 buffers of bs=65536 \(0\.5 MiB\) do not fit in guest memory: domain 1: out of pages/);
    return true;
  });
  assert.equal(freed, 3, 'what was allocated is given back');
  assert.equal(disk.reads + disk.writes, 0);
});

test('submit engine: blocks past 2^31 (bs=512 on a 4 TiB disk) keep their offset in what a failure names', async () => {
  // No data behind it: reads below 2^31 sectors succeed, the first above fails, naming its offset.
  let failedAt = -1;
  const huge: FioDisk = {
    sectors: 2 ** 33, sectorSize: 512, readOnly: false,
    read: () => Promise.reject(new Error('unused')),
    write: () => Promise.reject(new Error('unused')),
    submit(_write, sector, _buf, done, tag) {
      const err = sector >= 2 ** 31 && failedAt < 0 ? new Error('EIO') : undefined;
      if (err !== undefined) failedAt = sector;
      queueMicrotask(() => done(tag, err));
      return undefined;
    },
    alloc: () => new MemBuffer(new Uint8Array(512)),
    free: () => undefined,
  };
  const r = await runFio(huge, job('rw=randread bs=512 iodepth=4 time_based runtime=1'));
  assert.ok(failedAt >= 2 ** 31, 'a block past 2^31 was read');
  assert.equal(r.failure, `read error at offset ${failedAt * 512}: EIO`);
});

test('random jobs reach every block of a region past 2^32 blocks (bs=512 on an 8 TiB disk)', async () => {
  let highest = 0;
  const huge: FioDisk = {
    sectors: 2 ** 34, sectorSize: 512, readOnly: false,
    read: (sector) => ((highest = Math.max(highest, sector)), Promise.resolve()),
    write: () => Promise.reject(new Error('unused')),
    alloc: () => new MemBuffer(new Uint8Array(512)),
    free: () => undefined,
  };
  const r = await runFio(huge, job('rw=randread bs=512 iodepth=4 time_based runtime=0.05'));
  assert.equal(r.errors, 0);
  assert.ok(highest >= 2 ** 32, `highest block ${highest}: one 32-bit draw stops below 2^32`);
});

test('submit engine: iodepth kept, a refused submit and a failed I/O are recorded, the first stops the job', async () => {
  const disk = new SubmitMemDisk(2048);
  const r = await runFio(disk, job('rw=randread bs=4k iodepth=8 runtime=0.05 time_based'));
  assert.equal(disk.maxInFlight, 8);
  assert.ok(r.read.ios > 8 && r.errors === 0 && r.failure === undefined);
  assert.ok(r.read.lat_us.mean > 0 && r.read.lat_us.max >= r.read.lat_us.p50, JSON.stringify(r.read.lat_us));
  disk.refuseNext = new Error('queue full, as io_submit says EAGAIN');
  const refused = await runFio(disk, job('rw=read bs=4k iodepth=4 size=64k'));
  assert.equal(refused.errors, 1);
  assert.match(refused.failure ?? '', /^read error at offset 0: queue full/);
  assert.ok(refused.read.ios < 16, 'the job stopped');
  disk.failNext = new Error('EIO: the backend answered -1');
  const failed = await runFio(disk, job('rw=write bs=4k iodepth=4 size=64k'));
  assert.equal(failed.errors, 1);
  assert.match(failed.failure ?? '', /^write error at offset 0: EIO/);
});
