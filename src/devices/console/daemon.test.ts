/**
 * The console daemon against an in-process xenstored and the sim hypervisor: it attaches to a
 * domain's console 0 when the domain is introduced and detaches when it is released; a
 * programmatic attach reads buffered and live output and types input; log files per domain;
 * secondary consoles as xenbus devices through the full handshake.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XenbusStateConnected } from '../../abi/io/xenbus.js';
import { assertNoLeaks, errorCode, type DomId } from '../../base/index.js';
import type { Hypervisor } from '../../hv/sim/hypervisor.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import { FrontendWatcher } from '../../xenbus/frontend.js';
import { backendPath, frontendPath, type DeviceId } from '../../xenbus/paths.js';
import { isState, waitForState } from '../../xenbus/state.js';
import { startTestStore, type TestStore } from '../../xenbus/testing.js';
import { addDevice, prepareDomainHome, removeDevice } from '../../xenbus/toolstack.js';
import type { ConsoleFront } from './front.js';
import { consoleFrontendDriver } from './front.js';
import { ConsoleDaemon } from './daemon.js';
import { writePrimaryConsole } from './protocol.js';
import { createGuest, eventually, guestWithConsole } from './test-support.js';

async function withDaemon(
  fn: (hv: Hypervisor, store: TestStore, daemon: ConsoleDaemon, logs: string[]) => Promise<void>,
  options: { logDir?: string; secondary?: boolean; tty?: (domid: number) => string } = {},
): Promise<void> {
  await withHypervisor(async (hv) => {
    const store = startTestStore();
    const logs: string[] = [];
    hv.dom0.events.startAsync();
    const daemon = new ConsoleDaemon({ platform: hv.dom0, client: store.connect(0), log: (m) => logs.push(m), ...options });
    try {
      await daemon.start();
      await fn(hv, store, daemon, logs);
    } finally {
      await daemon.close();
      store.close();
    }
  });
  assertNoLeaks(['xs-watch', 'xs-transaction', 'xs-connection']);
}

function text(chunks: Buffer[]): string {
  return Buffer.concat(chunks).toString('latin1');
}

test('the daemon attaches on @introduceDomain, serves buffered and live output and input, detaches on @releaseDomain', () =>
  withDaemon(async (hv, store, daemon) => {
    const g = await createGuest(hv, store, 'alpha', 8192);
    g.front.write('early boot output\n'); // before anyone reads: buffered by the daemon
    await eventually(() => daemon.console(g.domid)?.stats.bytesOut === 18, 'the daemon to serve dom console');
    assert.equal(daemon.list()[0]?.buffered, 18);
    const stream = daemon.attach(g.domid);
    assert.throws(() => daemon.attach(g.domid), (e) => errorCode(e) === 'EBUSY');
    const got: Buffer[] = [];
    stream.on('data', (b: Buffer) => got.push(b));
    g.front.write('login: ');
    await eventually(() => text(got) === 'early boot output\nlogin: ', 'buffered then live output');
    const typed: Uint8Array[] = [];
    g.front.onData((b) => typed.push(b));
    stream.write('root\r');
    await eventually(() => Buffer.concat(typed).toString() === 'root\r', 'input');
    const ended = new Promise<void>((r) => stream.once('end', () => r()));
    stream.resume();
    await store.connect(0).release(g.domid);
    await ended; // the console went with the domain
    await eventually(() => daemon.console(g.domid) === undefined, 'detached');
    assert.throws(() => daemon.attach(g.domid), (e) => errorCode(e) === 'ENOENT');
    g.front.dispose();
    g.guest.dispose();
  }));

test('each domain gets its own console, bounded buffer and guest-<name>.log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-consoled-'));
  try {
    await withDaemon(
      async (hv, store, daemon) => {
        const a = await createGuest(hv, store, 'alpha', 8192);
        const b = await createGuest(hv, store, 'beta', 8192);
        await eventually(() => daemon.list().length === 2, 'two consoles');
        a.front.write('from alpha\n');
        const big = 'b'.repeat(20000);
        for (let i = 0; i < big.length; i += 2000) {
          b.front.write(big.slice(i, i + 2000));
          await eventually(() => b.front.queued === 0, 'beta flushed');
        }
        await eventually(() => daemon.console(b.domid)?.stats.bytesOut === 20000, 'beta drained');
        const info = daemon.list().find((c) => c.domid === b.domid)!;
        assert.equal(info.buffered, 8192, 'the limit key bounds the buffer');
        assert.equal(info.discarded, 20000 - 8192);
        assert.equal(daemon.list().find((c) => c.domid === a.domid)?.discarded, 0, 'the other console is untouched');
        for (const g of [a, b]) {
          await store.connect(0).release(g.domid);
          g.front.dispose();
          g.guest.dispose();
        }
        await eventually(() => daemon.list().length === 0, 'both released');
        // A console leaves the list when its release begins; its log is flushed as it closes.
        const logged = (name: string): string => (existsSync(join(dir, `guest-${name}.log`)) ? readFileSync(join(dir, `guest-${name}.log`), 'utf8') : '');
        await eventually(() => logged('beta').length >= 20000 && logged('alpha').length > 0, 'logs flushed');
        assert.equal(logged('alpha'), 'from alpha\n');
        assert.equal(logged('beta').length, 20000, 'the log keeps what the buffer dropped');
      },
      { logDir: dir },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a secondary console (device/console/1) connects through the xenbus handshake and unplugs cleanly', () =>
  withDaemon(
    async (hv, store, daemon) => {
      const g = await createGuest(hv, store, 'gamma', 8192);
      const dev: DeviceId = { frontClass: 'console', backClass: 'console', frontDomid: g.domid, backDomid: 0 as DomId, devid: 1 };
      let second: ConsoleFront | undefined;
      const fw = new FrontendWatcher(store.connect(g.domid), consoleFrontendDriver(g.guest, { onConsole: (f) => (second = f) }), {
        selfDomid: g.domid,
        frontClass: 'console',
      });
      await fw.start();
      const tool = store.connect(0);
      // libxl also writes console 0's backend dir at devid 0; the bus must leave it alone.
      const zero = `/local/domain/0/backend/console/${g.domid}/0`;
      await tool.write(`${zero}/frontend`, `/local/domain/${g.domid}/console`);
      await tool.write(`${zero}/state`, '1');
      await addDevice(tool, dev);
      await waitForState(tool, backendPath(dev), isState(XenbusStateConnected), 3000);
      await waitForState(tool, frontendPath(dev), isState(XenbusStateConnected), 3000);
      const s = daemon.attach(g.domid, 1);
      const got: Buffer[] = [];
      s.on('data', (b: Buffer) => got.push(b));
      second!.write('on the second console');
      await eventually(() => text(got) === 'on the second console', 'secondary output');
      assert.equal(await tool.readString(`${zero}/state`), '1', 'console 0\'s backend dir untouched');
      assert.equal(daemon.console(g.domid)?.stats.bytesOut ?? 0, 0, 'console 0 saw none of it');
      const r = await removeDevice(tool, dev, { timeoutMs: 3000 });
      assert.equal(r.timedOut, false);
      await fw.idle();
      await daemon.idle();
      assert.equal(daemon.console(g.domid, 1), undefined);
      await fw.close();
      tool.close();
      await store.connect(0).release(g.domid);
      g.front.dispose();
      g.guest.dispose();
    },
    { secondary: true },
  ));

test('console 0 keys that are not ours (type=ioemu) or malformed are left alone', () =>
  withDaemon(async (hv, store, daemon, logs) => {
    const g = guestWithConsole(hv);
    const tool = store.connect(0);
    await prepareDomainHome(tool, g.domid);
    await writePrimaryConsole(tool, g.domid, { frame: 1, port: g.port, type: 'ioemu' });
    await tool.introduce(g.domid, 0, 0);
    await daemon.idle();
    await new Promise((r) => setTimeout(r, 20));
    await daemon.idle();
    assert.ok(daemon.console(g.domid) === undefined, 'ioemu consoles belong to qemu');
    await tool.write(`/local/domain/${g.domid}/console/port`, 'not-a-port');
    await tool.write(`/local/domain/${g.domid}/console/type`, 'xenconsoled');
    await eventually(() => logs.some((l) => /bad ring-ref .* or port 'not-a-port'/.test(l)), 'the complaint');
    assert.ok(daemon.console(g.domid) === undefined);
    await tool.write(`/local/domain/${g.domid}/console/port`, String(g.port));
    await eventually(() => daemon.console(g.domid) !== undefined, 'served once the keys are right');
    await tool.release(g.domid);
    await eventually(() => daemon.console(g.domid) === undefined, 'released');
    tool.close();
    g.front.dispose();
    g.guest.dispose();
  }));

test("a served console's tty key is written (libxl's create waits for it), and only once it is served", () =>
  withDaemon(
    async (hv, store, daemon) => {
      const tool = store.connect(0);
      const g = await createGuest(hv, store, 'delta', 8192);
      await eventually(() => daemon.console(g.domid) !== undefined, 'served');
      await daemon.idle();
      assert.equal(await tool.readString(`/local/domain/${g.domid}/console/tty`), `xenpv:dom${g.domid}`);
      // A console whose keys are not ours (type ioemu) is not served: no tty from us.
      const h = guestWithConsole(hv);
      await prepareDomainHome(tool, h.domid, 'epsilon');
      const si = h.guest.startInfo!;
      await writePrimaryConsole(tool, h.domid, { frame: si.consoleFrame, port: si.consolePort, type: 'ioemu' });
      await tool.introduce(h.domid, si.storeFrame, si.storePort);
      await eventually(() => daemon.list().length === 1, 'one console');
      await daemon.idle();
      await assert.rejects(tool.readString(`/local/domain/${h.domid}/console/tty`), (e) => errorCode(e) === 'ENOENT');
      for (const x of [g, h]) {
        await tool.release(x.domid);
        x.front.dispose();
        x.guest.dispose();
      }
      tool.close();
    },
    { tty: (d) => `xenpv:dom${d}` },
  ));
