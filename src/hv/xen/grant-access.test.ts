/**
 * The xen platform's granting side without a Xen host: the gntalloc request carries the
 * grantee and the writable flag of each call (layouts checked against the C headers), a grant
 * maps a device page under the frame with its bytes kept and ends by mapping private pages
 * back, endAccess refuses while the grantee is seen mapping, and the privcmd/evtchn pieces
 * say why they cannot work where the device is not Xen's. gntalloc is played by a file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XenpvError, type DomId, type EvtchnPort, type Frame, type GrantRef } from '../../base/index.js';
import { XenEventOps } from './events.js';
import { loadNative, type Native } from './ffi.js';
import { GrantTableView, IOCTL_PRIVCMD_MMAPBATCH_V2, MMAPBATCH_V2_LAYOUT, QUERY_SIZE_LAYOUT, SETUP_TABLE_LAYOUT } from './grant-status.js';
import { ALLOC_GREF_LAYOUT, DEALLOC_GREF_LAYOUT, encodeAllocGref, GNTALLOC_FLAG_WRITABLE, IOCTL_GNTALLOC_ALLOC_GREF, IOCTL_GNTALLOC_DEALLOC_GREF, XenDomainMemory } from './memory.js';
import { MappedRegion } from './region.js';

async function native(): Promise<Native> {
  const n = await loadNative();
  assert.ok(n.ok, n.ok ? '' : n.reason);
  return n.native;
}

const haveGcc = spawnSync('gcc', ['--version']).status === 0 && existsSync('/usr/include/xen/sys/gntalloc.h');

/** Compile `body` (printf lines) against the Xen headers and parse "name value" lines. */
function fromC(body: string[]): Record<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-lay-'));
  try {
    const c = ['#include <stdio.h>', '#include <stddef.h>', '#include <stdint.h>', '#include <sys/ioctl.h>',
      '#define __XEN_INTERFACE_VERSION__ 0x00040e00', '#include <xen/xen.h>', '#include <xen/grant_table.h>',
      '#include <xen/sys/privcmd.h>', '#include <xen/sys/gntalloc.h>', 'int main(void) {',
      ...body, 'return 0; }'].join('\n');
    writeFileSync(join(dir, 'l.c'), c);
    execFileSync('gcc', ['-o', join(dir, 'l'), join(dir, 'l.c')]);
    return Object.fromEntries(execFileSync(join(dir, 'l'), { encoding: 'utf8' }).trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
  } finally {
    rmSync(dir, { recursive: true });
  }
}

const off = (name: string, type: string, field: string): string => `printf("${name} %lu\\n", (unsigned long)offsetof(${type}, ${field}));`;
const size = (name: string, type: string): string => `printf("${name} %lu\\n", (unsigned long)sizeof(${type}));`;

test('gntalloc, privcmd and grant-table layouts are the C headers\' layouts', { skip: !haveGcc && 'no gcc or libxen-dev headers' }, () => {
  const a = 'struct ioctl_gntalloc_alloc_gref';
  const d = 'struct ioctl_gntalloc_dealloc_gref';
  const m = 'privcmd_mmapbatch_v2_t';
  const q = 'struct gnttab_query_size';
  const s = 'struct gnttab_setup_table';
  const c = fromC([
    size('a.size', a), off('a.domid', a, 'domid'), off('a.flags', a, 'flags'), off('a.count', a, 'count'), off('a.index', a, 'index'), off('a.grefIds', a, 'gref_ids'),
    'printf("writable %d\\n", GNTALLOC_FLAG_WRITABLE);',
    size('d.size', d), off('d.index', d, 'index'), off('d.count', d, 'count'),
    `printf("mmapbatch %lu\\n", (unsigned long)IOCTL_PRIVCMD_MMAPBATCH_V2);`,
    size('m.size', m), off('m.num', m, 'num'), off('m.dom', m, 'dom'), off('m.addr', m, 'addr'), off('m.arr', m, 'arr'), off('m.err', m, 'err'),
    size('q.size', q), off('q.nrFrames', q, 'nr_frames'), off('q.maxNrFrames', q, 'max_nr_frames'), off('q.status', q, 'status'),
    size('s.size', s), off('s.nrFrames', s, 'nr_frames'), off('s.status', s, 'status'), off('s.frameList', s, 'frame_list'),
  ]);
  assert.deepEqual({ size: c['a.size'], domid: c['a.domid'], flags: c['a.flags'], count: c['a.count'], index: c['a.index'], grefIds: c['a.grefIds'] }, ALLOC_GREF_LAYOUT);
  assert.deepEqual({ size: c['d.size'], index: c['d.index'], count: c['d.count'] }, DEALLOC_GREF_LAYOUT);
  assert.equal(GNTALLOC_FLAG_WRITABLE, c['writable']);
  assert.equal(IOCTL_PRIVCMD_MMAPBATCH_V2, c['mmapbatch']);
  assert.deepEqual({ size: c['m.size'], num: c['m.num'], dom: c['m.dom'], addr: c['m.addr'], arr: c['m.arr'], err: c['m.err'] }, MMAPBATCH_V2_LAYOUT);
  assert.deepEqual({ size: c['q.size'], dom: 0, nrFrames: c['q.nrFrames'], maxNrFrames: c['q.maxNrFrames'], status: c['q.status'] }, QUERY_SIZE_LAYOUT);
  assert.deepEqual({ size: c['s.size'], dom: 0, nrFrames: c['s.nrFrames'], status: c['s.status'], frameList: c['s.frameList'] }, SETUP_TABLE_LAYOUT);
});

test('the gntalloc request names the grantee and the writable flag of each call', () => {
  const ro = new DataView(encodeAllocGref(7 as DomId, true).buffer);
  const rw = new DataView(encodeAllocGref(0x7ff0 as DomId, false).buffer);
  assert.deepEqual([ro.getUint16(0, true), ro.getUint16(2, true), ro.getUint32(4, true)], [7, 0, 1]);
  assert.deepEqual([rw.getUint16(0, true), rw.getUint16(2, true), rw.getUint32(4, true)], [0x7ff0, GNTALLOC_FLAG_WRITABLE, 1]);
});

/** A gntalloc played by a 16-page file: ALLOC hands out the next page, DEALLOC is recorded. */
function fakeGntalloc(n: Native, fd: number) {
  const allocs: { domid: number; flags: number }[] = [];
  const deallocs: bigint[] = [];
  let next = 0;
  const fake: Native = {
    ...n,
    ioctl: (f, req, arg) => {
      if (f !== fd) return n.ioctl(f, req, arg);
      const dv = new DataView(arg!.buffer, arg!.byteOffset);
      if (req === IOCTL_GNTALLOC_ALLOC_GREF) {
        allocs.push({ domid: dv.getUint16(0, true), flags: dv.getUint16(2, true) });
        dv.setBigUint64(8, BigInt(next * 4096), true);
        dv.setUint32(16, 100 + next++, true);
        return 0;
      }
      if (req === IOCTL_GNTALLOC_DEALLOC_GREF) deallocs.push(dv.getBigUint64(0, true));
      return 0;
    },
  };
  return { fake, allocs, deallocs };
}

function withFile(pages: number, fn: (fd: number) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-gntalloc-'));
  const fd = openSync(join(dir, 'pages'), 'w+');
  ftruncateSync(fd, pages * 4096);
  return Promise.resolve(fn(fd)).finally(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true });
  });
}

test('grantAccess maps a page granted to that domain under the frame; endAccess maps private pages back', () =>
  withFile(16, async (fd) => {
    const { fake, allocs, deallocs } = fakeGntalloc(await native(), fd);
    const mem = new XenDomainMemory(fake, fd);
    const [f] = mem.allocPages(1) as [Frame];
    const page = mem.page(f);
    page.fill(0x11);
    const ref = mem.grantOf(5 as DomId, f, true);
    assert.equal(ref, 100);
    assert.deepEqual(allocs, [{ domid: 5, flags: 0 }]);
    const g = mem.grantOfFrame(f);
    assert.deepEqual([g?.ref, g?.remote, g?.readonly], [100, 5, true]);
    const onDisk = new Uint8Array(4096);
    readSync(fd, onDisk, 0, 4096, 0);
    assert.equal(onDisk[4095], 0x11, 'the bytes moved to the granted page');
    page[0] = 0x22; // the same view now writes the granted page
    readSync(fd, onDisk, 0, 4096, 0);
    assert.equal(onDisk[0], 0x22);
    assert.throws(() => mem.grantOf(6 as DomId, f, false), (e: unknown) => e instanceof XenpvError && e.code === 'EBUSY');
    assert.equal(mem.endGrant(ref), true);
    assert.deepEqual(deallocs, [0n]);
    page[1] = 0x33; // private again: the granted page no longer changes
    readSync(fd, onDisk, 0, 4096, 0);
    assert.deepEqual([page[0], page[1], onDisk[1]], [0x22, 0x33, 0x11]);
    assert.throws(() => mem.endGrant(ref), (e: unknown) => e instanceof XenpvError && e.code === 'EINVAL');
    const ref2 = mem.grantOf(6 as DomId, f, false);
    assert.deepEqual(allocs[1], { domid: 6, flags: GNTALLOC_FLAG_WRITABLE });
    mem.freePages([f]); // ends the grant too
    assert.deepEqual(deallocs, [0n, 4096n]);
    assert.throws(() => mem.endGrant(ref2), (e: unknown) => e instanceof XenpvError && e.code === 'EINVAL');
  }));

test('endAccess is false, changing nothing, while the grantee is seen mapping; unknown counts as not mapped', () =>
  withFile(4, async (fd) => {
    const { fake, deallocs } = fakeGntalloc(await native(), fd);
    const mem = new XenDomainMemory(fake, fd);
    const [f] = mem.allocPages(1) as [Frame];
    const ref = mem.grantOf(3 as DomId, f, false);
    let mapped: boolean | undefined = true;
    const asked: [GrantRef, DomId][] = [];
    mem.inUse = (r, d) => {
      asked.push([r, d]);
      return mapped;
    };
    assert.equal(mem.endGrant(ref), false);
    assert.equal(mem.grantOfFrame(f)?.ref, ref, 'still granted');
    assert.deepEqual(deallocs, []);
    mapped = undefined;
    assert.equal(mem.endGrant(ref), true);
    assert.deepEqual(asked, [[ref, 3], [ref, 3]]);
    assert.deepEqual(deallocs, [0n]);
    mem.freePages([f]);
  }));

test('without gntalloc nothing can be granted, and the frame stays usable', async () => {
  const mem = new XenDomainMemory(await native(), undefined);
  const [f] = mem.allocPages(1) as [Frame];
  assert.throws(() => mem.grantOf(0 as DomId, f, false), (e: unknown) => e instanceof XenpvError && e.code === 'ENODEV');
  mem.page(f)[9] = 1;
  assert.equal(mem.page(f)[9], 1);
  mem.freePages([f]);
});

test('a region swapped to device pages and back keeps its bytes and its views', () =>
  withFile(1, async (fd) => {
    const n = await native();
    const r = MappedRegion.anonymous(n, 4096);
    const v = new Uint8Array(r.buffer);
    v.fill(9);
    r.adoptDevicePages(fd, 0n, 'test page');
    const disk = new Uint8Array(1);
    readSync(fd, disk, 0, 1, 100);
    assert.equal(disk[0], 9);
    r.toPrivatePages('test page');
    v[100] = 4;
    readSync(fd, disk, 0, 1, 100);
    assert.deepEqual([v[100], disk[0]], [4, 9]);
    r.retire();
    assert.throws(() => r.adoptDevicePages(fd, 0n, 'x'), (e: unknown) => e instanceof XenpvError && e.code === 'EINVAL');
  }));

test('adopt: a device that is not evtchn says ENOSYS with the reason; bad ports are EINVAL', async () => {
  const n = await native();
  const fd = openSync('/dev/null', 'r+');
  try {
    const ev = new XenEventOps(n, fd, 0 as DomId);
    assert.throws(() => ev.adopt(3 as EvtchnPort, () => undefined), (e: unknown) => e instanceof XenpvError && e.code === 'ENOSYS' && /BIND_STATIC/.test(e.message));
    assert.throws(() => ev.adopt(0 as EvtchnPort, () => undefined), (e: unknown) => e instanceof XenpvError && e.code === 'EINVAL');
    assert.deepEqual(ev.ports, []);
    await ev.close();
  } finally {
    closeSync(fd);
  }
});

test('the grant table view says why it cannot open without privcmd', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-devxen-'));
  try {
    const r = GrantTableView.open(await native(), dir);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /privcmd is missing/);
    writeFileSync(join(dir, 'privcmd'), '');
    const r2 = GrantTableView.open(await native(), dir);
    assert.equal(r2.ok, false, 'a plain file refuses the hypercall');
  } finally {
    rmSync(dir, { recursive: true });
  }
});
