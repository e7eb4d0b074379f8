import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitWords } from './parse.js';
import { devicesTable, hexdump, humanSize, ipAddrLines, uptimeLine, vdevName } from './format.js';
import { fakeWorld, memDisk } from './test-support.js';

test('hexdump is hexdump -C (golden output of util-linux hexdump 2.38)', () => {
  // printf 'hello world\n' | hexdump -C
  assert.deepEqual(hexdump(new TextEncoder().encode('hello world\n')), [
    '00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 0a              |hello world.|',
    '0000000c',
  ]);
  // head -c 40 /dev/zero | hexdump -C
  assert.deepEqual(hexdump(new Uint8Array(40)), [
    '00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|',
    '*',
    '00000020  00 00 00 00 00 00 00 00                           |........|',
    '00000028',
  ]);
});

test('hexdump: offsets from the base, non-printables as dots, a changed line after a run of repeats', () => {
  const b = new Uint8Array(64);
  b[48] = 0x7e;
  b[49] = 0x7f;
  b[50] = 0x20;
  assert.deepEqual(hexdump(b, 0x600), [
    '00000600  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|',
    '*',
    '00000630  7e 7f 20 00 00 00 00 00  00 00 00 00 00 00 00 00  |~. .............|',
    '00000640',
  ]);
  assert.deepEqual(hexdump(new Uint8Array(0), 16), ['00000010']);
});

test('vdev names per xen-vbd-interface(7)', () => {
  const cases: [number, string][] = [
    [51712, 'xvda'], [51713, 'xvda1'], [51728, 'xvdb'], [(202 << 8) | (15 << 4) | 15, 'xvdp15'],
    [(1 << 28) | (26 << 8), 'xvdaa'], [(1 << 28) | (16 << 8) | 3, 'xvdq3'],
    [2048, 'sda'], [2065, 'sdb1'], [768, 'hda'], [832, 'hdb'], [5632, 'hdc'], [5697, 'hdd1'], [12345, '12345'],
  ];
  for (const [devid, name] of cases) assert.equal(vdevName(devid), name, String(devid));
});

test('sizes, uptime', () => {
  assert.deepEqual([humanSize(512), humanSize(4 << 20), humanSize(1536), humanSize(3 * 2 ** 40)], ['512 B', '4.00 MiB', '1.50 KiB', '3.00 TiB']);
  const at = new Date(Date.UTC(2026, 0, 1, 7, 5, 9));
  assert.equal(uptimeLine(at, 42_000), ' 07:05:09 up 0 min,  42.00 s since boot');
  assert.equal(uptimeLine(at, (62 * 60 + 5) * 1000), ' 07:05:09 up  1:02,  3725.00 s since boot');
  assert.match(uptimeLine(at, 2 * 86_400_000 + 3 * 3_600_000), /up 2 days,  3:00,/);
});

test('devices: one row per disk and NIC, aligned; a disk not connected shows its state', () => {
  const w = fakeWorld();
  const off = { ...memDisk(51728, 'xvdb', 8), state: 'init', info: undefined };
  assert.deepEqual(devicesTable([w.diskList[0]!, off], w.nicList), [
    'TYPE  NAME  DEVID  STATE      SIZE      DETAILS',
    'vbd   xvda  51712  connected  4.00 MiB  rw, 8192 sectors, 512 B blocks',
    'vbd   xvdb  51728  init       -         -',
    'vif   eth0  0      up         -         00:16:3e:00:00:01  10.0.0.1/24  mtu 1500',
  ]);
  assert.deepEqual(devicesTable([], []), ['no devices']);
});

test('ip addr: iproute2 layout with the link, the address and the counters', () => {
  const w = fakeWorld();
  assert.deepEqual(ipAddrLines(w.nicList[0]!, 2), [
    '2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP',
    '    link/ether 00:16:3e:00:00:01 brd ff:ff:ff:ff:ff:ff',
    '    inet 10.0.0.1/24 brd 10.0.0.255 scope global eth0',
    '    RX:  bytes  packets  errors  dropped',
    '         640    7        0       0',
    '    TX:  bytes  packets  errors  dropped',
    '         0      0        0       0',
  ]);
  const down = { ...w.nicList[0]!, state: 'down', stack: undefined, mac: undefined };
  assert.deepEqual(ipAddrLines(down, 1).slice(0, 3), [
    '1: eth0: <BROADCAST,MULTICAST> mtu 1500 state DOWN (down)',
    '    link/ether 00:00:00:00:00:00 brd ff:ff:ff:ff:ff:ff',
    '    RX:  bytes  packets  errors  dropped',
  ]);
});

test('words: sh quoting for simple commands', () => {
  const cases: [string, string[] | string][] = [
    ['', []],
    ['   blk   read  xvda 0 ', ['blk', 'read', 'xvda', '0']],
    [`blk write xvda 0 "hello world"`, ['blk', 'write', 'xvda', '0', 'hello world']],
    [`echo 'a "b" c' "d 'e'" f\\ g`, ['echo', 'a "b" c', "d 'e'", 'f g']],
    [`echo "a\\"b\\\\c\\n"`, ['echo', 'a"b\\c\\n']],
    [`echo x''y "" ''`, ['echo', 'xy', '', '']],
    [`echo a#b # a comment`, ['echo', 'a#b']],
    [`echo trailing\\`, ['echo', 'trailing\\']],
    [`echo "open`, 'unterminated quoted string'],
    [`echo 'open`, 'unterminated quoted string'],
  ];
  for (const [line, want] of cases) {
    const r = splitWords(line);
    assert.deepEqual(r, typeof want === 'string' ? { ok: false, error: want } : { ok: true, words: want }, line);
  }
});
