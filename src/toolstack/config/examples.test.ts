/**
 * The example configs shipped in examples/ (the demo's bundled guests) parse, and say what
 * their comments say.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDomainConfig } from './domain-config.js';
import { printDiskSpec, parseDiskSpec } from './disk-spec.js';

// Compiled to dist/toolstack/config/: the repository root is three levels up.
const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));

test('every example config parses without warnings', async () => {
  const files = readdirSync(examples).filter((f) => f.endsWith('.cfg'));
  assert.ok(files.includes('pv-guest.cfg') && files.includes('hvm-guest.cfg'), files.join(' '));
  for (const f of files) {
    const c = await loadDomainConfig(join(examples, f));
    assert.deepEqual(c.warnings, [], f);
    assert.equal(`${c.name}.cfg`, f, 'each example is named after its file');
    for (const d of c.disks) assert.deepEqual(parseDiskSpec(printDiskSpec(d.spec)), d.spec);
  }
});

test('pv-guest.cfg: a PV guest with one disk (xvda) and one vif', async () => {
  const c = await loadDomainConfig(join(examples, 'pv-guest.cfg'));
  assert.equal(c.type, 'pv');
  assert.deepEqual(c.kernel, { kind: 'builtin', program: 'shell' });
  assert.deepEqual([c.memoryMiB, c.vcpus], [128, 1]);
  assert.deepEqual(c.disks.map((d) => [d.spec.target, d.spec.format, d.spec.vdev, d.spec.readwrite, d.vdev.devid]),
    [['pv-guest.img', 'raw', 'xvda', true, 51712]]);
  assert.deepEqual(c.vifs.map((v) => [v.devid, v.bridge, v.type]), [[0, 'xenbr0', 'vif']]);
  assert.match(c.vifs[0]?.mac ?? '', /^00:16:3e:/);
});

test('pv-guest.cfg with the overrides its comment suggests runs fio', async () => {
  const c = await loadDomainConfig(join(examples, 'pv-guest.cfg'),
    { overrides: ['kernel="builtin:fio"', 'extra="rw=randread bs=4k iodepth=32"'] });
  assert.deepEqual(c.kernel, { kind: 'builtin', program: 'fio' });
  assert.equal(c.cmdline, 'rw=randread bs=4k iodepth=32');
});

test('hvm-guest.cfg: an HVM guest on an IDE disk and an emulated RTL8139', async () => {
  const c = await loadDomainConfig(join(examples, 'hvm-guest.cfg'));
  assert.equal(c.type, 'hvm');
  assert.deepEqual(c.disks.map((d) => [d.spec.vdev, d.vdev.devid]), [['hda', 768]]);
  assert.deepEqual(c.vifs.map((v) => [v.type, v.model, v.bridge]), [['ioemu', 'rtl8139', 'xenbr0']]);
  assert.deepEqual([c.serial, c.xenPlatformPci], [['pty'], true]);
});
