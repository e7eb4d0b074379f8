/**
 * Data round trips through a real handshake: BlkFront in a sim guest, BlkBack in dom0, an
 * in-process xenstored, memory storage. Table-driven over the feature combinations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from './storage/memory.js';
import { pattern, startPair, withBlkEnv } from './test-support.js';
import type { BlkBackOptions } from './back.js';
import type { BlkFrontOptions } from './front-api.js';

interface Case {
  readonly name: string;
  readonly back?: BlkBackOptions;
  readonly front?: BlkFrontOptions;
  readonly trusted?: boolean;
  readonly expect: (f: import('./front-api.js').BlkFeatures) => void;
}

const CASES: Case[] = [
  {
    name: 'plain (no persistent, no indirect, 1 queue, 1 page)',
    back: { persistent: false, maxIndirectSegments: 0, maxQueues: 1, maxRingPageOrder: 0 },
    front: { persistent: false, maxQueues: 1 },
    expect: (f) => {
      assert.equal(f.persistent, false);
      assert.equal(f.indirectSegments, 0);
      assert.equal(f.queues, 1);
      assert.equal(f.ringPages, 1);
    },
  },
  {
    name: 'persistent grants',
    back: { maxIndirectSegments: 0, maxQueues: 1 },
    front: { persistent: true, maxQueues: 1, maxIndirectSegments: 0 },
    expect: (f) => assert.equal(f.persistent, true),
  },
  {
    name: 'indirect',
    back: { persistent: false, maxQueues: 1 },
    front: { persistent: false, maxQueues: 1, maxIndirectSegments: 64 },
    expect: (f) => assert.equal(f.indirectSegments, 64),
  },
  {
    name: 'multi-page ring',
    back: { persistent: false, maxIndirectSegments: 0, maxQueues: 1 },
    front: { persistent: false, maxQueues: 1, maxRingPageOrder: 2 },
    expect: (f) => assert.equal(f.ringPages, 4),
  },
  {
    name: 'multi-queue',
    back: { persistent: false, maxIndirectSegments: 0, maxQueues: 3 },
    front: { persistent: false, maxQueues: 4 },
    expect: (f) => assert.equal(f.queues, 3),
  },
  {
    name: 'x86_32 protocol',
    back: { maxQueues: 1 },
    front: { abi: 'x86_32', maxQueues: 1 },
    expect: (f) => assert.equal(f.protocol, 'x86_32'),
  },
  {
    name: 'trusted=0',
    trusted: false,
    front: { maxQueues: 1 },
    expect: (f) => assert.equal(f.trusted, false),
  },
  {
    name: 'GNTTABOP_copy data path (+ indirect, multi-queue)',
    back: { dataPath: 'copy', maxQueues: 2 },
    front: { persistent: true, maxQueues: 2, maxIndirectSegments: 128 },
    expect: (f) => {
      assert.equal(f.persistent, false, 'a copying backend offers no persistent grants');
      assert.equal(f.indirectSegments, 128);
    },
  },
  {
    name: 'everything: persistent + indirect + multi-page + multi-queue + x86_32',
    back: { maxQueues: 2 },
    front: { persistent: true, maxIndirectSegments: 256, maxRingPageOrder: 1, maxQueues: 2, abi: 'x86_32' },
    expect: (f) => {
      assert.deepEqual([f.persistent, f.indirectSegments, f.ringPages, f.queues, f.protocol], [true, 256, 2, 2, 'x86_32']);
    },
  },
];

for (const c of CASES) {
  test(`round trip: ${c.name}`, () =>
    withBlkEnv(async (env) => {
      const disk = new MemoryStorage(4096);
      const { back, front } = await startPair(env, disk, { vbd: { trusted: c.trusted }, back: c.back, front: c.front });
      c.expect(front.info.features);
      const bi = back.info();
      assert.deepEqual([bi.protocol, bi.queues, bi.ringPages, bi.persistent], [front.info.features.protocol, front.info.features.queues, front.info.features.ringPages, front.info.features.persistent]);
      assert.equal(front.info.sectors, 4096);
      // Sizes across the segment boundaries: 1 sector, a page, 11 pages (direct max), 12 pages
      // (indirect or split), 300 pages (several indirect pages or many requests).
      const writes = [
        [0, 1],
        [7, 8],
        [100, 88],
        [300, 96],
        [1000, 2400],
      ] as const;
      await Promise.all(writes.map(([s, n], i) => front.write(s, pattern(s, n, i + 1))));
      for (const [i, [s, n]] of writes.entries()) {
        const buf = new Uint8Array(n * 512);
        await front.read(s, buf);
        assert.deepEqual(buf, pattern(s, n, i + 1), `read back ${s}+${n}`);
        assert.deepEqual(disk.bytes.subarray(s * 512, (s + n) * 512), pattern(s, n, i + 1), `on disk ${s}+${n}`);
      }
      await front.flush();
      await front.discard(1000, 16);
      const z = new Uint8Array(16 * 512);
      await front.read(1000, z);
      assert.ok(z.every((b) => b === 0), 'discarded range reads zero (memory store discardZeroes)');
      if (front.info.features.persistent) assert.ok(back.info().persistentGrants > 0, 'the backend keeps grants mapped');
      else assert.equal(back.info().persistentGrants, 0);
      const counters = back.info().counters;
      assert.ok(counters.write.requests >= writes.length);
      assert.equal(counters.read.errors + counters.write.errors, 0);
      assert.equal(front.counters.write.requests, writes.length);
      assert.equal(front.counters.write.bytes, writes.reduce((n, [, k]) => n + k * 512, 0));
      await front.close(2000);
    }));
}

for (const trusted of [true, false]) {
  test(`BlkBuffer I/O, trusted=${trusted ? 1 : 0}: ${trusted ? 'pages granted in place' : 'bounced, the caller\'s pages never granted'}`, () =>
    withBlkEnv(async (env) => {
      const disk = new MemoryStorage(2048);
      const { front } = await startPair(env, disk, { vbd: { trusted }, back: { persistent: false }, front: { persistent: false, maxIndirectSegments: 64 } });
      const buf = front.allocBuffer(100 * 4096);
      buf.copyIn(0, pattern(16, 800, 7));
      // Watch which frames the backend gets granted: the sim grant table records the frame per ref.
      const granted = new Set<number>();
      const grants = env.guest.grants;
      const orig = grants.grantAccess.bind(grants);
      grants.grantAccess = (remote, frame, ro) => {
        granted.add(frame);
        return orig(remote, frame, ro);
      };
      await front.write(16, buf);
      assert.deepEqual(disk.bytes.subarray(16 * 512, 816 * 512), pattern(16, 800, 7));
      const back2 = front.allocBuffer(100 * 4096);
      await front.read(16, back2);
      assert.deepEqual(back2.toBytes(), pattern(16, 800, 7));
      const inPlace = buf.frames.some((f) => granted.has(f)) || back2.frames.some((f) => granted.has(f));
      assert.equal(inPlace, trusted, trusted ? 'zero copy: buffer pages granted' : 'trusted=0: buffer pages never granted');
      grants.grantAccess = orig;
      buf.free();
      back2.free();
      await front.close(2000);
    }));
}
