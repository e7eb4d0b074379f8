/** Small helpers of grant_table, xenbus, sched, protocols, params and event_channel. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GNTST_bad_gntref,
  GTF_permit_access,
  GTF_readonly,
  decodeGrantEntryV1,
  encodeGrantEntryV1,
  gntstMessage,
  gntstName,
} from './grant_table.js';
import { isXenbusState, parseXenbusState, xenbusStateName, XenbusStateConnected } from './io/xenbus.js';
import { isShutdownReason, shutdownReasonName, SHUTDOWN_suspend } from './sched.js';
import { abiFromProtocol } from './io/protocols.js';
import { hvmCallbackType, HVM_PARAM_CALLBACK_TYPE_VECTOR } from './hvm/params.js';
import { evtchnopName } from './event_channel.js';
import { SHARED_INFO, VCPU_INFO } from './xen.js';

test('grant_table: v1 entry codec at an index, status names and messages', () => {
  const table = new Uint8Array(64);
  const v = new DataView(table.buffer);
  const e = { flags: GTF_permit_access | GTF_readonly, domid: 0, frame: 0xabcdef };
  encodeGrantEntryV1(v, 0, 3, e);
  assert.equal(Buffer.from(table.subarray(24, 32)).toString('hex'), '05000000efcdab00');
  assert.deepEqual(decodeGrantEntryV1(v, 0, 3), e);
  assert.equal(gntstName(GNTST_bad_gntref), 'GNTST_bad_gntref');
  assert.equal(gntstMessage(GNTST_bad_gntref), 'invalid grant reference');
  assert.equal(gntstName(-99), 'GNTST_-99');
  assert.equal(gntstMessage(-99), 'unknown grant status -99');
});

test('xenbus: states parse from hostile strings without throwing', () => {
  assert.equal(parseXenbusState('4'), XenbusStateConnected);
  for (const bad of ['', '9', '-1', '4 ', '0x4', '04x', '1e0', '99999999999999999999']) {
    assert.equal(parseXenbusState(bad), undefined, bad);
  }
  assert.equal(xenbusStateName(4), 'Connected');
  assert.equal(xenbusStateName(42), 'Unknown(42)');
  assert.equal(isXenbusState(8), true);
});

test('sched: shutdown reasons', () => {
  assert.equal(shutdownReasonName(SHUTDOWN_suspend), 'suspend');
  assert.equal(isShutdownReason(5), true);
  assert.equal(isShutdownReason(6), false);
  assert.equal(shutdownReasonName(6), 'unknown(6)');
});

test('protocols: the protocol key selects the ring ABI; unknown refuses', () => {
  assert.equal(abiFromProtocol(undefined), 'x86_64');
  assert.equal(abiFromProtocol('x86_32-abi'), 'x86_32');
  assert.equal(abiFromProtocol('x86_64-abi'), 'x86_64');
  assert.equal(abiFromProtocol('arm-abi'), undefined);
  assert.equal(abiFromProtocol('x86_64'), undefined);
});

test('params, event_channel, xen: small helpers and the shared_info geometry', () => {
  assert.equal(hvmCallbackType((2n << 56n) | 0xf3n), HVM_PARAM_CALLBACK_TYPE_VECTOR);
  assert.equal(evtchnopName(6), 'EVTCHNOP_alloc_unbound');
  assert.equal(evtchnopName(99), 'EVTCHNOP_99');
  // 32 vcpu_info slots fill the first 2 KiB; the 64x64-bit pending bitmap follows.
  assert.equal(32 * VCPU_INFO.layouts.x86_64.size, SHARED_INFO.layouts.x86_64.fields.evtchn_pending);
});
