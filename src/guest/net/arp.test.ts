import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArpTable, DEFAULT_ARP_LIMITS } from './arp.js';

const MAC_A = Uint8Array.of(0, 0x16, 0x3e, 0, 0, 1);
const MAC_B = Uint8Array.of(0, 0x16, 0x3e, 0, 0, 2);

function table(maxEntries: number) {
  let now = 0;
  const requests: number[] = [];
  const t = new ArpTable<string>(() => now, { request: (ip) => requests.push(ip), flush: () => undefined, drop: () => undefined }, { ...DEFAULT_ARP_LIMITS, maxEntries });
  return { t, requests, advance: (ms: number) => (now += ms) };
}

test('ARP lookup of the same neighbour again (the kept last entry) follows the table: updates, eviction, expiry', () => {
  const { t, advance } = table(1);
  t.update(1, MAC_A, true);
  assert.deepEqual(t.lookup(1), MAC_A);
  t.update(1, MAC_B, false);
  assert.deepEqual(t.lookup(1), MAC_B, 'a merged MAC is seen at once');
  advance(1);
  t.update(2, MAC_A, true); // a full table: the entry for 1 is evicted
  assert.equal(t.lookup(1), undefined);
  assert.deepEqual(t.lookup(2), MAC_A);
  // An unanswered address expires; a lookup after that finds nothing, even right after a hit.
  const { t: t2, advance: adv2 } = table(8);
  assert.deepEqual(t2.resolve(5, 'p'), { queued: true });
  assert.equal(t2.lookup(5), undefined, 'unresolved');
  for (let i = 0; i < 5; i++) {
    adv2(DEFAULT_ARP_LIMITS.retransMs);
    t2.tick();
  }
  assert.equal(t2.size, 0);
  assert.equal(t2.lookup(5), undefined);
  t2.update(6, MAC_A, true);
  assert.deepEqual(t2.lookup(6), MAC_A);
  adv2(DEFAULT_ARP_LIMITS.reachableMs);
  assert.deepEqual(t2.lookup(6), MAC_A, 'stale: still used while it is probed again');
  for (let i = 0; i < 5; i++) {
    adv2(DEFAULT_ARP_LIMITS.retransMs);
    t2.tick();
  }
  assert.equal(t2.lookup(6), undefined, 'a cached entry that expired is gone');
});
