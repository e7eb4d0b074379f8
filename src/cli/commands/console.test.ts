/**
 * `xenpv console DOM` (the real CLI in a child process, stdin a pipe, not a terminal) against a
 * stand-alone console daemon's socket in its run dir, as on a Xen dom0 running `xenpv
 * consoled`: here the daemon serves a sim guest in this process. Output reaches stdout from
 * the first byte, stdin reaches the guest, and the command ends when the domain goes, even
 * with its stdin still open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConsoleAttachServer, ConsoleDaemon, consoleSocket, writePrimaryConsole } from '../../devices/console/index.js';
import { eventually, guestWithConsole } from '../../devices/console/test-support.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import { startTestStore } from '../../xenbus/testing.js';
import { prepareDomainHome } from '../../xenbus/toolstack.js';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const RUN = 'const { main } = await import(process.argv[1]); await main(process.argv.slice(2));';

function cli(runDir: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--input-type=module', '-e', RUN, MAIN, ...args], {
    env: { ...process.env, XENPV_RUN_DIR: runDir },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (code) => r(code))));
}

test('xenpv console through a stand-alone console daemon: boot output, input, end with the domain', async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'xenpv-conscli-'));
  try {
    await withHypervisor(async (hv) => {
      const store = startTestStore();
      hv.dom0.events.startAsync();
      const client = store.connect(0);
      const daemon = new ConsoleDaemon({ platform: hv.dom0, client });
      await daemon.start();
      const server = await ConsoleAttachServer.listen({ path: consoleSocket(runDir), daemon, client });
      const g = guestWithConsole(hv);
      try {
        const tool = store.connect(0);
        await prepareDomainHome(tool, g.domid, 'pv1');
        const si = g.guest.startInfo!;
        await writePrimaryConsole(tool, g.domid, { frame: si.consoleFrame, port: si.consolePort });
        await tool.introduce(g.domid, si.storeFrame, si.storePort);
        g.front.write('Linux version 6.1\r\nASK: type a word\r\n');
        const typed: Uint8Array[] = [];
        g.front.onData((b) => typed.push(b));
        const con = cli(runDir, ['console', 'pv1']);
        let out = '';
        con.stdout!.on('data', (b: Buffer) => (out += b.toString('latin1')));
        await eventually(() => out.includes('ASK: type a word'), 'the buffered boot output on stdout', 10_000);
        con.stdin!.write('zebra\n'); // stdin stays open: the console's end must end the command
        await eventually(() => Buffer.concat(typed).toString() === 'zebra\n', 'the typed word in the guest', 10_000);
        g.front.write('ANSWER arbez\r\n');
        await eventually(() => out.includes('ANSWER arbez'), 'the answer on stdout', 10_000);
        await tool.release(g.domid);
        tool.close();
        assert.equal(await exited(con), 0);
        assert.equal(out, 'Linux version 6.1\r\nASK: type a word\r\nANSWER arbez\r\n');
      } finally {
        g.front.dispose();
        g.guest.dispose();
        await server.close();
        await daemon.close();
        client.close();
        store.close();
      }
    });
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
});

test('xenpv console with neither a host nor a console daemon says so', async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'xenpv-conscli-'));
  try {
    const con = cli(runDir, ['console', 'pv1']);
    let err = '';
    con.stderr!.on('data', (b: Buffer) => (err += String(b)));
    con.stdin!.end();
    assert.equal(await exited(con), 1);
    assert.match(err, /neither a xenpv host nor a console daemon runs/);
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
});

test('xenpv consoled off Xen says why the xen platform is unavailable', { skip: existsSync('/dev/xen') ? 'this machine is a Xen domain' : false }, async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'xenpv-conscli-'));
  try {
    const d = cli(runDir, ['consoled', '-F']);
    let err = '';
    d.stderr!.on('data', (b: Buffer) => (err += String(b)));
    assert.equal(await exited(d), 1);
    assert.match(err, /the xen platform is unavailable: /);
    assert.equal(existsSync(consoleSocket(runDir)), false, 'no socket left behind');
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
});
