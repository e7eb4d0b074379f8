/**
 * netback's batched copies keep a frame's alignment modulo 8 (tx-batch.ts, rx-batch.ts): the
 * private copy of a tx packet lies at the guest's offset modulo 8, and a frame goes into the
 * receiver's buffer at its own skew, said in the response's offset. The bytes and statuses are
 * those of an offset-0 copy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DomId, Frame, GrantRef } from '../../base/index.js';
import { SimGrantOps } from '../../grant/ops.js';
import { grantTestTable } from '../../grant/test-support.js';
import type { NetifTxRequest } from '../../abi/io/netif-codec.js';
import { PAGE_SIZE } from '../../hv/platform.js';
import { RxBatch } from './rx-batch.js';
import { TxBatch } from './tx-batch.js';

const BACK = 0 as DomId;
const GUEST = 1 as DomId;

function setup(): { back: SimGrantOps; guest: SimGrantOps; page: (frame: number) => Uint8Array } {
  const t = grantTestTable(2);
  const back = new SimGrantOps(t, BACK, t.newTid());
  const guest = new SimGrantOps(t, GUEST, t.newTid());
  const mem = guest.view(GUEST).mem;
  return { back, guest, page: (f) => mem.subarray(f * PAGE_SIZE, (f + 1) * PAGE_SIZE) };
}

function pattern(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (i * 7 + seed) & 0xff);
}

function txReq(gref: GrantRef, offset: number, size: number, id: number): NetifTxRequest {
  return { gref, offset, size, id, flags: 0 };
}

test('a tx packet at offset 2 is copied to a private frame skewed by 2; the rx copy puts it at offset 2 of the buffer', () => {
  const { back, guest, page } = setup();
  const txRef = guest.grantAccess(BACK, 3 as Frame, true);
  const rxRef = guest.grantAccess(BACK, 5 as Frame, false);
  const data = pattern(1514, 1);
  page(3).set(data, 2);
  const tx = new TxBatch(GUEST);
  tx.stage(txReq(txRef, 2, data.length, 9));
  assert.deepEqual([...tx.copy(back)], [0]);
  const frame = tx.frame(0);
  assert.equal(frame.byteOffset & 7, 2, 'same alignment as the guest bytes');
  assert.deepEqual(frame, data);
  const rx = new RxBatch(GUEST, new Uint8Array(PAGE_SIZE));
  rx.stage(frame, rxRef, 4, 0);
  assert.deepEqual([...rx.copy(back)], [0]);
  assert.deepEqual([rx.id(0), rx.offset(0), rx.len(0)], [4, 2, 1514]);
  assert.deepEqual(page(5).subarray(2, 2 + 1514), data);
  tx.clear();
  rx.clear();
});

test('a frame at offset 0 stays at 0, one filling its page to the end keeps its skew, one whose skew would not fit goes to offset 0', () => {
  const { back, guest, page } = setup();
  const txRef = guest.grantAccess(BACK, 3 as Frame, true);
  const rxRef = guest.grantAccess(BACK, 5 as Frame, false);
  const tx = new TxBatch(GUEST);
  const small = pattern(60, 3);
  page(3).set(small, 0);
  tx.stage(txReq(txRef, 0, small.length, 1));
  const big = pattern(PAGE_SIZE - 3, 5);
  page(4).set(big, 3);
  const txRef2 = guest.grantAccess(BACK, 4 as Frame, true);
  tx.stage(txReq(txRef2, 3, big.length, 2));
  assert.deepEqual([...tx.copy(back)], [0, 0]);
  assert.equal(tx.frame(0).byteOffset & 7, 0);
  assert.equal(tx.frame(1).byteOffset & 7, 3);
  assert.deepEqual(tx.frame(1), big);
  const rx = new RxBatch(GUEST, new Uint8Array(PAGE_SIZE));
  rx.stage(tx.frame(0), rxRef, 1, 0);
  const rxRef2 = guest.grantAccess(BACK, 6 as Frame, false);
  rx.stage(tx.frame(1), rxRef2, 2, 0);
  // A frame from elsewhere (a sink's own buffer) skewed by 3 and too long to keep that skew.
  const odd = pattern(PAGE_SIZE - 1, 9);
  const oddFrame = new Uint8Array(PAGE_SIZE + 8).subarray(3, 3 + odd.length);
  oddFrame.set(odd);
  const rxRef3 = guest.grantAccess(BACK, 7 as Frame, false);
  rx.stage(oddFrame, rxRef3, 3, 0);
  assert.deepEqual([...rx.copy(back)], [0, 0, 0]);
  assert.deepEqual([rx.offset(0), rx.offset(1), rx.offset(2)], [0, 3, 0], '3 + 4095 bytes would cross the page');
  assert.deepEqual(page(5).subarray(0, 60), small);
  assert.deepEqual(page(6).subarray(3, 3 + big.length), big);
  assert.deepEqual(page(7).subarray(0, odd.length), odd);
});

test('a revoked rx grant still fails its skewed copy, leaving the page alone', () => {
  const { back, guest, page } = setup();
  const txRef = guest.grantAccess(BACK, 3 as Frame, true);
  const rxRef = guest.grantAccess(BACK, 5 as Frame, false);
  page(3).set(pattern(100, 7), 6);
  const tx = new TxBatch(GUEST);
  tx.stage(txReq(txRef, 6, 100, 1));
  assert.deepEqual([...tx.copy(back)], [0]);
  assert.equal(guest.endAccess(rxRef), true);
  const rx = new RxBatch(GUEST, new Uint8Array(PAGE_SIZE));
  rx.stage(tx.frame(0), rxRef, 1, 0);
  assert.notEqual(rx.copy(back)[0], 0);
  assert.ok(page(5).every((b) => b === 0));
});
