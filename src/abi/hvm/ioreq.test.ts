import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IOREQ_BITS,
  IOREQ_READ,
  IOREQ_TYPE_PIO,
  IOREQ_WRITE,
  STATE_IOREQ_READY,
  decodeBufIoreq,
  decodeIoreq,
  encodeBufIoreq,
  encodeIoreq,
  type Ioreq,
} from './ioreq.js';

test('ioreq: an `in al, 0x10` round-trips, bitfields in byte 30', () => {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  const r: Ioreq = {
    addr: 0x10n, data: 0n, count: 1, size: 1, vp_eport: 5, state: STATE_IOREQ_READY, data_is_ptr: false,
    dir: IOREQ_READ, df: false, type: IOREQ_TYPE_PIO,
  };
  encodeIoreq(v, 0, r);
  assert.equal(b[IOREQ_BITS.offset], STATE_IOREQ_READY | IOREQ_BITS.dir);
  assert.equal(Buffer.from(b).toString('hex'), '1000000000000000' + '0000000000000000' + '01000000' + '01000000' + '05000000' + '0000' + '21' + '00');
  assert.deepEqual(decodeIoreq(v, 0), r);
});

test('ioreq: a rep outs with data_is_ptr and df decodes each bit', () => {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  b[IOREQ_BITS.offset] = 0x52; // state 2, data_is_ptr, df; dir = write
  const r = decodeIoreq(v, 0);
  assert.deepEqual([r.state, r.data_is_ptr, r.dir, r.df], [2, true, IOREQ_WRITE, true]);
});

test('buf_ioreq: 20-bit address and 2-bit size code', () => {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  const r = { type: 1, dir: 0, size: 8, addr: 0xfffff, data: 0xcafef00d } as const;
  encodeBufIoreq(v, 0, r);
  assert.equal(Buffer.from(b).toString('hex'), '01fcffff0df0feca');
  assert.deepEqual(decodeBufIoreq(v, 0), r);
});
