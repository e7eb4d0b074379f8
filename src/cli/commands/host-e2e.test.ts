/**
 * End to end through the real CLI (bin/xenpv.js in child processes), each test with its own
 * run dir: host start/stop, create, list, console, block and network attach/detach, shutdown,
 * destroy, config errors, a missing image, a taken name, a host that is not running — and,
 * after each, nothing left behind according to the host's own accounting.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callHost, type BlockRow, type DomainRow, type HostAccounting, type NicRow } from '../../toolstack/index.js';
import { waitUntil } from '../../base/testing.js';

const BIN = resolve(fileURLToPath(import.meta.url), '../../../../bin/xenpv.js');

interface Run { code: number; stdout: string; stderr: string }

function xenpv(dir: string, args: string[]): Promise<Run> {
  return new Promise((res) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir, env: { ...process.env, XENPV_RUN_DIR: join(dir, 'run') }, timeout: 30_000 }, (err, stdout, stderr) => {
      res({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

async function ok(dir: string, args: string[]): Promise<string> {
  const r = await xenpv(dir, args);
  assert.equal(r.code, 0, `xenpv ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const GUEST = (name: string, extra = ''): string => `# test guest
name = "${name}"
kernel = "builtin:idle"
memory = 8
disk = [ 'disk.img,raw,xvda,rw' ]
vif = [ 'bridge=xenbr0' ]
${extra}
`;

/** A guest program reading its console (guest/devices.ts kernelConsole), from the same dist tree as the CLI. */
const ECHO_PROGRAM = `import { kernelConsole } from ${JSON.stringify(new URL('../../guest/devices.js', import.meta.url).href)};
export default async function main(ctx) {
  const con = kernelConsole();
  if (con === undefined) throw new Error('no console');
  let line = '';
  con.onData((bytes) => {
    line += Buffer.from(bytes).toString();
    let nl;
    while ((nl = line.indexOf('\\n')) >= 0) { ctx.log('echo: ' + line.slice(0, nl)); line = line.slice(nl + 1); }
  });
  ctx.log('echo ready');
  while (await ctx.running()) await ctx.sleep(100);
}
`;

async function withHost(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-e2e-'));
  try {
    await truncate(await writeFile(join(dir, 'disk.img'), '').then(() => join(dir, 'disk.img')), 4 << 20);
    await ok(dir, ['host', 'start']);
    const before = await callHost<HostAccounting>(join(dir, 'run'), 'accounting');
    await fn(dir);
    const acct = await callHost<HostAccounting>(join(dir, 'run'), 'accounting');
    assert.deepEqual([acct.dom0Watches, acct.dom0Transactions], [before.dom0Watches, 0], 'dom0 watches/transactions back to the host\'s own');
    assert.deepEqual(
      { domains: acct.domains, zombies: acct.zombies, guestFrames: acct.guestFrames, dom0Ports: acct.dom0Ports, maptrack: acct.dom0Maptrack,
        pins: acct.foreignPins, leftovers: acct.storeLeftovers, consoles: acct.consoles, storeDomains: acct.storeDomains, storeAccounting: acct.storeAccounting },
      { domains: 0, zombies: 0, guestFrames: 0, dom0Ports: 0, maptrack: 0, pins: 0, leftovers: [], consoles: 0, storeDomains: 0, storeAccounting: [] },
    );
    await ok(dir, ['host', 'stop']);
    for (const f of ['control.sock', 'xenstored.sock', 'host.pid']) assert.ok(!existsSync(join(dir, 'run', f)), `${f} left behind`);
  } finally {
    await xenpv(dir, ['host', 'stop']);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Polling goes through the control socket (cheap); what is asserted goes through the CLI. */
function host<T>(dir: string, method: string, params: Record<string, unknown> = {}): Promise<T> {
  return callHost<T>(join(dir, 'run'), method, params);
}

const listed = (dir: string): Promise<DomainRow[]> => host<DomainRow[]>(dir, 'list');

const waitFor = (cond: () => Promise<boolean>, ms: number): Promise<void> => waitUntil(cond, 'condition', ms, 50);

// Each test has its own run dir and host: they run side by side, as several hosts may.
describe('xenpv CLI end to end', { concurrency: true }, () => {
  test('commands against a host that is not running fail with one line naming the run dir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xenpv-e2e-'));
    try {
      for (const args of [['list'], ['destroy', 'x'], ['host', 'stop']]) {
        const r = await xenpv(dir, args);
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`not running \\(run dir ${join(dir, 'run').replace(/[/.]/g, '\\$&')}\\)`));
        assert.equal(r.stderr.trim().split('\n').length, 1);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('create, list, console, block and network hot-plug, shutdown -w, destroy; errors', async () => {
    await withHost(async (dir) => {
      await writeFile(join(dir, 'g.cfg'), GUEST('g1'));
      await writeFile(join(dir, 'bad.cfg'), 'name = "b"\nmemory = [ 1,\nvcpus = =\n');
      await writeFile(join(dir, 'missing.cfg'), GUEST('m1').replace('disk.img', 'nope.img'));

      const bad = await xenpv(dir, ['create', 'bad.cfg']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /bad\.cfg:\d+:\d+/);
      const missing = await xenpv(dir, ['create', 'missing.cfg']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /nope\.img/);

      await ok(dir, ['create', 'g.cfg']);
      const taken = await xenpv(dir, ['create', 'g.cfg']);
      assert.equal(taken.code, 1);
      assert.match(taken.stderr, /already exists/);

      const list = (await ok(dir, ['list'])).split('\n');
      assert.equal(list[0], 'Name                                        ID   Mem VCPUs\tState\tTime(s)');
      assert.match(list[1]!, /^Domain-0 {37}0 +\d+ +1 {5}r----- +\d+\.\d$/);
      assert.match(list[2]!, /^g1 {38} +\d+ +8 +1 {5}(r-|-b)---- +\d+\.\d$/);
      assert.equal(JSON.parse(await ok(dir, ['list', '-l', 'g1']))[0].config.name, 'g1');
      // xl vcpu-list / vcpu-pin: the guest's one vCPU pinned to the last CPU, then unpinned.
      const last = String(cpus().length - 1);
      await ok(dir, ['vcpu-pin', 'g1', '0', last]);
      const vcpus = (await ok(dir, ['vcpu-list', 'g1'])).split('\n');
      assert.match(vcpus[0]!, /^Name +ID +VCPU +CPU +State +Time\(s\) Affinity \(Hard \/ Soft\)$/);
      assert.match(vcpus[1]!, new RegExp(`^g1 +\\d+ +0 +\\d+ +(r--|-b-) +\\d+\\.\\d  ${last} / all$`));
      assert.match((await xenpv(dir, ['vcpu-pin', 'g1', '0', '99'])).stderr, /CPU 99 does not exist/);
      await ok(dir, ['vcpu-pin', 'g1', '0', '-', 'all']); // xl's "-": the hard affinity stays
      assert.match((await ok(dir, ['vcpu-list', 'g1'])).split('\n')[1]!, new RegExp(` ${last} / all$`));
      assert.match((await xenpv(dir, ['vcpu-pin', 'g1', '0', 'all', '1'])).stderr, /soft affinity is not supported/);
      await ok(dir, ['vcpu-pin', 'g1', 'all', 'all']);
      assert.match((await ok(dir, ['vcpu-list', 'g1'])).split('\n')[1]!, / all \/ all$/);
      assert.match((await ok(dir, ['vcpu-list'])).split('\n')[1]!, /^Domain-0 +0 +0 /);
      // Xen's own client (Debian xenstore-utils) reads the tree through the host's store socket.
      if (existsSync('/usr/bin/xenstore-read')) {
        const domid = /^g1 +(\d+)/m.exec(list.join('\n'))![1];
        const r = await new Promise<string>((res, rej) => execFile('/usr/bin/xenstore-read', [`/local/domain/${domid}/name`],
          { env: { ...process.env, XENSTORED_PATH: join(dir, 'run', 'xenstored.sock') } }, (e, out) => (e ? rej(e) : res(out))));
        assert.equal(r, 'g1\n');
      }

      // Console: the idle program says "idle" at boot; the console daemon buffered it.
      const con = spawn(process.execPath, [BIN, 'console', 'g1'], { cwd: dir, env: { ...process.env, XENPV_RUN_DIR: join(dir, 'run') }, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      con.stdout.on('data', (b: Buffer) => (out += b.toString()));
      await waitFor(async () => out.includes('idle'), 5000);
      con.kill();

      await waitFor(async () => (await host<BlockRow[]>(dir, 'block-list', { domain: 'g1' }))[0]?.state === 4, 5000);
      assert.match((await ok(dir, ['block-list', 'g1'])).split('\n')[1]!, /^51712 0   51712  4 /);
      await ok(dir, ['block-attach', 'g1', `format=raw, vdev=xvdb, access=ro, target=disk.img`]);
      await waitFor(async () => (await host<BlockRow[]>(dir, 'block-list', { domain: 'g1' }))[1]?.state === 4, 5000);
      assert.ok((await ok(dir, ['block-list', 'g1'])).includes('51728 0   51728  4 '));
      const blk = (await ok(dir, ['block-list', 'g1'])).split('\n');
      assert.equal(blk[0], 'Vdev  BE  handle state evt-ch ring-ref BE-path                       ');
      await ok(dir, ['block-detach', 'g1', 'xvdb']);
      assert.ok(!(await ok(dir, ['block-list', 'g1'])).includes('51728'));

      await ok(dir, ['network-attach', 'g1', 'mac=00:16:3e:00:00:42,bridge=xenbr1']);
      await waitFor(async () => (await host<NicRow[]>(dir, 'network-list', { domain: 'g1' }))[1]?.state === 4, 5000);
      assert.ok((await ok(dir, ['network-list', 'g1'])).includes('00:16:3e:00:00:42     1     4 '));
      await ok(dir, ['network-detach', 'g1', '00:16:3e:00:00:42']);
      assert.ok(!(await ok(dir, ['network-list', 'g1'])).includes('00:16:3e:00:00:42'));

      const stats = JSON.parse(await ok(dir, ['domstats', '--json', 'g1']))[0].stats;
      assert.equal(stats['block.0.name'], 'xvda');
      assert.equal(stats['block.0.capacity'], 4 << 20);
      for (const k of ['block.0.rd.reqs', 'block.0.rd.bytes', 'block.0.wr.reqs', 'block.0.fl.reqs']) assert.equal(typeof stats[k], 'number', k);
      assert.equal(typeof stats['net.0.tx.pkts'], 'number');
      const top = await ok(dir, ['top', '-b', '-i', '2', '-d', '0.2']);
    assert.equal(top.match(/^ +NAME +STATE +CPU\(sec\) CPU\(%\) +MEM\(k\)/gm)?.length, 2, top);
    assert.match(top, /^ +g1 --b--- |^ +g1 -----r /m);

      await ok(dir, ['shutdown', '-w', 'g1']);
      assert.ok(!(await ok(dir, ['list'])).includes('g1'));

      await ok(dir, ['create', 'g.cfg', 'name="g2"']);
      await ok(dir, ['pause', 'g2']);
      assert.match((await ok(dir, ['list', 'g2'])).split('\n')[1]!, / --p--- /);
      await ok(dir, ['destroy', 'g2']);
      assert.equal((await ok(dir, ['list'])).trim().split('\n').length, 2);
    });
  });

  test('reboot with on_reboot=restart (the default) brings the domain back with a new domid; create -F; a guest doing block I/O; two guests pinging over a bridge; console input, on a pipe and on a terminal (Ctrl+] detaches)', async () => {
    await withHost(async (dir) => {
      await writeFile(join(dir, 'r.cfg'), GUEST('r1'));
      await ok(dir, ['create', 'r.cfg']);
      await ok(dir, ['reboot', 'r1']);
      await waitFor(async () => (await listed(dir)).some((r) => r.name === 'r1' && r.domid !== 1), 10_000);
      assert.match(await ok(dir, ['list']), /^r1 +2 /m);
      await ok(dir, ['destroy', 'r1']);
      // create -F stays until the domain is gone (builtin:shutdown powers off at once; on_poweroff=destroy).
      await writeFile(join(dir, 's.cfg'), 'name = "s1"\nkernel = "builtin:shutdown"\nmemory = 4\n');
      await ok(dir, ['create', '-F', 's.cfg']);
      assert.ok(!(await ok(dir, ['list'])).includes('s1'));

      // A guest doing block I/O (builtin:fio over the kernel's BlkFront), kept after poweroff.
      await writeFile(join(dir, 'f.cfg'), GUEST('f1', 'on_poweroff = "preserve"')
        .replace('builtin:idle', 'builtin:fio').replace('memory = 8', 'memory = 8\nextra = "rw=randwrite bs=4k iodepth=4 size=256K verify=crc32c"'));
      await ok(dir, ['create', 'f.cfg']);
      await waitFor(async () => (await listed(dir)).some((r) => r.name === 'f1' && r.state === '---s--'), 10_000);
      assert.match(await ok(dir, ['list', 'f1']), /^f1 .* ---s-- /m);
      const stats = JSON.parse(await ok(dir, ['domstats', '--json', 'f1']))[0].stats;
      assert.equal(stats['block.0.wr.reqs'], 64);
      assert.equal(stats['block.0.wr.bytes'], 256 * 1024);
      assert.ok(stats['block.0.rd.reqs'] > 0, 'verify read back');
      assert.match(await readFile(join(dir, 'run', 'guest-f1.log'), 'utf8'), /"verify":"ok"/);
      await ok(dir, ['destroy', 'f1']);

      // Two guests on one bridge: p1 pings p2 through NetFront → NetBack → bridge → NetBack → NetFront.
      const pinger = (name: string, ip: number, dst: number, count: number): string =>
        `name = "${name}"\nkernel = "builtin:ping"\nmemory = 8\nvif = ['bridge=xenbr0']\non_poweroff = "preserve"\n` +
        `extra = "ip=10.0.0.${ip}/24 dst=10.0.0.${dst} count=${count} interval=200"\n`;
      await writeFile(join(dir, 'p2.cfg'), pinger('p2', 2, 1, 30));
      await writeFile(join(dir, 'p1.cfg'), pinger('p1', 1, 2, 3));
      await ok(dir, ['create', 'p2.cfg']);
      await waitFor(async () => (await host<NicRow[]>(dir, 'network-list', { domain: 'p2' }))[0]?.state === 4, 10_000);
      await ok(dir, ['create', 'p1.cfg']);
      await waitFor(async () => (await listed(dir)).some((r) => r.name === 'p1' && r.state === '---s--'), 15_000);
      const log = await readFile(join(dir, 'run', 'guest-p1.log'), 'utf8');
      // On a loaded machine the first echo may go before p2's stack answers ARP: allow that one.
      const result = JSON.parse(/^\{"ping".*$/m.exec(log)![0]).ping as { transmitted: number; received: number; corrupted: number };
      assert.equal(result.transmitted, 3);
      assert.ok(result.received >= 2, log);
      assert.equal(result.corrupted, 0);
      const net = JSON.parse(await ok(dir, ['domstats', '--json', 'p1']))[0].stats;
      assert.ok(net['net.0.rx.pkts'] >= 3 && net['net.0.tx.pkts'] >= 3, JSON.stringify(net));
      await ok(dir, ['destroy', 'p1']);
      await ok(dir, ['destroy', 'p2']);

      // Console input: a guest program module (kernel = a path beside the config) echoes hvc0.
      await writeFile(join(dir, 'echo.mjs'), ECHO_PROGRAM);
      await writeFile(join(dir, 'e.cfg'), 'name = "e1"\nkernel = "echo.mjs"\nmemory = 4\n');
      await ok(dir, ['create', 'e.cfg']);
      const con = spawn(process.execPath, [BIN, 'console', 'e1'], { cwd: dir, env: { ...process.env, XENPV_RUN_DIR: join(dir, 'run') }, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      con.stdout.on('data', (b: Buffer) => (out += b.toString()));
      await waitFor(async () => out.includes('echo ready'), 10_000);
      con.stdin.write('hello xenpv\n');
      await waitFor(async () => out.includes('echo: hello xenpv'), 10_000);
      const conExit = new Promise((r) => con.once('exit', r));
      con.kill();
      await conExit;

      // On a terminal (a pty from util-linux script): raw mode, input reaches the guest, and
      // Ctrl+] detaches. The console has one reader at a time (EBUSY): the killed one may
      // still be detaching, so a refused attach is tried again.
      if (existsSync('/usr/bin/script')) {
        let seen = '';
        for (let attempt = 0; attempt < 10 && !seen.includes('echo: on a tty'); attempt++) {
          const tty = spawn('/usr/bin/script', ['-qec', `${process.execPath} ${BIN} console e1`, '/dev/null'], {
            cwd: dir, env: { ...process.env, XENPV_RUN_DIR: join(dir, 'run') }, stdio: ['pipe', 'pipe', 'pipe'],
          });
          seen = '';
          tty.stdout.on('data', (b: Buffer) => (seen += b.toString()));
          let code: number | null | undefined;
          const exited = new Promise<number | null>((r) => tty.once('exit', (c) => r((code = c))));
          const typing = setInterval(() => tty.stdin.write('on a tty\n'), 300);
          await waitFor(async () => seen.includes('echo: on a tty') || code !== undefined, 10_000).finally(() => clearInterval(typing));
          if (code !== undefined) continue;
          tty.stdin.write('\x1d');
          assert.equal(await exited, 0);
        }
        assert.ok(seen.includes('echo: on a tty\r\n'), seen);
      }
      await ok(dir, ['destroy', 'e1']);
    });
  });
});
