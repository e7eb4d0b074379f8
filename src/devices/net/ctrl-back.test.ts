/**
 * Netback's control-ring operations, sans-IO: a scenario table (request → status, state) per
 * netif.h "Control messages", and the hash inputs of each XEN_NETIF_CTRL_HASH_TYPE_*.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP,
  XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER as INVALID,
  XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED as UNSUPPORTED,
  XEN_NETIF_CTRL_STATUS_SUCCESS as OK,
  XEN_NETIF_CTRL_TYPE as T,
} from '../../abi/io/netif.js';
import { toeplitzHash } from '../../abi/io/netif-codec.js';
import { handleCtrlRequest, type CtrlContext } from './ctrl-back.js';
import { HashConfig, hashInput } from './hash.js';

/** A context whose "frontend pages" are a map gref → bytes; other grefs fail to copy. */
function ctx(pages: Record<number, Uint8Array> = {}, numQueues = 4): CtrlContext & { hash: HashConfig } {
  return {
    hash: new HashConfig(40, 128),
    numQueues,
    copyIn: (gref, dest, len) => {
      const p = pages[gref];
      if (p === undefined) return false;
      dest.set(p.subarray(0, len));
      return true;
    },
  };
}

function req(c: CtrlContext, type: number, d: [number, number, number] = [0, 0, 0], id = 7) {
  const r = handleCtrlRequest(c, { id, type, data: d });
  assert.equal(r.id, id, 'id echoed');
  assert.equal(r.type, type, 'type echoed');
  return r;
}

test('hash algorithm and flags: NONE refuses flags; unknown bits and algorithms are INVALID_PARAMETER', () => {
  const c = ctx();
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS).status, UNSUPPORTED, 'no algorithm selected yet');
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, [1, 0, 0]).status, INVALID);
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, [2, 0, 0]).status, INVALID);
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, [1, 0, 0]).status, OK);
  assert.deepEqual(req(c, T.XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS), { id: 7, type: 1, status: OK, data: 15 });
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, [16, 0, 0]).status, INVALID);
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, [3, 0, 0]).status, OK);
  assert.equal(c.hash.flags, 3);
});

test('hash key: copied from the grant, the rest zeroed; too long or an uncopyable grant is INVALID_PARAMETER', () => {
  const c = ctx({ 9: new Uint8Array(4096).fill(0xaa) });
  c.hash.key.fill(0x55);
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, [9, 10, 0]).status, OK);
  assert.deepEqual([...c.hash.key.subarray(0, 12)], [...Array(10).fill(0xaa), 0, 0]);
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, [9, 41, 0]).status, INVALID);
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, [3, 10, 0]).status, INVALID, 'bad grant');
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, [3, 0, 0]).status, OK, 'size 0 clears the key');
  assert.ok(c.hash.key.every((b) => b === 0));
});

test('hash mapping: size bound, range checks, queue numbers checked before anything is committed', () => {
  const table = new Uint8Array(4096);
  const view = new DataView(table.buffer);
  [3, 2, 1, 0, 7].forEach((q, i) => view.setUint32(i * 4, q, true));
  const c = ctx({ 5: table });
  assert.deepEqual(req(c, T.XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE), { id: 7, type: 4, status: OK, data: 128 });
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, [129, 0, 0]).status, INVALID);
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, [8, 0, 0]).status, OK);
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, [5, 4, 2]).status, OK);
  assert.deepEqual([...c.hash.mapping], [0, 0, 3, 2, 1, 0, 0, 0]);
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, [5, 5, 0]).status, INVALID, 'queue 7 of 4');
  assert.deepEqual([...c.hash.mapping], [0, 0, 3, 2, 1, 0, 0, 0], 'nothing committed');
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, [5, 4, 5]).status, INVALID, 'past the table end');
  assert.equal(req(c, T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, [5, 0xffffffff, 1]).status, INVALID, 'no overflow in off + len');
  assert.equal(c.hash.queueFor(10, 4), c.hash.mapping[10 % 8]);
});

test('unknown types and the gref mapping operations are NOT_SUPPORTED', () => {
  const c = ctx();
  for (const t of [0, 8, 9, 10, 11, 0xffff]) assert.equal(req(c, t).status, UNSUPPORTED, `type ${t}`);
});

test('hash inputs per netif.h: IPv4 (8 bytes), IPv4+TCP (12), IPv6 (32), IPv6+TCP (36); fragments hash addresses only', () => {
  const v4 = new Uint8Array(14 + 20 + 20);
  v4[12] = 0x08;
  v4[14] = 0x45;
  v4[14 + 9] = 6;
  v4.set([10, 0, 0, 1, 10, 0, 0, 2], 14 + 12);
  v4.set([0x12, 0x34, 0x00, 0x50], 34);
  const all = XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
  assert.deepEqual(hashInput(v4, all), { typeBit: 1, data: Uint8Array.of(10, 0, 0, 1, 10, 0, 0, 2, 0x12, 0x34, 0, 0x50) });
  assert.deepEqual(hashInput(v4, XEN_NETIF_CTRL_HASH_TYPE_IPV4)?.data.length, 8);
  const frag = v4.slice();
  frag[14 + 6] = 0x20; // MF
  assert.equal(hashInput(frag, all)?.typeBit, 0);
  const v6 = new Uint8Array(14 + 40 + 20);
  v6[12] = 0x86;
  v6[13] = 0xdd;
  v6[14] = 0x60;
  v6[14 + 6] = 6;
  assert.equal(hashInput(v6, XEN_NETIF_CTRL_HASH_TYPE_IPV6 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP)?.data.length, 36);
  assert.equal(hashInput(v6, XEN_NETIF_CTRL_HASH_TYPE_IPV6)?.data.length, 32);
  assert.equal(hashInput(v6, XEN_NETIF_CTRL_HASH_TYPE_IPV4), undefined);
  const h = new HashConfig(40, 128);
  h.algorithm = 1;
  h.flags = all;
  h.key.set([1, 2, 3, 4, 5]);
  assert.deepEqual(h.hash(v4), { typeBit: 1, value: toeplitzHash(h.key, hashInput(v4, all)!.data) });
});
