import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { XenpvError } from '../../../base/index.js';
import { MemoryImageFile } from './image-file.js';
import { VolatileCacheFile, seededRng } from './volatile-cache.js';

describe('volatile cache file', () => {
  test('unflushed writes are visible, flushed ones reach the medium', async () => {
    const medium = new MemoryImageFile(new Uint8Array(4096));
    const cache = new VolatileCacheFile(medium, seededRng(1));
    await cache.write(512, new Uint8Array(512).fill(7));
    const buf = new Uint8Array(512);
    await cache.read(512, buf);
    assert.equal(buf[0], 7);
    assert.equal(medium.snapshot()[512], 0, 'not on the medium before flush');
    await cache.flush();
    assert.equal(medium.snapshot()[512], 7);
  });

  test('a power cut keeps flushed data, loses or tears the rest, then the device is dead', async () => {
    let lost = 0;
    let kept = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const medium = new MemoryImageFile(new Uint8Array(8192));
      const cache = new VolatileCacheFile(medium, seededRng(seed));
      await cache.write(0, new Uint8Array(512).fill(1));
      await cache.flush();
      await cache.write(1024, new Uint8Array(2048).fill(2));
      await cache.powerCut();
      const after = medium.snapshot();
      assert.equal(after[0], 1, 'flushed data survives');
      for (let s = 2; s < 6; s++) (after[s * 512] === 2 ? kept++ : lost++);
      await assert.rejects(cache.read(0, new Uint8Array(512)), (e: unknown) => e instanceof XenpvError && e.code === 'EIO');
    }
    assert.ok(lost > 0 && kept > 0, `unflushed sectors both lost (${lost}) and kept (${kept}) across seeds`);
  });

  test('an armed cut fires at the n-th device operation', async () => {
    const cache = new VolatileCacheFile(new MemoryImageFile(), seededRng(3));
    cache.armCut(2);
    await cache.write(0, new Uint8Array(512));
    await cache.flush();
    await assert.rejects(cache.write(0, new Uint8Array(512)), (e: unknown) => e instanceof XenpvError && e.code === 'EIO');
    assert.equal(cache.isDead, true);
  });
});
