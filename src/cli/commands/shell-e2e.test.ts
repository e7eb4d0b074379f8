/**
 * `builtin:shell` end to end, through a terminal: a host with its own run dir, two guests
 * running the shell on one bridge, and `xenpv create -c` inside tmux (Debian tmux), typed
 * at with send-keys and read back with capture-pane, as a person at the console would.
 * After `poweroff` the console detaches, the domain is gone, the shell's write is in the
 * image file, and the host's accounting shows nothing left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skipUnlessInstalled } from '../../base/testing.js';
import { callHost, type DomainRow, type HostAccounting } from '../../toolstack/index.js';

const BIN = resolve(fileURLToPath(import.meta.url), '../../../../bin/xenpv.js');
const noTmux = skipUnlessInstalled(spawnSync('tmux', ['-V']).status === 0 ? false : 'tmux (Debian tmux) is not installed');
/** The prompt as capture-pane shows it: tmux drops the blanks at the end of a line. */
const PROMPT = 'root@s1:~#';

function run(file: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(file, args, { cwd, env, timeout: 20_000 }, (err, stdout, stderr) => {
      res({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

async function waitFor<T>(get: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A tmux server of our own (socket in the test dir) running one command in a 120x50 pane. */
class Terminal {
  constructor(private readonly socket: string, private readonly env: NodeJS.ProcessEnv) {}

  async tmux(...args: string[]): Promise<string> {
    const r = await run('tmux', ['-S', this.socket, ...args], this.env);
    assert.equal(r.code, 0, `tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** The whole pane with its scrollback, wrapped lines joined. */
  screen(): Promise<string> {
    return this.tmux('capture-pane', '-p', '-J', '-t', 'shell', '-S', '-');
  }

  /**
   * The exit status of `xenpv create -c`, once it has exited. The pane's sh prints it: tmux
   * alone sometimes leaves the exited child a zombie for seconds before it marks the pane dead.
   */
  exitStatus(): Promise<string> {
    return waitFor(async () => /^\[xenpv exited (\d+)\]$/m.exec(await this.screen())?.[1], 10_000, 'xenpv create -c to exit');
  }

  /** Type a line and Enter (tmux sends CR, as a terminal does). */
  async type(line: string): Promise<void> {
    await this.tmux('send-keys', '-t', 'shell', '-l', line);
    await this.tmux('send-keys', '-t', 'shell', 'Enter');
  }

  /** Type a line, then wait until the prompt after its output shows; returns that output. */
  async command(line: string, ms = 10_000): Promise<string> {
    const before = (await this.screen()).split(PROMPT).length;
    await this.type(line);
    return waitFor(async () => {
      const parts = (await this.screen()).split(PROMPT);
      return parts.length > before ? parts[before - 1]! : undefined;
    }, ms, `the prompt after '${line}'`);
  }
}

/** A 1 MiB image with a mark at sector 5 (the guest must read it back), the configs, tmux's. */
async function writeFixtures(dir: string): Promise<void> {
  const img = await open(join(dir, 'disk.img'), 'w');
  await img.truncate(1 << 20);
  await img.write(Buffer.from('xenpv-e2e'), 0, 9, 5 * 512);
  await img.close();
  const cfg = (name: string, ip: string, disk: boolean): string =>
    `name = "${name}"\nkernel = "builtin:shell"\nmemory = 8\nvif = [ 'bridge=xenbr0' ]\nextra = "ip=${ip}/24"\n` +
    (disk ? `disk = [ 'disk.img,raw,xvda,rw' ]\n` : '');
  await writeFile(join(dir, 's1.cfg'), cfg('s1', '10.0.0.1', true));
  await writeFile(join(dir, 's2.cfg'), cfg('s2', '10.0.0.2', false));
  // The pane stays after its command exits, so the last screen can be read.
  await writeFile(join(dir, 'tmux.conf'), 'set -g remain-on-exit on\nset -g history-limit 10000\n');
}

/** The host's own accounting: nothing of any guest left, dom0's watches back to before. */
async function assertNothingLeft(runDir: string, before: HostAccounting): Promise<void> {
  const acct = await callHost<HostAccounting>(runDir, 'accounting');
  assert.deepEqual([acct.dom0Watches, acct.dom0Transactions], [before.dom0Watches, 0]);
  assert.deepEqual(
    { domains: acct.domains, zombies: acct.zombies, guestFrames: acct.guestFrames, dom0Ports: acct.dom0Ports, maptrack: acct.dom0Maptrack,
      pins: acct.foreignPins, leftovers: acct.storeLeftovers, consoles: acct.consoles, storeDomains: acct.storeDomains },
    { domains: 0, zombies: 0, guestFrames: 0, dom0Ports: 0, maptrack: 0, pins: 0, leftovers: [], consoles: 0, storeDomains: 0 },
  );
}

/** `ping` without -c until two replies, then Ctrl+C: the statistics, then the prompt. */
async function pingUntilCtrlC(term: Terminal): Promise<string> {
  await term.type('ping -i 0.2 10.0.0.2');
  await waitFor(async () => ((await term.screen()).match(/icmp_seq=2 /g)?.length === 2 ? true : undefined), 10_000, 'two replies');
  await term.tmux('send-keys', '-t', 'shell', 'C-c');
  return waitFor(async () => {
    const s = await term.screen();
    return s.trimEnd().endsWith(PROMPT) ? s : undefined;
  }, 10_000, 'the prompt after Ctrl+C');
}

test('builtin:shell through tmux: help, devices, blk write/read, ping another guest, Ctrl+C, poweroff', { skip: noTmux, timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-shell-'));
  const runDir = join(dir, 'run');
  const env = { ...process.env, XENPV_RUN_DIR: runDir };
  const xenpv = async (...args: string[]): Promise<string> => {
    const r = await run(process.execPath, [BIN, ...args], env, dir);
    assert.equal(r.code, 0, `xenpv ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const term = new Terminal(join(dir, 'tmux.sock'), env);
  try {
    await writeFixtures(dir);
    await xenpv('host', 'start');
    const before = await callHost<HostAccounting>(runDir, 'accounting');
    await xenpv('create', 's2.cfg');
    // s2's prompt comes once its eth0 is up (the shell waits for its devices at boot).
    await waitFor(async () => ((await readFile(join(runDir, 'guest-s2.log'), 'utf8').catch(() => '')).includes('root@s2:~# ') ? true : undefined), 15_000, 's2 prompt');

    await term.tmux('-f', join(dir, 'tmux.conf'), 'new-session', '-d', '-s', 'shell', '-x', '120', '-y', '50', '-c', dir,
      `${process.execPath} ${BIN} create s1.cfg -c; echo "[xenpv exited $?]"`);
    const boot = await waitFor(async () => {
      const s = await term.screen();
      return s.includes(PROMPT) ? s : undefined;
    }, 15_000, 's1 prompt');
    assert.match(boot, /^xvda: 2048 sectors \(1\.00 MiB\), rw$/m);
    assert.match(boot, /^eth0: 00:16:3e(:[0-9a-f]{2}){3} 10\.0\.0\.1\/24, link up$/m);

    const help = await term.command('help');
    for (const usage of ['devices', 'blk read <dev> <sector> [count]', 'ping [-c N]', 'poweroff']) assert.ok(help.includes(`\n  ${usage}`), help);

    const devices = await term.command('devices');
    assert.match(devices, /^vbd +xvda +51712 +connected +1\.00 MiB +rw, 2048 sectors, 512 B blocks$/m);
    assert.match(devices, /^vif +eth0 +0 +up +- +00:16:3e(:[0-9a-f]{2}){3} +10\.0\.0\.1\/24 +mtu 1500$/m);

    assert.match(await term.command('blk read xvda 5'), /^00000a00 {2}78 65 6e 70 76 2d 65 32 {2}65 00 00 00 00 00 00 00 {2}\|xenpv-e2e\.{7}\|$/m);
    assert.match(await term.command('blk write xvda 7 "written by the shell"'), /^xvda: wrote 20 bytes at sector 7$/m);
    assert.match(await term.command('blk read xvda 7'), /^00000e00 {2}77 72 69 74 74 65 6e 20 {2}62 79 20 74 68 65 20 73 {2}\|written by the s\|$/m);
    assert.match(await term.command('blk flush'), /^xvda: flushed$/m);
    assert.match(await term.command('nonsense'), /^sh: nonsense: command not found$/m);

    const ping = await term.command('ping -c 3 -i 0.2 10.0.0.2');
    assert.match(ping, /^PING 10\.0\.0\.2 \(10\.0\.0\.2\) 56\(84\) bytes of data\.$/m);
    assert.match(ping, /^64 bytes from 10\.0\.0\.2: icmp_seq=1 ttl=64 time=[0-9.]+ ms$/m);
    assert.match(ping, /^3 packets transmitted, 3 received, 0% packet loss, time \d+ms$/m);
    assert.match(await term.command('ip addr'), /^ {4}inet 10\.0\.0\.1\/24 brd 10\.0\.0\.255 scope global eth0$/m);

    // Ctrl+C stops a ping without -c, which then prints its statistics.
    assert.match(await pingUntilCtrlC(term), /\^C\n\n--- 10\.0\.0\.2 ping statistics ---\n\d+ packets transmitted, \d+ received/);

    await term.type('poweroff');
    const status = await term.exitStatus().catch(async (err: Error) => {
      const acct = await callHost<HostAccounting>(runDir, 'accounting');
      const names = (await callHost<DomainRow[]>(runDir, 'list')).map((r) => r.name);
      throw new Error(`${err.message}; domains ${names.join(' ')}; consoles ${acct.consoles}; screen:\n${await term.screen()}`);
    });
    assert.equal(status, '0', 'the console closes with the domain and `xenpv create -c` exits 0');
    assert.match(await term.screen(), /^Powering off\.$/m);
    await waitFor(async () => ((await callHost<DomainRow[]>(runDir, 'list')).some((r) => r.name === 's1') ? undefined : true), 10_000, 's1 to go');
    assert.ok(!(await xenpv('list')).includes('s1'));

    const bytes = await readFile(join(dir, 'disk.img'));
    assert.equal(bytes.subarray(7 * 512, 7 * 512 + 20).toString(), 'written by the shell');
    assert.equal(bytes.subarray(5 * 512, 5 * 512 + 9).toString(), 'xenpv-e2e');

    await xenpv('destroy', 's2');
    await assertNothingLeft(runDir, before);
    await xenpv('host', 'stop');
    assert.ok(!existsSync(join(runDir, 'control.sock')), 'control.sock left behind');
  } finally {
    await run('tmux', ['-S', join(dir, 'tmux.sock'), 'kill-server'], env);
    await run(process.execPath, [BIN, 'host', 'stop'], env, dir);
    await rm(dir, { recursive: true, force: true });
  }
});
