/**
 * The host in-process (as `xenpv demo` uses it): the xenstore tree libxl writes, shutdown
 * actions, and a clean host after destroy (the host's own accounting).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDomainConfig } from '../config/index.js';
import { Host } from './host.js';
import { accounting } from './views.js';
import { waitUntil } from '../../base/testing.js';

async function withHost(fn: (host: Host, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-host-'));
  await writeFile(join(dir, 'disk.img'), '');
  await truncate(join(dir, 'disk.img'), 1 << 20);
  const host = await Host.start({ runDir: join(dir, 'run'), storeSocket: false, maxMachineBytes: 2 ** 28 });
  const base = host.hv.framesInUse;
  const watches = (await accounting(host, base)).dom0Watches;
  try {
    await fn(host, dir);
    const a = await accounting(host, base);
    assert.deepEqual([a.dom0Watches, a.dom0Transactions], [watches, 0]);
    assert.deepEqual(
      [a.domains, a.zombies, a.guestFrames, a.dom0Ports, a.dom0Maptrack, a.foreignPins, a.storeLeftovers, a.consoles, a.storeAccounting],
      [0, 0, 0, 0, 0, 0, [], 0, []],
    );
  } finally {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const cfg = (text: string): ReturnType<typeof parseDomainConfig> =>
  parseDomainConfig(`memory = 4\nkernel = "builtin:idle"\n${text}`, { source: 't.cfg', makeUuid: () => '12345678-1234-1234-1234-123456789abc' });

const until = (cond: () => boolean, ms = 5000): Promise<void> => waitUntil(cond, 'condition', ms, 20);

test('create writes the tree libxl writes, with its permissions', async () => {
  await withHost(async (host, dir) => {
    const d = await host.create(cfg(`name = "t1"\nvcpus = 1\nmaxvcpus = 2\ndisk = ['disk.img,raw,xvda,rw']\nvif = ['mac=00:16:3e:00:00:07']`), { baseDir: dir });
    const s = host.store;
    const home = `/local/domain/${d.domid}`;
    assert.equal(await s.readString(`${home}/name`), 't1');
    assert.equal(await s.readString(`${home}/vm`), '/vm/12345678-1234-1234-1234-123456789abc');
    assert.equal(await s.readString(`${home}/memory/target`), '4096');
    assert.equal(await s.readString(`${home}/cpu/0/availability`), 'online');
    assert.equal(await s.readString(`${home}/cpu/1/availability`), 'offline');
    assert.equal(await s.readString('/vm/12345678-1234-1234-1234-123456789abc/name'), 't1');
    assert.deepEqual(await s.getPerms(home), [{ access: 'n', domid: 0 }, { access: 'r', domid: d.domid }]);
    assert.deepEqual(await s.getPerms(`${home}/device`), [{ access: 'n', domid: d.domid }]);
    assert.equal(await s.readString(`${home}/device/vbd/51712/virtual-device`), '51712');
    assert.deepEqual(await s.getPerms(`${home}/device/vbd/51712`), [{ access: 'n', domid: d.domid }, { access: 'r', domid: 0 }]);
    const be = `/local/domain/0/backend/vbd/${d.domid}/51712`;
    assert.equal(await s.readString(`${be}/params`), join(dir, 'disk.img'));
    assert.deepEqual(await s.getPerms(be), [{ access: 'n', domid: 0 }, { access: 'r', domid: d.domid }]);
    assert.equal(await s.readString(`/local/domain/0/backend/vif/${d.domid}/0/mac`), '00:16:3e:00:00:07');
    assert.ok(await s.isDomainIntroduced(d.domid));
    // The guest's own frontends connect over its store ring.
    await until(() => d.disks.get(51712)!.back.isConnected);
    await host.destroy('t1');
    assert.equal(host.list().length, 1);
  });
});

test('on_crash=preserve keeps a crashed domain, shown as s + reason c; destroy frees it', async () => {
  await withHost(async (host) => {
    await host.create(cfg('name = "c1"\nkernel = "builtin:crash"\non_crash = "preserve"'));
    await until(() => host.list().some((r) => r.name === 'c1' && r.state === '---sc-'));
    await host.destroy('c1');
  });
});

test('on_poweroff=destroy removes the domain when the guest powers off; a taken name is refused', async () => {
  await withHost(async (host) => {
    await host.create(cfg('name = "p1"'), { paused: true });
    assert.equal(host.list().find((r) => r.name === 'p1')?.state, '--p---');
    await assert.rejects(host.create(cfg('name = "p1"')), { code: 'EEXIST' });
    host.unpause('p1');
    await host.shutdown('p1', 'poweroff', 5000);
    assert.ok(!host.list().some((r) => r.name === 'p1'));
  });
});

test('a missing image fails create and leaves nothing behind', async () => {
  await withHost(async (host, dir) => {
    await assert.rejects(host.create(cfg("name = 'm1'\ndisk = ['nope.img,raw,xvda,rw']"), { baseDir: dir }), /nope\.img/);
    assert.equal(host.domains.size, 0);
  });
});

test('on_crash=restart stops after a few restarts of a guest that crashes at once', async () => {
  await withHost(async (host) => {
    await host.create(cfg('name = "loop"\nkernel = "builtin:crash"\non_crash = "restart"'));
    await until(() => host.domains.size === 0 && host.quiescent, 15_000);
    // The first domid and five restarts: the domain ids went up to 6 before it was given up.
    assert.ok(host.hv.info(6) === undefined && host.list().length === 1);
  });
});

test('two store clients in one guest share its ring: replies and same-token watches stay apart', async () => {
  await withHost(async (host, dir) => {
    // A guest program opening two connections through platform.openStore() (guest/store-ring.ts).
    await writeFile(join(dir, 'two.mjs'), `export default async function main(ctx) {
  const { XsClient } = await import(${JSON.stringify(new URL('../../xenstore/client/index.js', import.meta.url).href)});
  const a = new XsClient(await ctx.platform.openStore());
  const b = new XsClient(await ctx.platform.openStore());
  const home = '/local/domain/' + ctx.domid + '/data';
  const wa = a.watch(home + '/x', 'T');
  const wb = b.watch(home + '/y', 'T');
  await Promise.all([wa.ready, wb.ready]);
  const ia = wa[Symbol.asyncIterator](), ib = wb[Symbol.asyncIterator]();
  const first = [(await ia.next()).value.path, (await ib.next()).value.path];
  await Promise.all([a.write(home + '/x', '1'), b.write(home + '/y', '2')]);
  const second = [(await ia.next()).value.path, (await ib.next()).value.path];
  const reads = await Promise.all([a.readString(home + '/y'), b.readString(home + '/x')]);
  ctx.log(JSON.stringify({ first, second, reads }));
  a.close(); b.close();
}
`);
    const d = await host.create(cfg(`name = "two"\nkernel = "two.mjs"\non_poweroff = "preserve"`), { baseDir: dir });
    await until(() => host.hv.info(d.domid)?.state === 'shutdown', 10_000);
    const line = host.hv.console(d.domid).find((l) => l.startsWith('{'));
    const home = `/local/domain/${d.domid}/data`;
    assert.deepEqual(JSON.parse(line ?? 'null'), { first: [`${home}/x`, `${home}/y`], second: [`${home}/x`, `${home}/y`], reads: ['2', '1'] });
    await host.destroy('two');
  });
});
