/**
 * "An OKAY is a promise" (issue 4, reliability.md R18), end to end: BlkFront → ring → BlkBack
 * → raw storage on a disk with a volatile write cache (storage/volatile-cache.ts). A random
 * workload of writes and flushes runs until a power cut fires at a random device operation;
 * the surviving medium must then hold, in every sector, a version at least as new as:
 * - with feature-flush-cache (writeback): the last version acknowledged before the issue of
 *   a flush that was acknowledged;
 * - without it (writethrough): the last acknowledged version.
 * Every sector is tagged with its version, so torn and stale sectors are both recognised.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryImageFile } from './storage/image-file.js';
import { RawStorage } from './storage/raw.js';
import { VolatileCacheFile, seededRng } from './storage/volatile-cache.js';
import { startPair, withBlkEnv } from './test-support.js';

const SECTORS = 256;
const REGION = 16; // sectors per region; each region is written in sequence
const REGIONS = SECTORS / REGION;

/** Region data for version v: every 32-bit word says (v, sector). */
function versioned(sector: number, sectors: number, v: number): Uint8Array {
  const b = new Uint8Array(sectors * 512);
  const w = new DataView(b.buffer);
  for (let s = 0; s < sectors; s++) for (let i = 0; i < 512; i += 8) {
    w.setUint32(s * 512 + i, v, true);
    w.setUint32(s * 512 + i + 4, sector + s, true);
  }
  return b;
}

/** The version a sector holds on the medium, or -1 if it is torn or misplaced. */
function versionOf(medium: Uint8Array, sector: number): number {
  const w = new DataView(medium.buffer, medium.byteOffset + sector * 512, 512);
  const v = w.getUint32(0, true);
  if (v === 0 && w.getUint32(4, true) === 0) return medium.subarray(sector * 512, sector * 512 + 512).every((x) => x === 0) ? 0 : -1;
  for (let i = 0; i < 512; i += 8) if (w.getUint32(i, true) !== v || w.getUint32(i + 4, true) !== sector) return -1;
  return v;
}

async function scenario(cache: 'writeback' | 'writethrough', seed: number): Promise<{ floors: number[]; cutFired: boolean }> {
  let result = { floors: [] as number[], cutFired: false };
  await withBlkEnv(async (env) => {
    const medium = new MemoryImageFile(new Uint8Array(SECTORS * 512));
    const file = new VolatileCacheFile(medium, seededRng(seed));
    const storage = await RawStorage.open(file, { cache });
    const rnd = seededRng(seed * 7 + 1);
    file.armCut(100 + Math.floor(rnd() * 300));
    const { front } = await startPair(env, storage, { back: { persistent: seed % 2 === 0 }, front: { maxQueues: 2 } });
    assert.equal(front.info.features.flush, cache === 'writeback', 'flush advertised exactly when there is a volatile cache');
    const acked = new Array<number>(REGIONS).fill(0);
    const durable = new Array<number>(REGIONS).fill(0);
    let dead = false;
    const writer = async (r: number): Promise<void> => {
      for (let v = 1; !dead && v < 1000; v++) {
        try {
          await front.write(r * REGION, versioned(r * REGION, REGION, v));
          acked[r] = v;
          if (cache === 'writethrough') durable[r] = v;
        } catch {
          dead = true;
        }
      }
    };
    const flusher = async (): Promise<void> => {
      while (!dead) {
        await new Promise((res) => setTimeout(res, Math.floor(rnd() * 2)));
        const covered = acked.slice(); // acknowledged before the flush is issued
        try {
          await front.flush();
          covered.forEach((v, r) => (durable[r] = Math.max(durable[r]!, v)));
        } catch {
          dead = true;
        }
      }
    };
    await Promise.all([...Array.from({ length: REGIONS }, (_, r) => writer(r)), flusher()]);
    await file.powerCut();
    const image = new Uint8Array(SECTORS * 512);
    await medium.read(0, image);
    for (let r = 0; r < REGIONS; r++) {
      for (let s = r * REGION; s < (r + 1) * REGION; s++) {
        const v = versionOf(image, s);
        assert.ok(v >= durable[r]!, `seed ${seed} ${cache}: sector ${s} holds v${v}, below the durable floor v${durable[r]}`);
      }
    }
    result = { floors: durable, cutFired: file.isDead };
    await front.dispose(2000);
  });
  return result;
}

for (const cache of ['writeback', 'writethrough'] as const) {
  test(`durability (${cache}): a power cut at a random step keeps every write the protocol promised`, async () => {
    let promised = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const { floors, cutFired } = await scenario(cache, seed);
      assert.ok(cutFired, 'the cut fired during the workload');
      promised += floors.reduce((a, b) => a + b, 0);
    }
    assert.ok(promised > 0, 'some writes were promised durable before the cuts (the check was not vacuous)');
  });
}
