import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS } from './commands.js';
import { EOF_HINT } from './shell.js';
import { fakeWorld, memDisk, shellOn } from './test-support.js';

const P = 'root@g1:~# ';
/** What a command printed: its output lines, without the echo and the prompt after it. */
const lines = (out: string): string[] => out.split('\r\n').slice(1, -1);

test('prompt, echo, help lists every command; unknown command; empty line', async () => {
  const { shell, output, type } = shellOn(fakeWorld());
  shell.start();
  assert.equal(output(), P);
  const help = await type('help\r');
  assert.ok(help.startsWith('help\r\nCommands'), help);
  for (const [name, cmd] of Object.entries(COMMANDS)) assert.ok(help.includes(`\r\n  ${cmd.usage[0]} `) || help.includes(`\r\n  ${cmd.usage[0]}\r\n`), name);
  assert.ok(help.split('\r\n').every((l) => l.length <= 80), 'help fits 80 columns');
  assert.ok(help.endsWith(`\r\n${P}`));
  assert.equal(await type('foo bar\r'), `foo bar\r\nsh: foo: command not found\r\n${P}`);
  assert.equal(await type('\r'), `\r\n${P}`);
  assert.equal(await type('toString\r'), `toString\r\nsh: toString: command not found\r\n${P}`, 'no prototype lookups');
  assert.equal(await type('echo "a b"  c\r'), `echo "a b"  c\r\na b c\r\n${P}`);
  assert.equal(await type('echo "x\r'), `echo "x\r\nsh: syntax error: unterminated quoted string\r\n${P}`);
});

test('bad arguments print the reason and the usage lines', async () => {
  const { type } = shellOn(fakeWorld());
  assert.deepEqual(lines(await type('blk frob\r')), [
    "blk: bad arguments to 'frob'",
    'usage: blk info [dev]',
    '       blk read <dev> <sector> [count]',
    '       blk write <dev> <sector> <text|hex:HEX>',
    '       blk flush [dev]',
  ]);
  assert.deepEqual(lines(await type('uptime now\r')), ['uptime: no arguments', 'usage: uptime']);
  assert.equal(lines(await type('blk read xvda 0 17\r'))[0], "blk: bad count '17' (1..16)");
  assert.equal(lines(await type('blk read xvda -1\r'))[0], "blk: bad sector '-1'");
  assert.equal(lines(await type('blk write xvda 0 hex:abc\r'))[0], "blk: bad hex data 'hex:abc' (an even number of hex digits after hex:)");
  assert.equal(lines(await type('ping -c 0 10.0.0.2\r'))[0], "ping: bad count '0' (1..2147483647)");
  assert.equal(lines(await type('ping -x 10.0.0.2\r'))[0], 'ping: invalid option -x');
  assert.deepEqual(lines(await type('crash\r')), ['crash: missing message', 'usage: crash <message...>']);
});

test('blk write then read: text and hex, at a sector, whole-sector I/O, hexdump of the disk offsets', async () => {
  const w = fakeWorld();
  const disk = w.diskList[0] as ReturnType<typeof memDisk>;
  const { type } = shellOn(w);
  assert.deepEqual(lines(await type('blk write xvda 3 "hello world"\r')), ['xvda: wrote 11 bytes at sector 3']);
  assert.equal(Buffer.from(disk.bytes.subarray(1536, 1547)).toString(), 'hello world');
  assert.deepEqual(disk.io, [['read', 3, 512], ['write', 3, 512]], 'a partial sector is read, patched, written');
  assert.deepEqual(lines(await type('blk read xvda 3\r')), [
    '00000600  68 65 6c 6c 6f 20 77 6f  72 6c 64 00 00 00 00 00  |hello world.....|',
    '00000610  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|',
    '*',
    '00000800',
  ]);
  disk.io.length = 0;
  await type(`blk write 51712 0x10 hex:${'ab'.repeat(512)}\r`);
  assert.deepEqual(disk.io, [['write', 16, 512]], 'a whole sector needs no read');
  assert.deepEqual(lines(await type('blk read xvda 16 2\r')), [
    '00002000  ab ab ab ab ab ab ab ab  ab ab ab ab ab ab ab ab  |................|',
    '*',
    '00002200  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|',
    '*',
    '00002400',
  ]);
  assert.deepEqual(lines(await type('blk read xvda 8192\r')), ['blk: bytes 4194304..4194816 are past the end of the disk (8192 sectors)']);
  assert.deepEqual(lines(await type('blk read xvdz 0\r')), ['blk: xvdz: no such disk (disks: xvda)']);
  assert.deepEqual(lines(await type('blk flush\r')), ['xvda: flushed']);
  assert.equal(disk.flushes, 1);
});

test('blk on a 4 KiB-block disk reads and writes whole blocks; read-only and disconnected disks refuse', async () => {
  const w = fakeWorld();
  const big = memDisk(51728, 'xvdb', 64, { sectorSize: 4096 });
  const ro = memDisk(51744, 'xvdc', 8, { readOnly: true });
  w.diskList.push(big, ro, { ...memDisk(51760, 'xvdd', 8), state: 'closed', info: undefined });
  const { type } = shellOn(w);
  assert.deepEqual(lines(await type('blk write xvdb 9 hex:41\r')), ['xvdb: wrote 1 bytes at sector 9']);
  assert.deepEqual(big.io, [['read', 8, 4096], ['write', 8, 4096]]);
  assert.equal(big.bytes[9 * 512], 0x41);
  assert.equal(lines(await type('blk read xvdb 9 1\r'))[0], '00001200  41 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |A...............|');
  assert.deepEqual(lines(await type('blk write xvdc 0 x\r')), ['blk: xvdc: read-only']);
  assert.deepEqual(ro.io, []);
  assert.deepEqual(lines(await type('blk read xvdd 0\r')), ['blk: xvdd: not connected (closed)']);
  const info = lines(await type('blk info xvdb\r'));
  assert.deepEqual(info.slice(0, 4), [
    'xvdb: device/vbd/51728, connected',
    '  size:      64 sectors x 512 B = 32768 B (32.00 KiB)',
    '  blocks:    logical 4096 B, physical 512 B',
    '  mode:      rw',
  ]);
  assert.match(info[4]!, /^ {2}features: {2}flush queues=1 ring-pages=1 protocol=x86_64$/);
  assert.match(info[5]!, /^ {2}counters: {2}read 2 req/);
});

test('devices, ip addr, net', async () => {
  const { type } = shellOn(fakeWorld());
  assert.deepEqual(lines(await type('devices\r')).slice(1), [
    'vbd   xvda  51712  connected  4.00 MiB  rw, 8192 sectors, 512 B blocks',
    'vif   eth0  0      up         -         00:16:3e:00:00:01  10.0.0.1/24  mtu 1500',
  ]);
  assert.equal(lines(await type('ip a show eth0\r'))[2], '    inet 10.0.0.1/24 brd 10.0.0.255 scope global eth0');
  assert.deepEqual(lines(await type('ip addr eth9\r')), ['ip: Device "eth9" does not exist.']);
  const net = lines(await type('net\r'));
  assert.equal(net[0], '1: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP');
  assert.match(net[7]!, /^eth0: ip rx 0 /);
});

test('ping -c 3: iputils lines and statistics through two stacks on a bridge', async () => {
  const w = fakeWorld();
  const { type } = shellOn(w);
  const out = lines(await type('ping -c 3 -i 0.2 10.0.0.2\r'));
  assert.deepEqual(out, [
    'PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.',
    '64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.000 ms',
    '64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=0.000 ms',
    '64 bytes from 10.0.0.2: icmp_seq=3 ttl=64 time=0.000 ms',
    '',
    '--- 10.0.0.2 ping statistics ---',
    '3 packets transmitted, 3 received, 0% packet loss, time 400ms',
    'rtt min/avg/max/mdev = 0.000/0.000/0.000/0.000 ms',
  ]);
  assert.equal(w.net.b.stack.counters.icmpEchoRequestsRx, 3);
  assert.deepEqual(lines(await type('ping 10.0.0.2 10.0.0.3\r'))[0], 'ping: one destination only');
  w.nicList = [];
  assert.deepEqual(lines(await type('ping 10.0.0.2\r')), ['ping: connect: Network is unreachable (no interface with an address)']);
});

test('Ctrl+C stops a ping without -c (statistics printed) and a sleep; lines typed meanwhile are dropped', async () => {
  const w = fakeWorld();
  const { shell, output, type } = shellOn(w);
  shell.input(new TextEncoder().encode('ping 10.0.0.2\r'));
  while (w.net.b.stack.counters.icmpEchoRequestsRx < 3) await new Promise((r) => setImmediate(r));
  const typed = await type('echo lost\r\x03');
  assert.ok(typed.startsWith('echo lost\r\n^C\r\n'), typed);
  const out = output();
  assert.match(out, /\r\n--- 10\.0\.0\.2 ping statistics ---\r\n\d+ packets transmitted, \d+ received, 0% packet loss, time \d+ms\r\nrtt /);
  assert.ok(out.endsWith(P) && !out.includes('\r\nlost\r\n'));
  shell.input(new TextEncoder().encode('sleep 3600\r'));
  assert.ok(shell.busy);
  assert.equal(await type('\x03'), `^C\r\n${P}`);
  assert.equal(await type('\x03'), `^C\r\n${P}`, 'at the prompt, ^C gives a new prompt');
});

test('type-ahead runs in order; beyond the queue, lines ring the bell; Ctrl+D gives a hint', async () => {
  const { type } = shellOn(fakeWorld(), { maxQueued: 2 });
  assert.equal(await type('echo 1\recho 2\r'), `echo 1\r\necho 2\r\n1\r\n${P}2\r\n${P}`);
  // The third line finds the queue full: the bell, and it never runs.
  assert.equal(await type('echo a\recho b\recho c\r'), `echo a\r\necho b\r\necho c\r\n\x07a\r\n${P}b\r\n${P}`);
  assert.equal(await type('\x04'), `${EOF_HINT}\r\n${P}`);
});

test('poweroff, reboot and crash ask the world to shut down with their reason', async () => {
  const w = fakeWorld();
  const { type } = shellOn(w);
  assert.deepEqual(lines(await type('poweroff\r')), ['Powering off.']);
  assert.deepEqual(lines(await type('reboot\r')), ['Rebooting.']);
  await type('crash disk on fire\r');
  assert.deepEqual(w.shutdowns, [['poweroff', undefined], ['reboot', undefined], ['crash', 'disk on fire']]);
  assert.deepEqual(lines(await type('exit\r')), ["exit: this shell is the guest's only program: use poweroff or reboot"]);
  assert.deepEqual(lines(await type('uptime\r')), [' 08:30:05 up 0 min,  0.00 s since boot']);
});
