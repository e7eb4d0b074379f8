import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError } from './config-error.js';
import {
  decodeDevid, devidToVdev, diskLetters, encodeVdev, formatVdev, parseVdev, vdevToDevid,
  XVD_MAX_DISK, XVD_MAX_PARTITION, type VdevName,
} from './vdev.js';

// Numbers from xen-vbd-interface(7)'s formulas, worked by hand.
const names: [string, number, string | undefined][] = [
  ['xvda', 51712, 'xvda'], //           202 << 8
  ['xvdb', 51728, 'xvdb'], //           202 << 8 | 1 << 4
  ['xvda1', 51713, 'xvda1'],
  ['xvdp15', 51967, 'xvdp15'], //       disk 15, partition 15: the last of the short form
  ['xvdq', 268439552, 'xvdq'], //       1 << 28 | 16 << 8
  ['xvda16', 268435472, 'xvda16'], //   partition 16 needs the extended form
  ['xvdz', 268441856, 'xvdz'], //       disk 25
  ['xvdaa', 268442112, 'xvdaa'], //     disk 26
  ['xvdtq37', 268572709, 'xvdtq37'], // the man page's d536p37
  ['d536p37', 268572709, 'xvdtq37'],
  ['d1p2', 51730, 'xvdb2'],
  ['d0p0', 51712, 'xvda'],
  ['d0', 51712, 'xvda'],
  ['d0x10p0', 268439552, 'xvdq'], //    %i reads hex
  ['hda', 768, 'hda'], //                3 << 8
  ['hdb', 832, 'hdb'], //                3 << 8 | 1 << 6
  ['hdc', 5632, 'hdc'], //               22 << 8
  ['hdd63', 5759, 'hdd63'],
  ['sda', 2048, 'sda'], //               8 << 8
  ['sdb3', 2067, 'sdb3'],
  ['sdp15', 2303, 'sdp15'],
  ['51712', 51712, 'xvda'], //          a bare number is the devid
  ['0xca00', 51712, 'xvda'],
  ['0145000', 51712, 'xvda'], //        octal
  ['1234', 1234, undefined], //         written through, names no disk
];
for (const [name, devid, canonical] of names) {
  test(`vdev ${name} = ${devid}`, () => {
    assert.equal(vdevToDevid(name), devid);
    assert.equal(devidToVdev(devid), canonical);
  });
}

const bad: [string, string][] = [
  ['xvd', 'invalid vdev'],
  ['xvda0', 'partition numbers have no leading zero'],
  ['xvda01', 'partition numbers have no leading zero'],
  ['xvda256', 'xvd partition 256 is out of range 0..255'],
  ['hde', 'hd disk hde is out of range (the last is hdd)'],
  ['hda64', 'hd partition 64 is out of range 0..63'],
  ['sdq', 'sd disk sdq is out of range (the last is sdp)'],
  ['sda16', 'sd partition 16 is out of range 0..15'],
  [`xvd${diskLetters(XVD_MAX_DISK + 1)}`, 'is out of range (the last is xvdbgqcv)'],
  ['d1048576p0', 'xvd disk number 1048576 is out of range 0..1048575'],
  ['d0p256', 'xvd partition 256 is out of range 0..255'],
  ['2147483648', 'larger than 2147483647'],
  ['vda', 'invalid vdev'],
  ['XVDA', 'invalid vdev'],
  ['', 'invalid vdev'],
];
for (const [name, fragment] of bad) {
  test(`vdev ${JSON.stringify(name)} is refused`, () => {
    assert.throws(() => parseVdev(name, { source: 'g.cfg', line: 3, col: 20 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^g\.cfg:3:2\d: /);
      assert.ok(err.message.includes(fragment), err.message);
      return true;
    });
  });
}

test('diskLetters is bijective base 26', () => {
  assert.deepEqual([0, 25, 26, 27, 51, 52, 701, 702].map(diskLetters), ['a', 'z', 'aa', 'ab', 'az', 'ba', 'zz', 'aaa']);
  assert.equal(diskLetters(XVD_MAX_DISK), 'bgqcv'); // 2^20-1 = ((((1*26+6)*26+16)*26+2)*26+21) + the 26+26^2+26^3+26^4 shorter names
});

test('numbers outside every form decode to nothing', () => {
  for (const devid of [0, 1, 255, 0x10000, 2 << 28, -1, 1.5, 0x80000000]) assert.equal(decodeDevid(devid), undefined, String(devid));
});

const vdevName: fc.Arbitrary<VdevName> = fc.oneof(
  fc.record({ bus: fc.constant('xvd' as const), disk: fc.integer({ min: 0, max: XVD_MAX_DISK }), partition: fc.integer({ min: 0, max: XVD_MAX_PARTITION }) }),
  fc.record({ bus: fc.constant('hd' as const), disk: fc.integer({ min: 0, max: 3 }), partition: fc.integer({ min: 0, max: 63 }) }),
  fc.record({ bus: fc.constant('sd' as const), disk: fc.integer({ min: 0, max: 15 }), partition: fc.integer({ min: 0, max: 15 }) }),
);

test('property: encode then decode gives the same disk, and the name parses to it', () => {
  fc.assert(fc.property(vdevName, (raw) => {
    const v = { ...raw }; // fast-check records have a null prototype
    const devid = encodeVdev(v);
    assert.deepEqual(decodeDevid(devid), v);
    const name = formatVdev(v);
    assert.deepEqual(parseVdev(name), { devid, name: v });
    if (v.bus === 'xvd') assert.equal(vdevToDevid(`d${v.disk}p${v.partition}`), devid);
  }), { numRuns: 500 });
});

test('property: distinct disks have distinct devids', () => {
  fc.assert(fc.property(vdevName, vdevName, (a, b) => {
    fc.pre(a.bus !== b.bus || a.disk !== b.disk || a.partition !== b.partition);
    assert.notEqual(encodeVdev(a), encodeVdev(b));
  }), { numRuns: 500 });
});
