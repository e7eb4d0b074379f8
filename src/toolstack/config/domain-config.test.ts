import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, formatWarning } from './config-error.js';
import { loadDomainConfig, parseDomainConfig, type DomainConfig, type DomainConfigOptions } from './domain-config.js';

const opts: DomainConfigOptions = {
  source: 'g.cfg',
  random: () => Uint8Array.of(0xab, 0xcd, 0xef),
  makeUuid: () => '00000000-0000-4000-8000-000000000001',
  hostCpus: 4,
};
const parse = (text: string, overrides: string[] = []): DomainConfig => parseDomainConfig(text, { ...opts, overrides });

test("defaults are xl's and libxl's", () => {
  const c = parse('name = "a"\n');
  assert.deepEqual({ ...c, settings: undefined }, {
    name: 'a', type: 'pv', uuid: '00000000-0000-4000-8000-000000000001',
    memoryMiB: 32, maxmemMiB: 32, vcpus: 1, maxvcpus: 1, cpus: [], disks: [], vifs: [],
    onPoweroff: 'destroy', onReboot: 'restart', onWatchdog: 'destroy', onCrash: 'destroy', onSoftReset: 'soft-reset',
    xenPlatformPci: true, serial: [], maxGrantFrames: 64, maxEventChannels: 1023,
    unknownKeys: [], warnings: [], settings: undefined,
  });
});

test('the Debian xlexample.pvlinux file', () => {
  const c = parse([
    'name = "example.pvlinux"', 'kernel = "/boot/vmlinuz"', 'extra = "root=/dev/xvda1"', 'memory = 128',
    'vcpus = 2', "vif = [ '' ]", "disk = [ '/dev/vg/guest-volume,raw,xvda,rw' ]", '',
  ].join('\n'));
  assert.equal(c.name, 'example.pvlinux');
  assert.deepEqual(c.kernel, { kind: 'path', path: '/boot/vmlinuz' });
  assert.equal(c.cmdline, 'root=/dev/xvda1');
  assert.deepEqual([c.memoryMiB, c.vcpus, c.maxvcpus], [128, 2, 2]);
  assert.equal(c.disks.length, 1);
  assert.equal(c.disks[0]?.vdev.devid, 51712);
  assert.equal(c.disks[0]?.spec.target, '/dev/vg/guest-volume');
  assert.deepEqual(c.vifs.map((v) => [v.devid, v.mac, v.bridge, v.type]), [[0, '00:16:3e:2b:cd:ef', 'xenbr0', 'vif']]);
});

test('memory and maxmem default to each other; numbers may be quoted, hex or octal', () => {
  const sizes = (t: string): number[] => { const c = parse(`name="a"\n${t}`); return [c.memoryMiB, c.maxmemMiB]; };
  assert.deepEqual(sizes('memory = 512'), [512, 512]);
  assert.deepEqual(sizes('maxmem = 512'), [512, 512]);
  assert.deepEqual(sizes('memory = 256; maxmem = 0x400'), [256, 1024]);
  assert.deepEqual(sizes('memory = "0200"'), [128, 128]);
});

test('vcpus and maxvcpus default to each other', () => {
  const cpus = (t: string): number[] => { const c = parse(`name="a"\n${t}`); return [c.vcpus, c.maxvcpus]; };
  assert.deepEqual(cpus('vcpus = 2'), [2, 2]);
  assert.deepEqual(cpus('maxvcpus = 4'), [4, 4]);
  assert.deepEqual(cpus('vcpus = 2\nmaxvcpus = 4'), [2, 4]);
});

test('cpus: one CPU list for every vCPU, or one per vCPU; errors point at the list', () => {
  assert.deepEqual(parse('name="a"\nvcpus = 2\ncpus = "1-3,^2"').cpus, [[1, 3], [1, 3]]);
  assert.deepEqual(parse('name="a"\nvcpus = 3\ncpus = ["2", "0-1"]').cpus, [[2], [0, 1]], 'vCPU 2 unpinned');
  const fails = (t: string): string => {
    try {
      parse(`name="a"\n${t}`);
    } catch (err) {
      return (err as Error).message;
    }
    return 'accepted';
  };
  assert.match(fails('cpus = "4"'), /g\.cfg:2:8: cpus: CPU 4 does not exist \(this host has CPUs 0-3\)/);
  assert.match(fails('vcpus = 2; cpus = ["0", "nodes:1"]'), /g\.cfg:2:25: cpus: `nodes:1': NUMA node lists are not supported/);
  assert.match(fails('cpus = ["0", "1"]'), /cpus names 2 vCPUs, but the domain has 1/);
});

test("type: xl's prefix matching, the deprecated builder, and HVM knobs", () => {
  const type = (t: string): string => parse(`name="a"\n${t}`).type;
  assert.equal(type('type = "hvm"'), 'hvm');
  assert.equal(type('type = "pvh"'), 'pvh');
  assert.equal(type('type = "p"'), 'pv'); // strncmp(buf, "pv", strlen(buf))
  assert.equal(type('builder = "hvm"'), 'hvm');
  assert.equal(type('builder = "generic"'), 'pv');
  const c = parse('name="a"\nbuilder="hvm"\nserial=[ "pty", "file:/tmp/s" ]\nxen_platform_pci = 0');
  assert.deepEqual([c.serial, c.xenPlatformPci], [['pty', 'file:/tmp/s'], false]);
  assert.deepEqual(c.warnings.map(formatWarning), ['g.cfg:2:1: warning: `builder\' is deprecated since Xen 4.10; use type = "hvm" or "pv"']);
});

test('kernel: built-in programs and paths; cmdline from cmdline, root and extra', () => {
  const c = parse('name="a"\nkernel="builtin:fio"\nextra="rw=randread bs=4k iodepth=32"');
  assert.deepEqual(c.kernel, { kind: 'builtin', program: 'fio' });
  assert.equal(c.cmdline, 'rw=randread bs=4k iodepth=32');
  assert.equal(parse('name="a"\nroot="/dev/xvda1"\nextra="ro"').cmdline, 'root=/dev/xvda1 ro');
  assert.equal(parse('name="a"\nroot="/dev/xvda1"').cmdline, 'root=/dev/xvda1');
  const both = parse('name="a"\ncmdline="x"\nextra="y"');
  assert.equal(both.cmdline, 'x');
  assert.deepEqual(both.warnings.map((w) => w.message), ['ignoring root= and extra= in favour of cmdline=']);
});

test('on_* actions, uuid, grant frames and event channels', () => {
  const c = parse('name="a"\non_reboot="destroy"\non_crash="coredump-restart"\non_poweroff="preserve"\n'
    + 'uuid="6C3D1B51-7A5E-4F2B-9A0D-3C2B1A000001"\nmax_grant_frames=32\nmax_event_channels=4095');
  assert.deepEqual([c.onReboot, c.onCrash, c.onPoweroff], ['destroy', 'coredump-restart', 'preserve']);
  assert.equal(c.uuid, '6c3d1b51-7a5e-4f2b-9a0d-3c2b1a000001');
  assert.deepEqual([c.maxGrantFrames, c.maxEventChannels], [32, 4095]);
});

test('unknown keys are kept and warned about; known-but-unsupported ones say so', () => {
  const c = parse('name="a"\nvfb = [ "vnc=1" ]\nmemroy = 512\n');
  assert.deepEqual(c.unknownKeys, ['vfb', 'memroy']);
  assert.deepEqual(c.warnings.map(formatWarning), [
    "g.cfg:2:1: warning: `vfb' is not supported by xenpv; ignored",
    "g.cfg:3:1: warning: unknown setting `memroy'; ignored",
  ]);
  assert.equal(c.settings.settings.get('memroy')?.value.kind, 'number');
});

test('command-line overrides win over the file', () => {
  const c = parse('name="a"\nmemory=128\n', ['memory=512', 'name="b"', 'vif=[""]']);
  assert.deepEqual([c.name, c.memoryMiB, c.vifs.length], ['b', 512, 1]);
});

const errors: [string, string][] = [
  ['memory = 128\n', 'g.cfg:1:1: Domain name must be specified (name = "...")'],
  ['name = ""', 'g.cfg:1:8: the domain name must not be empty'],
  ['name = [ "a" ]', "g.cfg:1:8: `name' must be a single value, not a list"],
  ['name="a"\nmemory = "lots"', "g.cfg:2:10: `memory' is not a valid number: `lots'"],
  ['name="a"\nmemory = 0', "g.cfg:2:10: `memory' = 0 is out of range: it must be between 1 and 1048576"],
  ['name="a"\nmemory = [ 1 ]', "g.cfg:2:10: `memory' must be a number, not a list"],
  ['name="a"\nmemory = 5\nmemory += 12', "g.cfg:3:11: can't use += with numbers for parameter `memory'"],
  ['name="a"\nmemory = 512\nmaxmem = 256', 'g.cfg:3:10: maxmem (256 MiB) is less than memory (512 MiB)'],
  ['name="a"\nvcpus = 4\nmaxvcpus = 2', 'g.cfg:3:12: maxvcpus (2) < vcpus (4)'],
  ['name="a"\nvcpus = 129', "g.cfg:2:9: `vcpus' = 129 is out of range: it must be between 1 and 128"],
  ['name="a"\ntype = "xen"', "g.cfg:2:8: invalid domain type `xen' (expecting pv, pvh or hvm)"],
  ['name="a"\ntype="pv"\nbuilder="hvm"', 'g.cfg:3:9: contradicting "builder" and "type" options specified'],
  ['name="a"\non_crash = "reboot"', 'g.cfg:2:12: unknown on_crash action "reboot" (expecting one of destroy, restart, rename-restart, preserve, coredump-destroy, coredump-restart, soft-reset)'],
  ['name="a"\nuuid = "1234"', "g.cfg:2:8: failed to parse UUID: `1234' (expecting xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"],
  ['name="a"\nkernel = "builtin:Fio!"', "g.cfg:2:10: invalid built-in program name `Fio!' (lower-case letters, digits, - and _)"],
  ['name="a"\ndisk = "img,raw,xvda"', "g.cfg:2:8: `disk' must be a list, like disk = [ '...' ]"],
  ['name="a"\ndisk = [\n  "img,raw,xvda,rw",\n  "img2,vmdk,xvdb" ]', "g.cfg:4:9: disk spec: unknown value for format near `vmdk' in `img2,vmdk,xvdb'"],
  ['name="a"\ndisk = [ "img,raw,xvda", "d0p0,raw,51712" ]', 'g.cfg:2:26: vdev 51712 (devid 51712) is already used by xvda'],
  ['name="a"\ndisk = [ "img,raw,xvda", "img2,raw,xvd" ]', "g.cfg:2:36: invalid vdev `xvd'"],
  ['name="a"\nvif = [ "bridge=a", "mac=00:16:3e:zz:00:01" ]', "g.cfg:2:22: vif spec: invalid parameter `mac'"],
  ['name="a"\nvif = [ "devid=1", "" ]', 'g.cfg:2:20: vif devid 1 is used twice'],
  ['name="a"\nvif = [ "rate=10ZB/s" ]', "g.cfg:2:15: vif spec: invalid rate in `10ZB/s'"],
];
for (const [text, message] of errors) {
  test(`config error: ${JSON.stringify(text).slice(0, 70)}`, () => {
    assert.throws(() => parse(text), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.code, 'EXLCFG');
      assert.ok(err.message.startsWith(message), `${err.message}\n  wanted: ${message}`);
      return true;
    });
  });
}

test('a missing file is an ENOCONFIG error naming it', async () => {
  await assert.rejects(loadDomainConfig('/nonexistent/guest.cfg'), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'ENOCONFIG');
    assert.match((err as Error).message, /^\/nonexistent\/guest\.cfg: cannot read configuration file: /);
    return true;
  });
});
