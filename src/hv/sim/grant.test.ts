/**
 * Grant table v1 (grant/): every GNTST_* path a grantee can hit, the GTF_reading/GTF_writing
 * protocol, end-access-while-mapped (reliability.md R8), copy, limits and teardown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GTF_reading, GTF_writing, GNTST_bad_copy_arg, GNTST_bad_domain, GNTST_bad_gntref, GNTST_okay, GNTST_permission_denied } from '../../abi/grant_table.js';
import { errorCode, type DomId, type Frame, type GrantRef } from '../../base/index.js';
import { DW } from '../../memory/index.js';
import { SimPlatform } from './platform.js';
import { withHypervisor } from './testing.js';
import type { Hypervisor } from './hypervisor.js';

function guest(hv: Hypervisor, config = {}): { domid: DomId; p: SimPlatform } {
  const domid = hv.createDomain({ memoryPages: 64, ...config });
  return { domid, p: SimPlatform.attach(hv.platformHandle(domid)) };
}

/** The shared entry's flags word as the granting guest sees it. */
function flags(p: SimPlatform, ref: number): number {
  return Atomics.load(p.grants.view(p.domid).shared, ref * 2) & 0xffff;
}

function mapCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return errorCode(err);
  }
  return 'no error';
}

test('map a granted page: the grantee sees the granter\'s bytes, GTF_reading|GTF_writing while mapped', () =>
  withHypervisor((hv) => {
    const { p } = guest(hv);
    const [frame] = p.memory.allocPages(1) as [Frame];
    p.memory.page(frame).set([1, 2, 3], 100);
    const ref = p.grants.grantAccess(0 as DomId, frame, false);
    const m = hv.dom0.grants.map(p.domid, [ref], true);
    assert.deepEqual([...m.pages[0]!.subarray(100, 103)], [1, 2, 3]);
    m.pages[0]![200] = 42;
    assert.equal(p.memory.page(frame)[200], 42);
    assert.equal(flags(p, ref) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
    // R8: ending access while mapped fails and changes nothing.
    assert.equal(p.grants.endAccess(ref), false);
    assert.equal(flags(p, ref) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
    m.dispose();
    assert.equal(flags(p, ref) & (GTF_reading | GTF_writing), 0);
    assert.equal(p.grants.endAccess(ref), true);
    assert.equal(flags(p, ref), 0);
    p.dispose();
  }));

test('a read-only map of a read-write grant sets GTF_reading only; a second writable map adds GTF_writing', () =>
  withHypervisor((hv) => {
    const { p } = guest(hv);
    const [frame] = p.memory.allocPages(1) as [Frame];
    const ref = p.grants.grantAccess(0 as DomId, frame, false);
    const ro = hv.dom0.grants.map(p.domid, [ref], false);
    assert.equal(flags(p, ref) & (GTF_reading | GTF_writing), GTF_reading);
    const rw = hv.dom0.grants.map(p.domid, [ref], true);
    assert.equal(flags(p, ref) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
    rw.dispose();
    assert.equal(flags(p, ref) & (GTF_reading | GTF_writing), GTF_reading, 'writing clears with the last writer');
    assert.equal(p.grants.endAccess(ref), false);
    ro.dispose();
    assert.equal(p.grants.endAccess(ref), true);
    p.dispose();
  }));

test('GNTST errors of map: bad ref, not permit_access, wrong domid, read-only violated, bad domain, bad page', () =>
  withHypervisor((hv) => {
    const { p } = guest(hv);
    const other = guest(hv);
    const [frame] = p.memory.allocPages(1) as [Frame];
    const entries = hv.table.get(p.domid, DW.GNT_ENTRIES);
    const d0 = hv.dom0.grants;
    assert.equal(mapCode(() => d0.map(p.domid, [entries as GrantRef], false)), 'GNTST_bad_gntref');
    assert.equal(mapCode(() => d0.map(p.domid, [-1 as GrantRef], false)), 'GNTST_bad_gntref');
    assert.equal(mapCode(() => d0.map(p.domid, [9 as GrantRef], false)), 'GNTST_permission_denied', 'never granted');
    const toOther = p.grants.grantAccess(other.domid, frame, false);
    assert.equal(mapCode(() => d0.map(p.domid, [toOther], false)), 'GNTST_permission_denied', 'granted to someone else');
    const ro = p.grants.grantAccess(0 as DomId, frame, true);
    assert.equal(mapCode(() => d0.map(p.domid, [ro], true)), 'GNTST_permission_denied', 'read-only');
    d0.map(p.domid, [ro], false).dispose();
    assert.equal(mapCode(() => d0.map(40 as DomId, [ro], false)), 'GNTST_bad_domain');
    const badFrame = p.grants.grantAccess(0 as DomId, 100000 as Frame, false);
    assert.equal(mapCode(() => d0.map(p.domid, [badFrame], false)), 'GNTST_bad_page');
    assert.equal(flags(p, badFrame) & (GTF_reading | GTF_writing), 0, 'a refused map leaves no flag behind');
    // The grantee named in the entry can map it.
    other.p.grants.map(p.domid, [toOther], true).dispose();
    for (const r of [toOther, ro, badFrame]) assert.equal(p.grants.endAccess(r), true);
    p.dispose();
    other.p.dispose();
  }));

test('map is all or nothing: a bad ref in the batch releases the ones already pinned', () =>
  withHypervisor((hv) => {
    const { p } = guest(hv);
    const frames = p.memory.allocPages(2);
    const refs = frames.map((f) => p.grants.grantAccess(0 as DomId, f, false));
    assert.equal(mapCode(() => hv.dom0.grants.map(p.domid, [refs[0]!, refs[1]!, 3 as GrantRef], true)), 'GNTST_permission_denied');
    for (const r of refs) assert.equal(flags(p, r) & (GTF_reading | GTF_writing), 0);
    assert.equal(hv.table.get(0, DW.MAPTRACK_USED), 0);
    for (const r of refs) assert.equal(p.grants.endAccess(r), true);
    p.dispose();
  }));

test('maptrack limit: GNTST_no_space past max live mappings; pin overflow: GNTST_general_error', () =>
  withHypervisor(
    (hv) => {
      const { p } = guest(hv);
      const [frame] = p.memory.allocPages(1) as [Frame];
      const ref = p.grants.grantAccess(0 as DomId, frame, true);
      const maps = [];
      for (let i = 0; i < 8; i++) maps.push(hv.dom0.grants.map(p.domid, [ref], false));
      assert.equal(mapCode(() => hv.dom0.grants.map(p.domid, [ref], false)), 'GNTST_no_space');
      for (const m of maps) m.dispose();
      assert.equal(p.grants.endAccess(ref), true);
      // A domain with room for many mappings still cannot push one pin count past 127.
      const big = guest(hv, { maxMaptrack: 300 });
      const ref2 = p.grants.grantAccess(big.domid, frame, true);
      const many = [];
      for (let i = 0; i < 127; i++) many.push(big.p.grants.map(p.domid, [ref2], false));
      assert.equal(mapCode(() => big.p.grants.map(p.domid, [ref2], false)), 'GNTST_general_error');
      for (const m of many) m.dispose();
      assert.equal(p.grants.endAccess(ref2), true);
      p.dispose();
      big.p.dispose();
    },
    { dom0Limits: { maxMaptrack: 8 } },
  ));

test('dom0\'s maptrack holds more than a blkback queue\'s persistent cache (hypervisor.ts DOM0_MAX_MAPTRACK)', () =>
  withHypervisor((hv) => {
    const { p } = guest(hv);
    const [frame] = p.memory.allocPages(1) as [Frame];
    // One frame granted under many refs: each ref is its own mapping for dom0.
    const refs = Array.from({ length: 20000 }, () => p.grants.grantAccess(0 as DomId, frame, false));
    const maps = hv.dom0.grants.map(p.domid, refs, false);
    assert.equal(maps.pages.length, 20000, 'past the 16384 that dom0 had before');
    maps.dispose();
    for (const r of refs) p.grants.endAccess(r);
    p.dispose();
  }));

test('copy: per-op statuses, read-only source only, page bounds, no pins left', () =>
  withHypervisor((hv) => {
    const { p } = guest(hv);
    const [a, b] = p.memory.allocPages(2) as [Frame, Frame];
    p.memory.page(a).set([9, 8, 7], 10);
    const ra = p.grants.grantAccess(0 as DomId, a, true);
    const rb = p.grants.grantAccess(0 as DomId, b, false);
    const buf = new Uint8Array(16);
    const g = (ref: GrantRef, offset: number) => ({ kind: 'grant' as const, domid: p.domid, ref, offset });
    const l = (offset: number) => ({ kind: 'local' as const, buf, offset });
    const st = hv.dom0.grants.copy([
      { source: g(ra, 10), dest: l(0), len: 3 },
      { source: g(ra, 10), dest: g(rb, 4000), len: 3 },
      { source: l(0), dest: g(ra, 0), len: 3 },
      { source: g(ra, 4095), dest: l(0), len: 2 },
      { source: l(0), dest: l(15), len: 2 },
      { source: { ...g(ra, 0), domid: 50 as DomId }, dest: l(0), len: 1 },
      { source: g(40000 as GrantRef, 0), dest: l(0), len: 1 },
    ]);
    assert.deepEqual(st, [GNTST_okay, GNTST_okay, GNTST_permission_denied, GNTST_bad_copy_arg, GNTST_bad_copy_arg, GNTST_bad_domain, GNTST_bad_gntref]);
    assert.deepEqual([...buf.subarray(0, 3)], [9, 8, 7]);
    assert.deepEqual([...p.memory.page(b).subarray(4000, 4003)], [9, 8, 7]);
    assert.equal(hv.table.get(p.domid, DW.FOREIGN_PINS), 0);
    assert.equal(p.grants.endAccess(ra), true);
    assert.equal(p.grants.endAccess(rb), true);
    p.dispose();
  }));

test('grant refs run out with ENOSPC; ended refs are reused', () =>
  withHypervisor((hv) => {
    const { p } = guest(hv, { maxGrantFrames: 1 });
    const [frame] = p.memory.allocPages(1) as [Frame];
    const refs: GrantRef[] = [];
    for (let i = 0; i < 512 - 8; i++) refs.push(p.grants.grantAccess(0 as DomId, frame, true));
    assert.equal(Math.min(...refs), 8, 'reserved entries are never handed out');
    assert.equal(mapCode(() => p.grants.grantAccess(0 as DomId, frame, true)), 'ENOSPC');
    assert.equal(p.grants.endAccess(refs[17]!), true);
    assert.equal(p.grants.grantAccess(0 as DomId, frame, true), refs[17]);
    for (const r of refs) assert.equal(p.grants.endAccess(r), true);
    p.dispose();
  }));

test('destroying a guest releases its mappings; a destroyed granter stays a zombie until unmapped', () =>
  withHypervisor(async (hv) => {
    const a = guest(hv);
    const b = guest(hv);
    const [fa] = a.p.memory.allocPages(1) as [Frame];
    const [fb] = b.p.memory.allocPages(1) as [Frame];
    const refA = a.p.grants.grantAccess(b.domid, fa, false);
    const mb = b.p.grants.map(a.domid, [refA], true); // held by b: released when b is destroyed
    const refB = b.p.grants.grantAccess(0 as DomId, fb, false);
    const m0 = hv.dom0.grants.map(b.domid, [refB], true);
    await hv.destroy(b.domid);
    mb.dispose(); // a no-op on the table now: the hypervisor released it
    b.p.dispose(); // b's grants went with its table
    assert.equal(flags(a.p, refA) & (GTF_reading | GTF_writing), 0, 'b\'s mapping of a was released');
    assert.equal(hv.table.get(a.domid, DW.FOREIGN_PINS), 0);
    assert.deepEqual(hv.zombies, [b.domid], 'dom0 still maps a page of b');
    assert.equal(mapCode(() => hv.dom0.grants.map(b.domid, [refB], false)), 'GNTST_bad_domain', 'no new mappings of a dying domain');
    m0.pages[0]![0] = 1; // the page stays valid while mapped
    m0.dispose();
    hv.reap();
    assert.deepEqual(hv.zombies, []);
    assert.equal(a.p.grants.endAccess(refA), true);
    a.p.dispose();
  }));

test('a granter rewriting its entry under a live mapping: later maps use the frame copied at the first pin', () =>
  withHypervisor((hv) => {
    const { p } = guest(hv);
    const other = guest(hv);
    const [a, b] = p.memory.allocPages(2) as [Frame, Frame];
    p.memory.page(a)[0] = 0xaa;
    p.memory.page(b)[0] = 0xbb;
    const ref = p.grants.grantAccess(0 as DomId, a, false);
    const m1 = hv.dom0.grants.map(p.domid, [ref], false);
    // Hostile granter: points the live entry at another frame and at another domain.
    const shared = p.grants.view(p.domid).shared;
    Atomics.store(shared, ref * 2 + 1, b);
    Atomics.store(shared, ref * 2, (Atomics.load(shared, ref * 2) & 0xffff) | (other.domid << 16));
    const m2 = hv.dom0.grants.map(p.domid, [ref], false);
    assert.equal(m2.pages[0]![0], 0xaa, 'the active entry\'s frame, copied once');
    assert.equal(mapCode(() => other.p.grants.map(p.domid, [ref], false)), 'GNTST_permission_denied', 'pinned for dom0');
    m1.dispose();
    m2.dispose();
    assert.equal(flags(p, ref) & (GTF_reading | GTF_writing), 0);
    // Unpinned now: the next map reads the entry afresh, for whoever it names.
    const m3 = other.p.grants.map(p.domid, [ref], false);
    assert.equal(m3.pages[0]![0], 0xbb);
    m3.dispose();
    assert.equal(p.grants.endAccess(ref), true);
    p.dispose();
    other.p.dispose();
  }));
