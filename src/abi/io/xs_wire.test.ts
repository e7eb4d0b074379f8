import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  XS_DEBUG,
  XS_CONTROL,
  XS_RESET_WATCHES,
  XS_SET_QUOTA,
  decodeXsdSockmsg,
  encodeXsdSockmsg,
  isXsOp,
  isXsdErrorName,
  maskXenstoreIdx,
  xsOpName,
  xsdErrnum,
  xsd_errors,
} from './xs_wire.js';

test('xs_wire: header golden bytes, little-endian, and decode at an offset', () => {
  const h = { type: 2, req_id: 0x01020304, tx_id: 7, len: 5 };
  const bytes = encodeXsdSockmsg(h);
  assert.equal(Buffer.from(bytes).toString('hex'), '02000000' + '04030201' + '07000000' + '05000000');
  const framed = new Uint8Array(20);
  framed.set(bytes, 4);
  assert.deepEqual(decodeXsdSockmsg(framed, 4), h);
});

test('xs_wire: op numbers keep the hole at 20 and the alias', () => {
  assert.equal(XS_DEBUG, XS_CONTROL);
  assert.equal(XS_RESET_WATCHES, 21);
  assert.equal(isXsOp(20), false);
  assert.equal(isXsOp(0xffff), false);
  assert.equal(isXsOp(27), false);
  assert.equal(isXsOp(XS_SET_QUOTA), true);
  assert.equal(xsOpName(0), 'XS_CONTROL');
  assert.equal(xsOpName(22), 'XS_DIRECTORY_PART');
  assert.equal(xsOpName(20), 'XS_20');
});

test('xs_wire: error table order and lookups', () => {
  assert.equal(xsd_errors[0]?.errstring, 'EINVAL');
  assert.equal(xsd_errors.at(-1)?.errstring, 'EPERM');
  assert.equal(xsdErrnum('ENOENT'), 2);
  assert.equal(xsdErrnum('EWHATEVER'), 22, 'unknown names map to EINVAL like libxenstore');
  assert.equal(isXsdErrorName('E2BIG'), true);
  assert.equal(isXsdErrorName('toString'), false);
});

test('xs_wire: ring index masking survives the u32 wrap', () => {
  assert.equal(maskXenstoreIdx(0xffffffff), 1023);
  assert.equal(maskXenstoreIdx((0xffffffff + 1) >>> 0), 0);
});
