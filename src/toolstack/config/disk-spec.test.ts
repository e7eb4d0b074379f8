import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError } from './config-error.js';
import { parseDiskSpec, printDiskSpec, type DiskSpec } from './disk-spec.js';

const base = { readwrite: true, devtype: 'disk', removable: false, strings: {}, directIoSafe: false } as const;
const cdrom = { readwrite: false, devtype: 'cdrom', removable: true, strings: {}, directIoSafe: false } as const;

// Cases and results from xl-disk-configuration(5) and Xen's tools/xl/check-xl-disk-parse.
// An array is several arguments to one block-attach (each scanned in turn).
const cases: [string, (string | string[])[], DiskSpec][] = [
  ['a plain volume', [
    '/dev/vg/guest-volume,,hda',
    '/dev/vg/guest-volume,raw,hda,rw',
    'format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume',
    ['format=raw', 'vdev=hda', 'access=rw', 'target=/dev/vg/guest-volume'],
    'raw:/dev/vg/guest-volume,hda,w',
  ], { ...base, target: '/dev/vg/guest-volume', vdev: 'hda', format: 'raw' }],
  ['a cdrom image', [
    '/root/image.iso,,hdc,cdrom',
    '/root/image.iso,,hdc,,cdrom',
    '/root/image.iso,raw,hdc,devtype=cdrom',
    'format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso',
    ['format=raw', 'vdev=hdc', 'access=ro', 'devtype=cdrom', 'target=/root/image.iso'],
    'raw:/root/image.iso,hdc:cdrom,ro',
  ], { ...cdrom, target: '/root/image.iso', vdev: 'hdc', format: 'raw' }],
  ['backendtype', ['backendtype=phy,vdev=xvdb,access=w,target=/dev/vg/guest-volume'],
    { ...base, target: '/dev/vg/guest-volume', vdev: 'xvdb', format: 'raw', backendtype: 'phy' }],
  ['an empty cdrom with an empty target', [
    'devtype=cdrom,,,hdc', ',,hdc:cdrom,r', ',hdc:cdrom,r', 'vdev=hdc,access=r,devtype=cdrom,target=', ',empty,hdc:cdrom,r',
  ], { ...cdrom, target: '', vdev: 'hdc', format: 'empty' }],
  ['an empty cdrom without a target', ['vdev=hdc,access=r,devtype=cdrom,format=empty', 'vdev=hdc,access=r,devtype=cdrom'],
    { ...cdrom, vdev: 'hdc', format: 'empty' }],
  ['an iSCSI target with colons', [
    'iscsi:iqn.2001-05.com.equallogic:0-8a0906-23fe93404-c82797962054a96d-examplehost,xvda,w',
    'vdev=xvda,access=w,script=block-iscsi,target=iqn.2001-05.com.equallogic:0-8a0906-23fe93404-c82797962054a96d-examplehost',
  ], { ...base, target: 'iqn.2001-05.com.equallogic:0-8a0906-23fe93404-c82797962054a96d-examplehost', vdev: 'xvda', format: 'raw', strings: { script: 'block-iscsi' } }],
  ['drbd', ['drbd:app01,hda,w'], { ...base, target: 'app01', vdev: 'hda', format: 'raw', strings: { script: 'block-drbd' } }],
  ['discard', [['discard', 'vdev=hda', 'target=/some/disk/image.raw']],
    { ...base, target: '/some/disk/image.raw', vdev: 'hda', format: 'raw', discard: true }],
  ['cdrom, no-discard', [['cdrom', 'no-discard', 'vdev=hda', 'target=/some/disk/image.iso']],
    { ...cdrom, target: '/some/disk/image.iso', vdev: 'hda', format: 'raw', discard: false }],
  ['trusted', [['trusted', 'vdev=hda', 'target=/some/disk/image.raw']],
    { ...base, target: '/some/disk/image.raw', vdev: 'hda', format: 'raw', trusted: true }],
  ['untrusted', ['untrusted,vdev=hda,target=/some/disk/image.raw'],
    { ...base, target: '/some/disk/image.raw', vdev: 'hda', format: 'raw', trusted: false }],
  ['target= eats commas, and one trailing comma is stripped', ['vdev=xvda,target=a,b,c,'],
    { ...base, target: 'a,b,c', vdev: 'xvda', format: 'raw' }],
  ['the image xenpv examples use', ['disk.img,raw,xvda,rw', 'tap:aio:disk.img,xvda,w', ' format=raw, vdev=xvda,target=disk.img'],
    { ...base, target: 'disk.img', vdev: 'xvda', format: 'raw' }],
  ['every other keyword', ['qcow2:/i.q,xvdc,r,direct-io-safe,specification=virtio,backend=dd,colo,colo-port=9,grant_usage=0,backendtype=qdisk'],
    { ...base, readwrite: false, target: '/i.q', vdev: 'xvdc', format: 'qcow2', directIoSafe: true, specification: 'virtio', strings: { backend: 'dd' }, colo: true, coloPort: 9, grantUsage: false, backendtype: 'qdisk' }],
  ['an empty format means raw; a bare number as vdev', ['img,,51712'], { ...base, target: 'img', vdev: '51712', format: 'raw' }],
];
for (const [what, specs, want] of cases) {
  for (const spec of specs) {
    test(`disk ${what}: ${JSON.stringify(spec)}`, () => {
      assert.deepEqual(parseDiskSpec(spec), want);
    });
  }
}

const errors: [string, string][] = [
  ['foo', "disk spec: no vdev specified in `foo'"],
  ['vdev=xvda', "disk spec: no target specified (and device not removable) in `vdev=xvda'"],
  ['img,raw,xvda,rw,extra', "5:17: disk spec: too many positional parameters near `extra'"],
  ['img,vmdk,xvda', "5:5: disk spec: unknown value for format near `vmdk'"],
  ['img,raw,xvda,rx', "5:14: disk spec: unknown value for access near `rx'"],
  ['vdev=xvda,devtype=floppy,target=x', "5:11: disk spec: unknown value for type near `devtype=floppy,'"],
  ['vdev=xvda,size=10,target=x', "5:11: disk spec: unknown parameter near `size=1'"],
  ['xyz:/img,xvda', "5:1: disk spec: unknown deprecated disk prefix near `xyz:'"],
  // A prefix needs a non-alphanumeric after the colon, so this is a target and a bad format.
  ['xyz:img,xvda', "5:9: disk spec: unknown value for format near `xvda'"],
  // Whitespace is skipped only before a parameter: this format is "raw ".
  [' format=raw , vdev=xvda,target=x', "5:2: disk spec: unknown value for format near `raw '"],
  ['vdev=xvda,vdev=xvdb,target=x', "5:11: disk spec: vdev respecified near `xvdb'"],
  ['img,raw,xvda,format=qcow2', "5:14: disk spec: format respecified near `qcow2'"],
  ['img,raw,xvda:floppy', "5:9: disk spec: unknown deprecated type near `floppy'"],
  ['/a=b,xvda', "5:3: disk spec: bad disk syntax near `=b,xvda'"],
  ['backendtype=lvm,vdev=xvda,target=x', "5:1: disk spec: unknown value for backendtype near `lvm'"],
  ['vdev=hdz,target=x', "5:6: vdev `hdz': hd disk hdz is out of range (the last is hdd)"],
  ['img,raw,xvda0', "5:13: vdev `xvda0': partition numbers have no leading zero"],
  ['vdev=xvda,colo-port=x,target=y', "5:11: disk spec: unknown value for colo_port near `x'"],
];
for (const [spec, message] of errors) {
  test(`disk error: ${spec}`, () => {
    assert.throws(() => parseDiskSpec(spec, { source: 'g.cfg', line: 5, col: 1 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'EXLCFG');
      assert.ok(err.message.startsWith('g.cfg:5:'), err.message);
      assert.ok(err.message.includes(message), `${err.message}\n  wanted: ${message}`);
      return true;
    });
  });
}

test('an error column counts from where the spec starts in the file', () => {
  assert.throws(() => parseDiskSpec('img,vmdk,xvda', { source: 'g.cfg', line: 7, col: 11 }), { message: /^g\.cfg:7:15: / });
});

// Property: specs made of random parameters, positional or keyword, in random order, parse
// to a DiskSpec whose printed form parses back to the same DiskSpec.
const word = fc.stringMatching(/^[a-z0-9/._-]{1,12}$/);
const keyword = fc.oneof(
  fc.constantFrom('raw', 'qcow', 'qcow2', 'vhd', 'qed').map((f) => `format=${f}`),
  fc.constantFrom('r', 'ro', 'rw', 'w').map((a) => `access=${a}`),
  fc.constantFrom('cdrom', 'devtype=cdrom', 'devtype=disk', 'discard', 'no-discard', 'trusted', 'untrusted',
    'direct-io-safe', 'colo', 'no-colo', 'grant_usage=1', 'grant_usage=0'),
  fc.constantFrom('phy', 'tap', 'qdisk', 'standalone').map((b) => `backendtype=${b}`),
  fc.constantFrom('xen', 'virtio').map((s) => `specification=${s}`),
  fc.tuple(fc.constantFrom('backend', 'script', 'colo-host', 'colo-export', 'active-disk', 'hidden-disk'), word).map(([k, v]) => `${k}=${v}`),
  fc.integer({ min: 1, max: 65535 }).map((p) => `colo-port=${p}`),
);
const specArb = fc.record({
  target: fc.string({ unit: 'grapheme-ascii', maxLength: 20 }),
  vdev: fc.constantFrom('xvda', 'xvdb', 'hda', 'sdb3', 'd3p1', '51712'),
  keywords: fc.uniqueArray(keyword, { maxLength: 5, selector: (k) => k.split('=')[0] }),
});

test('property: parse, print, parse gives the same DiskSpec', () => {
  fc.assert(fc.property(specArb, ({ target, vdev, keywords }) => {
    const spec = [`vdev=${vdev}`, ...keywords, `target=${target}`].join(',');
    let parsed: DiskSpec;
    try {
      parsed = parseDiskSpec(spec);
    } catch (err) {
      // Only combinations xl refuses too: two spellings of one enum that disagree.
      assert.ok(err instanceof ConfigError && /respecified/.test(err.message), String(err));
      return;
    }
    assert.equal(parsed.vdev, vdev);
    assert.deepEqual(parseDiskSpec(printDiskSpec(parsed)), parsed);
  }), { numRuns: 400 });
});

test('the printer refuses what the syntax cannot carry', () => {
  const d = parseDiskSpec('img,raw,xvda');
  assert.throws(() => printDiskSpec({ ...d, vdev: 'a,b' }), { code: 'EXLCFG' });
  assert.throws(() => printDiskSpec({ ...d, target: 'a\nb' }), { code: 'EXLCFG' });
  assert.equal(printDiskSpec(d), 'format=raw, vdev=xvda, access=rw, target=img');
});
