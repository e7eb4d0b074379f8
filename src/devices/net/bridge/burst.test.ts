/**
 * Stable frames and completion (PortSink.deliver's `stable`, PortSink.complete): a frame
 * held by its sender for a burst (inputHeld inside beginBurst/endBurst) and a frame the bridge
 * queued are stable, and the sink is told to complete them at the burst's end or the end of
 * the delivery run; a borrowed frame is never stable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from './bridge.js';
import { vifName } from './mac.js';
import type { FrameInfo, PortSink } from './port.js';
import { FramePool, type FrameMemory } from './slab.js';
import { ethFrame } from './test-support.js';

const A = '00:16:3e:00:00:0a';
const B = '00:16:3e:00:00:0b';

/** A copying sink that defers stable frames to complete(), as netback does; logs what happens. */
class StagingSink implements PortSink {
  readonly copiesFrame = true;
  readonly log: string[] = [];
  readonly delivered: number[][] = [];
  accept = true;
  private staged: Uint8Array[] = [];

  deliver(frame: Uint8Array, _info: FrameInfo, stable?: boolean): boolean {
    if (!this.accept) return false;
    this.log.push(stable === true ? 'stage' : 'copy');
    if (stable === true) this.staged.push(frame);
    else this.delivered.push([...frame.subarray(14, 16)]);
    return true;
  }

  complete(): void {
    this.log.push(`complete ${this.staged.length}`);
    for (const f of this.staged) this.delivered.push([...f.subarray(14, 16)]);
    this.staged = [];
  }
}

function setup() {
  const br = new Bridge('xenbr0');
  const sa = new StagingSink();
  const sb = new StagingSink();
  const pa = br.addPort(vifName(1, 0), sa);
  const pb = br.addPort(vifName(2, 0), sb);
  pb.input(ethFrame(A, B)); // learn B (flooded to A: an owned copy, completed at once)
  pa.input(ethFrame(B, A)); // learn A
  sa.log.length = sb.log.length = 0;
  sa.delivered.length = sb.delivered.length = 0;
  return { br, sa, sb, pa, pb };
}

function frameFromA(n: number): Uint8Array {
  const f = ethFrame(B, A);
  f[14] = n;
  f[15] = n + 1;
  return f;
}

test('held frames of a burst are staged and completed once, when the burst ends', () => {
  const { sb, pa } = setup();
  const scratch = frameFromA(1); // the sender's reused page: unchanged until endBurst
  pa.beginBurst();
  pa.inputHeld(scratch, { csumBlank: false, dataValidated: false });
  pa.inputHeld(frameFromA(3), { csumBlank: false, dataValidated: false });
  assert.deepEqual(sb.log, ['stage', 'stage'], 'nothing completed inside the burst');
  pa.endBurst();
  assert.deepEqual(sb.log, ['stage', 'stage', 'complete 2']);
  assert.deepEqual(sb.delivered, [[1, 2], [3, 4]]);
  assert.equal(pa.counters.rxPackets, 2 + 1);
});

test('nested bursts complete at the outermost end; a held input outside any burst is a borrowed one', () => {
  const { sb, pa, pb } = setup();
  pa.beginBurst();
  pb.beginBurst();
  pa.inputHeld(frameFromA(5), { csumBlank: false, dataValidated: false });
  pb.endBurst();
  assert.deepEqual(sb.log, ['stage']);
  pa.endBurst();
  assert.deepEqual(sb.log, ['stage', 'complete 1']);
  pa.endBurst(); // unmatched: ignored
  pa.inputHeld(frameFromA(7), { csumBlank: false, dataValidated: false });
  pa.input(frameFromA(9));
  assert.deepEqual(sb.log, ['stage', 'complete 1', 'copy', 'copy'], 'copied before input returned');
  assert.deepEqual(sb.delivered, [[5, 6], [7, 8], [9, 10]]);
});

test('frames the bridge queued are stable: a delivery run stages them and completes at its end', () => {
  const { sb, pa, pb } = setup();
  sb.accept = false;
  const reused = frameFromA(11);
  pa.input(reused); // no room: the bridge queues its own copy
  reused[14] = 99; // the sender reuses its buffer
  pa.input(frameFromA(13));
  assert.deepEqual(sb.log, []);
  sb.accept = true;
  pb.wake();
  assert.deepEqual(sb.log, ['stage', 'stage', 'complete 2']);
  assert.deepEqual(sb.delivered, [[11, 12], [13, 14]], 'the queued copy, not the reused buffer');
});

test('a sink that throws in complete() is counted; the port goes on', () => {
  const { sb, pa, pb } = setup();
  sb.complete = () => {
    throw new Error('sink bug');
  };
  const before = pb.counters.txPackets;
  pa.beginBurst();
  pa.inputHeld(frameFromA(1), { csumBlank: false, dataValidated: false });
  pa.endBurst();
  assert.equal(pb.counters.txErrors, 1);
  pa.input(frameFromA(2));
  assert.equal(pb.counters.txPackets, before + 2);
  assert.equal(pb.counters.txErrors, 1);
});

test('queued copies reuse their buffers only after the sink completed them', () => {
  const { sb, pa, pb } = setup();
  const seen = new Set<ArrayBufferLike>();
  const record = sb.deliver.bind(sb);
  sb.deliver = (f, i, stable) => {
    if (sb.accept) seen.add(f.buffer); // the buffers of frames taken (a refused one is the sender's)
    return record(f, i, stable);
  };
  // Round 1: three frames queued while there is no room, delivered and completed on wake.
  sb.accept = false;
  for (const n of [1, 3, 5]) pa.input(frameFromA(n));
  sb.accept = true;
  pb.wake();
  assert.deepEqual(sb.delivered, [[1, 2], [3, 4], [5, 6]]);
  const firstRound = new Set(seen);
  assert.equal(firstRound.size, 3, 'one buffer per queued copy');
  // Round 2, inside a sender's burst: delivered on wake but completed only at the burst's end,
  // so copies queued meanwhile must not land in those buffers.
  sb.delivered.length = 0;
  seen.clear();
  sb.accept = false;
  for (const n of [7, 9]) pa.input(frameFromA(n));
  pa.beginBurst();
  sb.accept = true;
  pb.wake(); // 7 and 9 staged, not completed
  sb.accept = false;
  for (const n of [11, 13, 15]) pa.input(frameFromA(n)); // refused: queued copies
  pa.endBurst();
  assert.deepEqual(sb.delivered, [[7, 8], [9, 10]], 'the staged frames kept their bytes until complete');
  sb.accept = true;
  pb.wake();
  assert.deepEqual(sb.delivered, [[7, 8], [9, 10], [11, 12], [13, 14], [15, 16]]);
  assert.equal(seen.size, 5, 'no buffer was handed out twice before its complete');
  assert.equal([...seen].filter((b) => firstRound.has(b)).length, 3, 'all three round-1 buffers were reused');
});

test('a sink without complete() never gets pooled buffers back: each queued copy is its own', () => {
  const br = new Bridge('xenbr0');
  const kept: Uint8Array[] = [];
  let accept = true;
  const pa = br.addPort(vifName(1, 0), { deliver: () => true });
  const pb = br.addPort(vifName(2, 0), { copiesFrame: true, deliver: (f) => (accept ? (kept.push(f), true) : false) });
  pb.input(ethFrame(A, B));
  pa.input(ethFrame(B, A));
  kept.length = 0;
  for (let round = 0; round < 2; round++) {
    accept = false;
    pa.input(frameFromA(round * 2 + 1));
    accept = true;
    pb.wake();
  }
  assert.deepEqual(kept.map((f) => [...f.subarray(14, 16)]), [[1, 2], [3, 4]], 'the first copy was not overwritten');
});

test('FramePool: copies up to its buffer size, keeps at most maxFree buffers for reuse', () => {
  const pool = new FramePool(64, 2);
  assert.equal(pool.copy(new Uint8Array(65)), undefined, 'larger than a buffer: not pooled');
  assert.ok(pool.copy(new Uint8Array(64)) !== undefined, 'a buffer-sized frame is pooled');
  const bufs = [1, 2, 3].map((n) => pool.copy(Uint8Array.of(n, n + 1))!);
  assert.deepEqual(bufs.map((b) => [...b.current]), [[1, 2], [2, 3], [3, 4]]);
  for (const b of bufs) pool.give(b);
  assert.equal(pool.freeCount, 2, 'the third buffer was left to GC');
  const again = pool.copy(Uint8Array.of(9, 9, 9))!;
  assert.ok(bufs.includes(again), 'a given-back buffer is reused');
  assert.deepEqual([...again.current], [9, 9, 9]);
  assert.equal(pool.freeCount, 1);
});

test('FramePool: a copy lies at its source address mod 8 (V8 copies shared memory by words only between equal ones)', () => {
  const pool = new FramePool(64, 2);
  const src = new Uint8Array(new SharedArrayBuffer(80));
  for (const at of [0, 2, 7, 8, 13]) {
    const frame = src.subarray(at, at + 56).fill(at + 1);
    const b = pool.copy(frame)!;
    assert.equal(b.current.byteOffset % 8, at % 8, `source at ${at}`);
    assert.equal(b.current.length, 56);
    assert.ok(b.current.every((x) => x === at + 1), 'the bytes are the frame\'s');
    pool.give(b);
  }
  // A frame that would not fit at its offset starts the buffer.
  const b = pool.copy(src.subarray(2, 66).fill(7))!;
  assert.equal(b.current.byteOffset % 8, 0);
  assert.deepEqual([...b.current], new Array(64).fill(7));
});

test('FramePool with a FrameMemory: buffers are halves of its pages, used first, up to maxPages, given back on dispose', () => {
  const taken: Uint8Array[] = [];
  const released: Uint8Array[] = [];
  let copies = 0;
  const memory: FrameMemory = {
    takePage: () => {
      const page = new Uint8Array(4096);
      taken.push(page);
      return page;
    },
    copy: (dst, at, src) => {
      copies++;
      dst.set(src, at);
    },
    releasePages: (pages) => void released.push(...pages),
  };
  const pool = new FramePool(2048, 1, memory, 2);
  const bufs = [1, 2, 3, 4, 5].map((n) => pool.copy(new Uint8Array(100).fill(n))!);
  assert.equal(pool.pageCount, 2, 'no more than maxPages');
  assert.equal(copies, 5, 'every copy went through the FrameMemory');
  const inPages = bufs.filter((b) => taken.some((p) => p.buffer === b.bytes.buffer));
  assert.equal(inPages.length, 4, 'two buffers a page');
  assert.ok(bufs.every((b, i) => b.current.every((x) => x === i + 1)), 'each holds its frame');
  for (const b of [...bufs].reverse()) pool.give(b);
  assert.equal(pool.freeCount, 5, 'page buffers are all kept, V8 ones up to maxFree');
  assert.ok(taken.some((p) => p.buffer === pool.copy(new Uint8Array(10))!.bytes.buffer), 'a page buffer is used before a V8 one');
  pool.dispose();
  assert.deepEqual(released, taken, 'the pages go back');
  assert.equal(pool.pageCount, 0);
});

test('FramePool: a FrameMemory with no page to spare leaves the pool on V8 buffers', () => {
  const pool = new FramePool(2048, 4, { takePage: () => undefined, copy: (d, at, s) => d.set(s, at), releasePages: () => assert.fail('nothing was taken') }, 8);
  const b = pool.copy(Uint8Array.of(1, 2, 3))!;
  assert.deepEqual([...b.current], [1, 2, 3]);
  assert.equal(pool.pageCount, 0);
  pool.dispose();
});

test('the buffers of a complete() that threw are never reused (the sink may still hold them)', () => {
  const { sb, pa, pb } = setup();
  const taken: ArrayBufferLike[] = [];
  const record = sb.deliver.bind(sb);
  sb.deliver = (f, i, stable) => {
    if (sb.accept) taken.push(f.buffer);
    return record(f, i, stable);
  };
  const complete = sb.complete.bind(sb);
  sb.accept = false;
  for (const n of [1, 3]) pa.input(frameFromA(n));
  sb.complete = () => {
    throw new Error('sink bug');
  };
  sb.accept = true;
  pb.wake();
  assert.equal(pb.counters.txErrors, 1);
  const first = taken.splice(0);
  assert.equal(first.length, 2);
  sb.complete = complete;
  sb.accept = false;
  for (const n of [5, 7]) pa.input(frameFromA(n));
  sb.accept = true;
  pb.wake();
  assert.equal(taken.length, 2);
  assert.ok(taken.every((b) => !first.includes(b)), 'fresh buffers, not the ones the failed complete() left behind');
});

test('a queued copy delivered while its sink completes is not reused before its own complete', () => {
  const { sb, pa, pb } = setup();
  sb.accept = false;
  for (const n of [1, 3]) pa.input(frameFromA(n));
  const complete = sb.complete.bind(sb);
  let reenter = true;
  sb.complete = () => {
    complete();
    if (!reenter) return;
    reenter = false;
    // From inside complete(): a burst opens, and a frame is queued and delivered (staged) in it.
    pa.beginBurst();
    sb.accept = false;
    pa.input(frameFromA(5));
    sb.accept = true;
    pb.wake();
  };
  sb.accept = true;
  pb.wake(); // 1 and 3 delivered and completed; 5 staged for the burst's end
  sb.accept = false;
  pa.input(frameFromA(7)); // refused: a queued copy, while 5 still waits for its complete
  pa.endBurst();
  assert.deepEqual(sb.delivered, [[1, 2], [3, 4], [5, 6]], 'frame 5 kept its bytes until its complete');
  sb.accept = true;
  pb.wake();
  assert.deepEqual(sb.delivered, [[1, 2], [3, 4], [5, 6], [7, 8]]);
});

test('a port that leaves the bridge with copies queued gives their pool buffers back (a page buffer would be out of use for good)', () => {
  const taken: Uint8Array[] = [];
  const frameMemory: FrameMemory = {
    takePage: () => {
      const p = new Uint8Array(4096);
      taken.push(p);
      return p;
    },
    copy: (d, at, src) => d.set(src, at),
    releasePages: () => undefined,
  };
  const br = new Bridge('xenbr0', { frameMemory });
  const sa = new StagingSink();
  const sb = new StagingSink();
  const pa = br.addPort(vifName(1, 0), sa);
  const pb = br.addPort(vifName(2, 0), sb);
  pb.input(ethFrame(A, B));
  pa.input(ethFrame(B, A));
  sb.accept = false; // B has no buffers: A's frames queue, as copies in the pool
  for (let n = 1; n <= 5; n++) pa.input(frameFromA(n));
  assert.equal(pb.queueLength, 5);
  const pool = (br as unknown as { host: { pool: FramePool } }).host.pool;
  const free = pool.freeCount;
  br.removePort(pb.name);
  assert.equal(pool.freeCount, free + 5, 'the five queued copies went back');
  assert.ok(pool.pageCount >= 3 && taken.length === pool.pageCount, 'page buffers, not V8 ones');
  br.dispose();
});
