import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatMac, isGroupMac, isLinkLocalMac, keyToMac, macKey, parseMac, randomXenMac, vifName } from './mac.js';
import { errorCode, toDomId } from '../../../base/index.js';

test('MAC text and integer forms round-trip', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (m) => {
      assert.deepEqual(parseMac(formatMac(m)), m);
      assert.deepEqual(keyToMac(macKey(m)), m);
    }),
  );
  assert.equal(formatMac(parseMac('00:16:3E:74:3d:76')), '00:16:3e:74:3d:76');
  assert.equal(macKey(parseMac('ff:ff:ff:ff:ff:ff')), 0xffffffffffff);
  for (const bad of ['', '00:16:3e:74:3d', '00:16:3e:74:3d:76:01', '00:16:3e:74:3d:7g', '0016.3e74.3d76']) {
    assert.throws(() => parseMac(bad), (e) => errorCode(e) === 'EINVAL', bad);
  }
});

test('random MACs are unicast in Xen OUI 00:16:3e', () => {
  for (let i = 0; i < 50; i++) {
    const m = randomXenMac();
    assert.deepEqual([...m.subarray(0, 3)], [0x00, 0x16, 0x3e]);
    assert.equal(isGroupMac(m), false);
  }
  assert.equal(formatMac(randomXenMac(() => 0x1ab)), '00:16:3e:ab:ab:ab');
});

test('group and link-local addresses, vif names', () => {
  assert.equal(isGroupMac(parseMac('01:00:5e:00:00:01')), true);
  assert.equal(isGroupMac(parseMac('02:00:00:00:00:01')), false);
  assert.equal(isLinkLocalMac(parseMac('01:80:c2:00:00:0e')), true);
  assert.equal(isLinkLocalMac(parseMac('01:80:c2:00:00:10')), false);
  assert.equal(vifName(toDomId(3)!, 1), 'vif3.1');
});
