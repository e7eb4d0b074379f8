/**
 * What of the xen platform can be checked on a machine that is not a Xen domain: that it says
 * why it is unavailable instead of failing, that its ioctl numbers are the C headers' numbers,
 * and that its native pieces behave (a retired mapping leaves zeros, not a crash; the fd poller
 * wakes the event loop; copy validation; a failed ioctl becomes a XenpvError named by errno).
 * The proof against real Xen is `npm run test:realxen` (scripts/realxen/).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GNTST } from '../../abi/grant_table.js';
import { XenpvError, type DomId, type EvtchnPort, type GrantRef } from '../../base/index.js';
import { loadNative, type Native } from './ffi.js';
import { IOCTL_EVTCHN_BIND_INTERDOMAIN, IOCTL_EVTCHN_BIND_STATIC, IOCTL_EVTCHN_BIND_UNBOUND_PORT, IOCTL_EVTCHN_BIND_VIRQ, IOCTL_EVTCHN_NOTIFY, IOCTL_EVTCHN_UNBIND, XenEventOps } from './events.js';
import { IOCTL_GNTDEV_GRANT_COPY, IOCTL_GNTDEV_MAP_GRANT_REF, IOCTL_GNTDEV_UNMAP_GRANT_REF, XenGrantOps } from './grants.js';
import { IOCTL_GNTALLOC_ALLOC_GREF, IOCTL_GNTALLOC_DEALLOC_GREF, XenDomainMemory } from './memory.js';
import { loadXenPlatform, xenUnavailableReason } from './platform.js';
import { FdReader } from './poller.js';
import { MappedRegion } from './region.js';

const onXen = existsSync('/dev/xen/evtchn');

async function native(): Promise<Native> {
  const n = await loadNative();
  assert.ok(n.ok, n.ok ? '' : n.reason);
  return n.native;
}

test('without /dev/xen the platform is unavailable, with the reason', { skip: onXen && 'this machine is a Xen domain' }, async () => {
  const r = await loadXenPlatform();
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /\/dev\/xen/);
});

test('a /dev/xen without evtchn names the missing device', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-devxen-'));
  try {
    writeFileSync(join(dir, 'gntdev'), '');
    assert.match(xenUnavailableReason(dir) ?? '', /evtchn is missing/);
    const r = await loadXenPlatform({ devDir: dir });
    assert.equal(r.ok, false);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("ioctl numbers are the kernel headers' numbers", { skip: !existsSync('/usr/include/xen/sys/gntdev.h') && 'no libxen-dev headers' }, (t) => {
  const names = {
    IOCTL_GNTDEV_MAP_GRANT_REF, IOCTL_GNTDEV_UNMAP_GRANT_REF, IOCTL_GNTDEV_GRANT_COPY,
    IOCTL_GNTALLOC_ALLOC_GREF, IOCTL_GNTALLOC_DEALLOC_GREF,
    IOCTL_EVTCHN_BIND_VIRQ, IOCTL_EVTCHN_BIND_INTERDOMAIN, IOCTL_EVTCHN_BIND_UNBOUND_PORT, IOCTL_EVTCHN_UNBIND, IOCTL_EVTCHN_NOTIFY,
    IOCTL_EVTCHN_BIND_STATIC,
  };
  if (spawnSync('gcc', ['--version']).status !== 0) return t.skip('no gcc');
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-ioc-'));
  try {
    const c = ['#include <stdio.h>', '#include <stdint.h>', '#include <sys/ioctl.h>', 'typedef uint16_t domid_t;', '#include <xen/sys/gntdev.h>',
      '#include <xen/sys/gntalloc.h>', '#include <xen/sys/evtchn.h>',
      // Xen 4.17's copy of the header predates Linux 6.6's BIND_STATIC: the documented definition.
      '#ifndef IOCTL_EVTCHN_BIND_STATIC', 'struct ioctl_evtchn_bind { unsigned int port; };',
      "#define IOCTL_EVTCHN_BIND_STATIC _IOC(_IOC_NONE, 'E', 7, sizeof(struct ioctl_evtchn_bind))", '#endif', 'int main(void) {',
      ...Object.keys(names).map((k) => `printf("${k} %lu\\n", (unsigned long)${k});`), 'return 0; }'].join('\n');
    writeFileSync(join(dir, 'ioc.c'), c);
    execFileSync('gcc', ['-o', join(dir, 'ioc'), join(dir, 'ioc.c')]);
    const fromC = Object.fromEntries(execFileSync(join(dir, 'ioc'), { encoding: 'utf8' }).trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
    assert.deepEqual(names, fromC);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('a retired region reads zeros under its old views instead of faulting', async () => {
  const n = await native();
  const r = MappedRegion.anonymous(n, 8192);
  const [a, b] = r.pages(4096);
  a![0] = 7;
  b![4095] = 9;
  assert.equal(a![0], 7);
  r.retire();
  assert.equal(r.mapped, false);
  assert.equal(a![0], 0);
  b![4095] = 1; // lands in the placeholder, harmlessly
  r.retire();
});

test('the fd reader delivers a FIFO\'s bytes while the event loop runs, and stops when woken', { skip: spawnSync('mkfifo', ['--version']).status !== 0 && 'no mkfifo' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-fifo-'));
  const path = join(dir, 'f');
  execFileSync('mkfifo', [path]);
  const fd = openSync(path, constants.O_RDWR); // blocking reads, and open never waits for a writer
  try {
    let ticks = 0;
    const tick = setInterval(() => ticks++, 5); // the loop keeps running while the read waits
    const got: string[] = [];
    const reader = new FdReader(fd, 256, (b) => got.push(Buffer.from(b).toString()), (err) => assert.fail(err), () => assert.fail('end of file'));
    reader.start();
    await new Promise((r) => setTimeout(r, 120));
    writeFileSync(fd, 'ping');
    while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
    clearInterval(tick);
    assert.deepEqual(got, ['ping']);
    assert.ok(ticks > 5, `event loop ran ${ticks} ticks while reading`);
    let woken = false;
    await reader.stop(() => {
      woken = true;
      writeFileSync(fd, 'x');
    });
    assert.ok(woken);
    assert.deepEqual(got, ['ping'], 'bytes after stop are not delivered');
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true });
  }
});

test('grant copy: bad ops get GNTST_bad_copy_arg, local copies are done here', async () => {
  const n = await native();
  const fd = openSync('/dev/null', 'r+');
  try {
    const ops = new XenGrantOps(n, fd, new XenDomainMemory(n, undefined));
    const src = new Uint8Array([1, 2, 3, 4]);
    const dst = new Uint8Array(4);
    const st = ops.copy([
      { source: { kind: 'local', buf: src, offset: 1 }, dest: { kind: 'local', buf: dst, offset: 0 }, len: 3 },
      { source: { kind: 'local', buf: src, offset: 2 }, dest: { kind: 'local', buf: dst, offset: 0 }, len: 3 },
      { source: { kind: 'grant', domid: 1 as DomId, ref: 8 as GrantRef, offset: 4095 }, dest: { kind: 'local', buf: dst, offset: 0 }, len: 2 },
    ]);
    assert.deepEqual(st, [0, GNTST.GNTST_bad_copy_arg, GNTST.GNTST_bad_copy_arg]);
    assert.deepEqual([...dst], [2, 3, 4, 0]);
    // A grant op reaches the ioctl, which /dev/null refuses: a general error, not a throw.
    const g = ops.copy([{ source: { kind: 'grant', domid: 1 as DomId, ref: 8 as GrantRef, offset: 0 }, dest: { kind: 'local', buf: dst, offset: 0 }, len: 4 }]);
    assert.deepEqual(g, [GNTST.GNTST_general_error]);
    // The first `count` ops into the caller's array; what lies past them is neither done nor written.
    const status = [-100, -100, -100];
    const out = new Uint8Array(4);
    const local = (at: number) => ({ source: { kind: 'local', buf: src, offset: at }, dest: { kind: 'local', buf: out, offset: at }, len: 1 }) as const;
    assert.equal(ops.copy([local(0), local(1), local(2)], 2, status), status);
    assert.deepEqual(status, [0, 0, -100]);
    assert.deepEqual([...out], [1, 2, 0, 0]);
    ops.dispose();
  } finally {
    closeSync(fd);
  }
});

test('a refused ioctl is a XenpvError named by errno; private pages cannot be granted', async () => {
  const n = await native();
  const fd = openSync('/dev/null', 'r+');
  try {
    const ev = new XenEventOps(n, fd, 0 as DomId);
    assert.throws(() => ev.bindInterdomain(1 as DomId, 5 as EvtchnPort, () => undefined), (e: unknown) => e instanceof XenpvError && e.code === 'ENOTTY');
    await ev.close();
    const mem = new XenDomainMemory(n, undefined);
    const [f] = mem.allocPages(1);
    assert.equal(mem.page(f!).length, 4096);
    assert.throws(() => mem.grantOf(0 as DomId, f!, false), (e: unknown) => e instanceof XenpvError && e.code === 'ENODEV');
    mem.freePages([f!]);
    assert.throws(() => mem.page(f!), RangeError);
    const grants = new XenGrantOps(n, fd, mem);
    assert.throws(() => grants.map(1 as DomId, [8 as GrantRef], true), (e: unknown) => e instanceof XenpvError && e.code === 'ENOTTY');
  } finally {
    closeSync(fd);
  }
});
