import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { roundDownPow2, ringSize, xenFlexRingSize, SRING_HEADER_SIZE } from './ring.js';

test('ring: entries per ring as protocols.md §0.1 tabulates them', () => {
  assert.equal(SRING_HEADER_SIZE, 64);
  assert.deepEqual([1, 2, 4, 8, 16].map((p) => ringSize(p * 4096, 112)), [32, 64, 128, 256, 512]); // blkif x86_64
  assert.equal(ringSize(4096, 12), 256); // netif tx
  assert.equal(ringSize(4096, 8), 256); // netif rx
  assert.equal(ringSize(4096, 16), 128); // netif ctrl
});

test('ring: __RD32 is the largest power of two not above x', () => {
  assert.equal(roundDownPow2(0), 0);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 0xffffffff }), (x) => {
      const p = roundDownPow2(x);
      assert.ok(p <= x && p * 2 > x && Number.isInteger(Math.log2(p)));
    }),
  );
});

test('ring: XEN_FLEX_RING_SIZE(order) = 1 << (order + XEN_PAGE_SHIFT - 1)', () => {
  assert.equal(xenFlexRingSize(0), 2048);
  assert.equal(xenFlexRingSize(3), 16384);
});
