import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError, type ConfigWarning } from './config-error.js';
import { parseVifSpec, printVifSpec, parseMac, type VifSpec } from './vif-spec.js';
import { vifRateXenstoreValue } from './vif-rate.js';
import { randomXenMac, resolveVif, defaultVifName } from './vif-defaults.js';

// Rates and their (bytes per interval, interval µs) from Xen's tools/xl/check-xl-vif-parse
// and xl-network-configuration(5).
const rates: [string, string][] = [
  ['16000000b/s', '100000,50000'], ['16000000b/s@50ms', '100000,50000'],
  ['2000000B/s', '100000,50000'], ['2000000B/s@50ms', '100000,50000'],
  ['16Kb/s', '100,50000'], ['16Kb/s@50ms', '100,50000'], ['2KB/s', '100,50000'], ['2KB/s@50ms', '100,50000'],
  ['16Mb/s', '100000,50000'], ['2MB/s@50ms', '100000,50000'],
  ['8Gb/s', '50000000,50000'], ['1GB/s@50ms', '50000000,50000'],
  ['80Mb/s@1s', '10000000,1000000'], ['10MB/s@1s', '10000000,1000000'],
  ['1MB/s@20ms', '20000,20000'], //       the man page's example: 20,000 bytes every 20,000 us
  ['10Mb/s', '62500,50000'], ['250KB/s', '12500,50000'],
  ['1B/s@4294967295us', '4294,4294967295'],
  ['9000000GB/s@1us', '9000000000,1'], //        9e15 B/s: just under 2^53
  ['010B/s@1s', '8,1000000'], //         strtoull base 0: a leading zero is octal
  ['1000B/s@10', '10000,10000000'], //   no unit: seconds
  ['1000B/s@10m', '10,10000'], //         m alone: milliseconds
];
for (const [rate, xs] of rates) {
  test(`rate=${rate} is ${xs}`, () => {
    const v = parseVifSpec(`rate=${rate}`);
    assert.ok(v.rate);
    assert.equal(vifRateXenstoreValue(v.rate), xs);
  });
}

const badRates: [string, string][] = [
  ['foo', 'invalid rate'], ['10MB', 'invalid rate'], ['10MB/m', 'invalid rate'], ['10ZB', 'invalid rate'],
  ['10ZB/s', 'invalid rate'], ['4294967296b/s', 'rate overflow'], ['4294967296Gb/s', 'rate overflow'],
  ['0B/s', 'rate overflow'], ['08B/s', 'rate overflow'], ['10Mb/s@foo', 'invalid replenishment interval'],
  ['10MB/s@10h', 'invalid replenishment interval'], ['1B/s@4294967296us', 'replenishment interval overflow'],
  ['1B/s@4294968ms', 'replenishment interval overflow'], ['1B/s@4295s', 'replenishment interval overflow'],
  ['1B/s@0us', 'replenishment interval overflow'], ['4294967295GB/s@5us', 'rate overflow'],
  ['4296MB/s@4294s', 'rate overflow'], ['@', 'no rate specified'],
  ['10000000GB/s', 'rate overflow'], ['10000000GB/s@1us', 'rate too large for xenpv'],
];
for (const [rate, fragment] of badRates) {
  test(`rate=${rate} is refused: ${fragment}`, () => {
    assert.throws(() => parseVifSpec(`bridge=b,rate=${rate}`, { source: 'g.cfg', line: 2, col: 10 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.startsWith('g.cfg:2:'), err.message);
      assert.ok(err.message.includes(`vif spec: ${fragment}`), err.message);
      return true;
    });
  });
}

test('an interval error points at the interval, a rate error at the rate', () => {
  assert.throws(() => parseVifSpec('rate=10MB/s@10h', { source: 'g.cfg', line: 1, col: 1 }), { message: /^g\.cfg:1:13: vif spec: invalid replenishment interval in `10h'/ });
  assert.throws(() => parseVifSpec('mac=00:16:3e:00:00:01,rate=10ZB/s', { source: 'g.cfg', line: 1, col: 1 }), { message: /^g\.cfg:1:28: vif spec: invalid rate in `10ZB\/s'/ });
});

test('every key, in any spelling xl accepts', () => {
  const warnings: ConfigWarning[] = [];
  const v = parseVifSpec(' mac=00:16:3E:74:3d:76,,model=e1000, bridge=xenbr1,ip=10.0.0.2 10.0.0.3,script=vif-route,'
    + 'netdev=eth0,backend=dd,vifname=web0,type=ioemu,devid=3,mtu=9000,vlan=10,untrusted,accel=x,colo_compare_out=c',
  { source: 'g.cfg', line: 4, col: 8 }, (w) => warnings.push(w));
  assert.deepEqual(v, {
    mac: '00:16:3e:74:3d:76',
    strings: { model: 'e1000', bridge: 'xenbr1', ip: '10.0.0.2 10.0.0.3', script: 'vif-route', gatewaydev: 'eth0', backend: 'dd', vifname: 'web0', vlan: '10' },
    type: 'ioemu', devid: 3, mtu: 9000, trusted: false, colo: { colo_compare_out: 'c' },
  });
  assert.deepEqual(warnings.map((w) => [w.line, w.col, w.message]), [
    [4, 8 + 89, 'the netdev parameter is deprecated, please use gatewaydev instead'],
    [4, 8 + 171, 'the accel parameter for vifs is currently not supported'],
  ]);
});

test('several command-line arguments make one spec', () => {
  assert.deepEqual(parseVifSpec(['mac=00:16:3e:00:00:01', 'bridge=xenbr1,mtu=9000']),
    { mac: '00:16:3e:00:00:01', strings: { bridge: 'xenbr1' }, mtu: 9000, colo: {} });
});

test("'' is one NIC with every default; a later key wins", () => {
  assert.deepEqual(parseVifSpec(''), { strings: {}, colo: {} });
  assert.deepEqual(parseVifSpec('bridge=a,bridge=b,trusted'), { strings: { bridge: 'b' }, trusted: true, colo: {} });
});

const bad: [string, string][] = [
  ['foo', "1:1: vif spec: unrecognized argument `foo'"],
  ['bridge=x,colour=red', "1:10: vif spec: unrecognized argument `colour=red'"],
  ['mac=00:16:3e:00:00', "1:1: vif spec: invalid parameter `mac'"],
  ['mac=00:16:3e:00:00:100', "1:1: vif spec: invalid parameter `mac'"],
  ['mac=00:16-3e:00:00:01', "1:1: vif spec: invalid parameter `mac'"],
  ['type=pv', "1:1: vif spec: invalid parameter `type': `pv' (expecting vif or ioemu)"],
  ['mtu=12', "1:1: vif spec: invalid parameter `mtu': 12 is out of range 68..65535"],
  ['mtu=1500x', "1:1: vif spec: invalid parameter `mtu': `1500x' is not a decimal number"],
  ['devid=-1', "1:1: vif spec: invalid parameter `devid': `-1' is not a decimal number"],
  [' trusted ', "1:2: vif spec: unrecognized argument `trusted '"],
];
for (const [spec, message] of bad) {
  test(`vif error: ${JSON.stringify(spec)}`, () => {
    assert.throws(() => parseVifSpec(spec, { source: 'c', line: 1, col: 1 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.startsWith(`c:${message}`), err.message);
      return true;
    });
  });
}

test('MACs: groups of one or two hex digits, : or -, canonical lower case', () => {
  assert.equal(parseMac('0:16:3e:a:B:c'), '00:16:3e:0a:0b:0c');
  assert.equal(parseMac('00-16-3E-74-3D-76'), '00:16:3e:74:3d:76');
  assert.equal(parseMac('00163e743d76'), undefined);
  assert.equal(parseMac('0x0:16:3e:1:2:3'), undefined);
});

test("random MACs are in Xen's OUI with the fourth byte's top bit clear, as libxl makes them", () => {
  assert.equal(randomXenMac(() => Uint8Array.of(0xff, 0xee, 0xdd)), '00:16:3e:7f:ee:dd');
  fc.assert(fc.property(fc.uint8Array({ minLength: 3, maxLength: 3 }), (bytes) => {
    const mac = randomXenMac(() => bytes);
    assert.match(mac, /^00:16:3e:[0-7][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}$/);
    assert.equal(parseMac(mac), mac);
  }));
  assert.notEqual(randomXenMac(), randomXenMac()); // 2^23 values: a clash here is a broken source
});

test('resolving defaults: xenbr0, vif-bridge, rtl8139, ioemu for HVM, index as devid', () => {
  const fixed = (): Uint8Array => Uint8Array.of(1, 2, 3);
  const pv = resolveVif(parseVifSpec(''), 2, 'pv', fixed);
  assert.deepEqual({ ...pv, spec: undefined }, {
    devid: 2, mac: '00:16:3e:01:02:03', bridge: 'xenbr0', script: 'vif-bridge', model: 'rtl8139', type: 'vif', mtu: 1500, trusted: true, spec: undefined,
  });
  const hvm = resolveVif(parseVifSpec('mac=00:16:3e:00:00:09,devid=7,bridge=br1'), 0, 'hvm', fixed);
  assert.deepEqual([hvm.devid, hvm.mac, hvm.bridge, hvm.type], [7, '00:16:3e:00:00:09', 'br1', 'ioemu']);
  assert.equal(defaultVifName(3, 0), 'vif3.0');
  assert.equal(defaultVifName(3, 1, true), 'vif3.1-emu');
});

const value = fc.stringMatching(/^[a-zA-Z0-9 ./:=_@-]{0,12}$/);
const vifArb = fc.record({
  mac: fc.option(fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')), { nil: undefined }),
  bridge: fc.option(value, { nil: undefined }),
  ip: fc.option(value, { nil: undefined }),
  model: fc.option(fc.constantFrom('rtl8139', 'e1000', 'ne2k_pci'), { nil: undefined }),
  type: fc.option(fc.constantFrom('vif', 'ioemu'), { nil: undefined }),
  rate: fc.option(fc.tuple(fc.integer({ min: 1, max: 4000 }), fc.constantFrom('B', 'b', 'KB', 'Kb', 'MB', 'Mb', 'GB', 'Gb'), fc.constantFrom('', '@20ms', '@1s', '@500us')).map(([n, u, i]) => `${n}${u}/s${i}`), { nil: undefined }),
  mtu: fc.option(fc.integer({ min: 68, max: 65535 }), { nil: undefined }),
  devid: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
  trusted: fc.option(fc.boolean(), { nil: undefined }),
});

test('property: a spec built from random keys parses, prints and parses back the same', () => {
  fc.assert(fc.property(vifArb, (r) => {
    const parts = [
      r.mac && `mac=${r.mac}`, r.bridge !== undefined && `bridge=${r.bridge}`, r.ip !== undefined && `ip=${r.ip}`,
      r.model && `model=${r.model}`, r.type && `type=${r.type}`, r.rate && `rate=${r.rate}`,
      r.mtu !== undefined && `mtu=${r.mtu}`, r.devid !== undefined && `devid=${r.devid}`,
      r.trusted !== undefined && (r.trusted ? 'trusted' : 'untrusted'),
    ].filter((p): p is string => typeof p === 'string');
    const v: VifSpec = parseVifSpec(parts.join(','));
    assert.equal(v.mac, r.mac);
    assert.equal(v.strings.bridge, r.bridge);
    assert.equal(v.mtu, r.mtu);
    assert.equal(v.rate?.text, r.rate);
    assert.deepEqual(parseVifSpec(printVifSpec(v)), v);
  }), { numRuns: 300 });
});
