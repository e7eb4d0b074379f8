/**
 * GNTTABOP_copy with one grant side, which holds the granter's grant lock across its check,
 * the copy and the release: the statuses and GTF_reading/GTF_writing updates of a pin/unpin
 * pair, nothing left behind, and a three-thread race against mappers of the same entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import {
  GNTST_bad_copy_arg,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_page,
  GNTST_okay,
  GNTST_permission_denied,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_writing,
} from '../abi/grant_table.js';
import type { DomId, Frame, GrantRef } from '../base/index.js';
import { DW, type DomainTable } from '../memory/index.js';
import type { RaceJob, RaceResult } from './copy-race-worker.js';
import { SimGrantOps } from './ops.js';
import { grantTestTable } from './test-support.js';
import type { GrantCopyOp } from './types.js';

const GRANTER = 0 as DomId;

function flags(ops: SimGrantOps, ref: number): number {
  return Atomics.load(ops.view(ops.self).shared, ref * 2) & 0xffff;
}

function toGrant(domid: DomId, ref: GrantRef, buf: Uint8Array): GrantCopyOp[] {
  return [{ source: { kind: 'local', buf, offset: 0 }, dest: { kind: 'grant', domid, ref, offset: 100 }, len: buf.length }];
}

function fromGrant(domid: DomId, ref: GrantRef, buf: Uint8Array): GrantCopyOp[] {
  return [{ source: { kind: 'grant', domid, ref, offset: 100 }, dest: { kind: 'local', buf, offset: 0 }, len: buf.length }];
}

/** A table of `domains` domains; ops for the granter (GRANTER) and the copier (dom1), each on its own thread id. */
function granterAndCopier(domains: number): { t: DomainTable; granter: SimGrantOps; back: SimGrantOps } {
  const t = grantTestTable(domains);
  return { t, granter: new SimGrantOps(t, GRANTER, t.newTid()), back: new SimGrantOps(t, 1 as DomId, t.newTid()) };
}

/** Nothing held on the granter's row: no pins, lock free, no references. */
function assertIdle(t: DomainTable, domid: number): void {
  for (const f of ['FOREIGN_PINS', 'GNT_LOCK', 'REFS'] as const) assert.equal(t.get(domid, DW[f]), 0, f);
}

test('copy into a grant mapped read-only by the copier: GTF_writing only for the copy, the mapping kept', () => {
  const { t, granter, back } = granterAndCopier(2);
  const ref = granter.grantAccess(1 as DomId, 3 as Frame, false);
  const m = back.map(GRANTER, [ref], false);
  assert.equal(flags(granter, ref), GTF_permit_access | GTF_reading);
  assert.deepEqual(back.copy(toGrant(GRANTER, ref, Uint8Array.of(7, 8, 9))), [GNTST_okay]);
  assert.deepEqual([...m.pages[0]!.subarray(100, 103)], [7, 8, 9]);
  // The read-only mapping's GTF_reading stays; the copy's GTF_writing is gone.
  assert.equal(flags(granter, ref), GTF_permit_access | GTF_reading);
  assert.equal(Atomics.load(granter.view(0).active, ref * 2) & 0xffff, 1, 'one read pin, as before the copy');
  assert.equal(granter.endAccess(ref), false, 'still mapped');
  m.dispose();
  assert.equal(flags(granter, ref), GTF_permit_access);
  assert.equal(granter.endAccess(ref), true);
  assertIdle(t, 0);
});

test('copy refusals change nothing: a read-only grant written, another domain, a frame outside the granter', () => {
  const { t, granter, back } = granterAndCopier(3);
  const other = new SimGrantOps(t, 2 as DomId, t.newTid());
  const ro = granter.grantAccess(1 as DomId, 2 as Frame, true);
  const buf = new Uint8Array(4);
  assert.deepEqual(back.copy(toGrant(GRANTER, ro, buf)), [GNTST_permission_denied]);
  assert.deepEqual(other.copy(fromGrant(GRANTER, ro, buf)), [GNTST_permission_denied]);
  assert.deepEqual(back.copy(fromGrant(GRANTER, ro, buf)), [GNTST_okay]);
  assert.equal(flags(granter, ro), GTF_permit_access | GTF_readonly);
  // The granter names a frame it does not have: refused after the check, flags restored.
  const bad = granter.grantAccess(1 as DomId, 1000 as Frame, false);
  assert.deepEqual(back.copy(fromGrant(GRANTER, bad, buf)), [GNTST_bad_page]);
  assert.equal(flags(granter, bad), GTF_permit_access, 'GTF_reading taken back');
  assert.equal(granter.endAccess(ro), true);
  assert.equal(granter.endAccess(bad), true);
  assertIdle(t, 0);
});

test('a batch of ops to one granter (one lock hold): each op gets the status it gets alone, and nothing is left held', () => {
  const { t, granter, back } = granterAndCopier(3);
  const rw = granter.grantAccess(1 as DomId, 3 as Frame, false);
  const ro = granter.grantAccess(1 as DomId, 2 as Frame, true);
  const bad = granter.grantAccess(1 as DomId, 1000 as Frame, false);
  const buf = Uint8Array.of(1, 2, 3, 4);
  const out = new Uint8Array(4);
  const batch: GrantCopyOp[] = [
    ...toGrant(GRANTER, rw, buf),
    ...toGrant(GRANTER, ro, buf), // read-only: refused
    ...fromGrant(GRANTER, bad, out), // a frame the granter does not have
    { source: { kind: 'grant', domid: GRANTER, ref: rw, offset: 4094 }, dest: { kind: 'local', buf: out, offset: 0 }, len: 4 }, // crosses the page
    ...fromGrant(GRANTER, 99_999 as GrantRef, out), // outside the table
    ...fromGrant(GRANTER, rw, out), // reads back what the first op wrote
    ...fromGrant(2 as DomId, rw, out), // another granter, which granted us nothing: its own run
    ...fromGrant(3 as DomId, rw, out), // a domain that does not exist
    ...fromGrant(GRANTER, rw, out), // the first granter again after them
  ];
  assert.deepEqual(back.copy(batch), [
    GNTST_okay, GNTST_permission_denied, GNTST_bad_page, GNTST_bad_copy_arg, GNTST_bad_gntref, GNTST_okay,
    GNTST_permission_denied, GNTST_bad_domain, GNTST_okay,
  ]);
  assert.deepEqual([...out], [1, 2, 3, 4]);
  for (const ref of [rw, ro, bad]) {
    assert.equal(flags(granter, ref) & ~GTF_readonly, GTF_permit_access, `ref ${ref}: no GTF_reading/GTF_writing left`);
    assert.equal(granter.endAccess(ref), true);
  }
  assertIdle(t, 0);
});

test('copy of the first `count` ops into a caller\'s status array: the ops past it are not done, the entries past it not written', () => {
  const { t, granter, back } = granterAndCopier(2);
  const ref = granter.grantAccess(1 as DomId, 3 as Frame, false);
  const ops = [...toGrant(GRANTER, ref, Uint8Array.of(1, 2)), ...toGrant(GRANTER, 99_999 as GrantRef, Uint8Array.of(3)), ...toGrant(GRANTER, ref, Uint8Array.of(9, 9))];
  const status = [-100, -100, -100, -100];
  assert.equal(back.copy(ops, 2, status), status, 'the array given is the one returned');
  assert.deepEqual(status, [GNTST_okay, GNTST_bad_gntref, -100, -100]);
  const out = new Uint8Array(2);
  assert.deepEqual(back.copy(fromGrant(GRANTER, ref, out)), [GNTST_okay]);
  assert.deepEqual([...out], [1, 2], 'the third op (past count) wrote nothing');
  assert.deepEqual(back.copy(ops, 99, status).slice(0, 3), [GNTST_okay, GNTST_bad_gntref, GNTST_okay], 'a count past the ops is the ops');
  assertIdle(t, 0);
});

function race(job: RaceJob): Promise<RaceResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./copy-race-worker.js', import.meta.url), { workerData: job });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

test('three threads: two copiers and a mapper on one granter, statuses, values and flags hold throughout', async () => {
  const t = grantTestTable(3);
  const granter = new SimGrantOps(t, GRANTER, t.newTid());
  const shared = granter.grantAccess(1 as DomId, 4 as Frame, false);
  const second = granter.grantAccess(2 as DomId, 5 as Frame, false);
  const base = { handle: t.handle, granter: GRANTER, iterations: 20000, start: new SharedArrayBuffer(4), parties: 3 };
  const results = await Promise.all([
    race({ ...base, role: 'copier', self: 1, ref: shared, at: 0 }),
    race({ ...base, role: 'mapper', self: 1, ref: shared, at: 8 }),
    race({ ...base, role: 'copier', self: 2, ref: second, at: 0 }),
  ]);
  for (const r of results) {
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, 20000);
  }
  for (const ref of [shared, second]) {
    assert.equal(flags(granter, ref), GTF_permit_access);
    assert.equal(Atomics.load(granter.view(0).active, ref * 2), 0, 'no pins left');
    assert.equal(granter.endAccess(ref), true);
  }
  assertIdle(t, 0);
  assert.equal(t.get(1, DW.MAPTRACK_USED), 0);
});

test('copies out of grants read each page as it is now, at each op\'s own offset and length (cached views per frame)', () => {
  const { t, granter, back } = granterAndCopier(2);
  const refA = granter.grantAccess(1 as DomId, 3 as Frame, true);
  const refB = granter.grantAccess(1 as DomId, 4 as Frame, true);
  const pageA = granter.view(0).page(3);
  const pageB = granter.view(0).page(4);
  const read = (ref: GrantRef, offset: number, len: number): number[] => {
    const buf = new Uint8Array(len);
    const op: GrantCopyOp = { source: { kind: 'grant', domid: GRANTER, ref, offset }, dest: { kind: 'local', buf, offset: 0 }, len };
    assert.deepEqual(back.copy([op]), [GNTST_okay]);
    return [...buf];
  };
  pageA.set([1, 2, 3, 4], 100);
  pageB.set([5, 6, 7, 8], 100);
  assert.deepEqual(read(refA, 100, 4), [1, 2, 3, 4]);
  assert.deepEqual(read(refB, 100, 4), [5, 6, 7, 8]);
  pageA.set([9, 10, 11, 12], 100); // the granter rewrites its page between two equal copies
  assert.deepEqual(read(refA, 100, 4), [9, 10, 11, 12]);
  assert.deepEqual(read(refA, 100, 2), [9, 10], 'same offset, shorter length');
  assert.deepEqual(read(refA, 101, 4), [10, 11, 12, 0], 'same length, other offset');
  assert.deepEqual(read(refB, 100, 4), [5, 6, 7, 8]);
  assert.ok(granter.endAccess(refA) && granter.endAccess(refB));
  assertIdle(t, GRANTER);
});

test('property: a mixed batch (both directions, several granters, grant to grant, local to local, bad arguments) gets per op the status each op gets alone', () => {
  const { t, granter, back } = granterAndCopier(3);
  const dom2 = new SimGrantOps(t, 2 as DomId, t.newTid());
  const refs = [
    granter.grantAccess(1 as DomId, 3 as Frame, false),
    granter.grantAccess(1 as DomId, 4 as Frame, true),
    granter.grantAccess(1 as DomId, 1000 as Frame, false),
    dom2.grantAccess(1 as DomId, 5 as Frame, false),
  ];
  const buf = new Uint8Array(64);
  let okays = 0;
  const domid = fc.oneof({ arbitrary: fc.constant(GRANTER), weight: 6 }, fc.constantFrom(2, 3, Number.NaN) as fc.Arbitrary<DomId>);
  const ref = fc.oneof({ arbitrary: fc.constant(refs[0]!), weight: 4 }, fc.constantFrom(...refs, 99_999 as GrantRef));
  // Mostly counts that fit (a 64-byte buffer, a page), some past the end, some not counts at all.
  const count = fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 32 }), weight: 8 },
    { arbitrary: fc.integer({ min: 4064, max: 4100 }), weight: 1 },
    { arbitrary: fc.constantFrom(-1, 0.5, Number.NaN, 2 ** 32), weight: 1 },
  );
  const grantPtr = fc.record({ kind: fc.constant('grant' as const), domid, ref, offset: count });
  const localPtr = fc.record({ kind: fc.constant('local' as const), buf: fc.constant(buf), offset: count });
  const ptr = fc.oneof({ arbitrary: grantPtr, weight: 3 }, { arbitrary: localPtr, weight: 2 });
  const op = fc.record({ source: ptr, dest: ptr, len: count });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops: GrantCopyOp[]) => {
      const alone = ops.map((o) => back.copy([o])[0]);
      assert.deepEqual(back.copy(ops), alone);
      okays += alone.filter((s) => s === GNTST_okay).length;
    }),
    { numRuns: 300 },
  );
  assert.ok(okays > 300, `only ${okays} ops copied: the batches were mostly refusals`);
  for (const r of refs.slice(0, 3)) assert.equal(flags(granter, r) & ~GTF_readonly, GTF_permit_access, `ref ${r}: nothing left set`);
  assertIdle(t, 0);
  assertIdle(t, 2);
});

test('an op whose other side is of no known kind is refused (bad_copy_arg), and the batch goes on', () => {
  const { t, granter, back } = granterAndCopier(2);
  const ref = granter.grantAccess(1 as DomId, 3 as Frame, false);
  const buf = Uint8Array.of(1, 2, 3, 4);
  const bogus = { source: { kind: 'mystery', buf, offset: 0 }, dest: { kind: 'grant', domid: GRANTER, ref, offset: 0 }, len: 4 } as unknown as GrantCopyOp;
  assert.deepEqual(back.copy([bogus, ...toGrant(GRANTER, ref, buf)]), [GNTST_bad_copy_arg, GNTST_okay]);
  assert.equal(flags(granter, ref), GTF_permit_access);
  assert.equal(granter.endAccess(ref), true);
  assertIdle(t, 0);
});

test('a grant source with a destination of no known kind is refused (bad_copy_arg), alone and inside a run, and nothing is written', () => {
  const { t, granter, back } = granterAndCopier(2);
  const ref = granter.grantAccess(1 as DomId, 3 as Frame, false);
  granter.view(GRANTER).page(3).fill(0xaa, 100, 104);
  const buf = new Uint8Array(4);
  const bogus = { source: { kind: 'grant', domid: GRANTER, ref, offset: 100 }, dest: { kind: 'mystery', buf, offset: 0 }, len: 4 } as unknown as GrantCopyOp;
  const got = new Uint8Array(4);
  assert.deepEqual(back.copy([bogus]), [GNTST_bad_copy_arg]);
  assert.deepEqual(back.copy([...fromGrant(GRANTER, ref, got), bogus]), [GNTST_okay, GNTST_bad_copy_arg]);
  assert.deepEqual([...got], [0xaa, 0xaa, 0xaa, 0xaa]);
  assert.deepEqual([...buf], [0, 0, 0, 0]);
  assert.equal(flags(granter, ref), GTF_permit_access);
  assert.equal(granter.endAccess(ref), true);
  assertIdle(t, 0);
});

test('copy with the local side in machine memory (a memmove there): bytes exact, bounded by the local view, not the machine', () => {
  const { t, granter, back } = granterAndCopier(2);
  const ref = granter.grantAccess(1 as DomId, 3 as Frame, false);
  const page = granter.view(GRANTER).page(3);
  // A local view of 64 bytes in machine memory, between two guard bytes that must stay.
  const arena = t.machine.bytes(t.machine.frameCount - 1);
  const local = arena.subarray(8, 72);
  local.set(Uint8Array.from({ length: 64 }, (_, i) => i + 1));
  assert.deepEqual(back.copy(toGrant(GRANTER, ref, local)), [GNTST_okay]);
  assert.deepEqual(page.subarray(100, 164), local);
  page.fill(0xee, 100, 164);
  assert.deepEqual(back.copy(fromGrant(GRANTER, ref, local)), [GNTST_okay]);
  assert.ok(local.every((b) => b === 0xee));
  // One byte past the view on either side: refused, and neither neighbour of the view written.
  const long: GrantCopyOp = { source: { kind: 'grant', domid: GRANTER, ref, offset: 100 }, dest: { kind: 'local', buf: local, offset: 1 }, len: 64 };
  const wide: GrantCopyOp = { source: { kind: 'local', buf: local, offset: 0 }, dest: { kind: 'grant', domid: GRANTER, ref, offset: 4033 }, len: 64 };
  assert.deepEqual(back.copy([long, wide]), [GNTST_bad_copy_arg, GNTST_bad_copy_arg]);
  assert.equal(arena[7], 0);
  assert.equal(arena[72], 0);
  assert.ok(granter.endAccess(ref));
  assertIdle(t, GRANTER);
});

test('suspendAccess: the grantee can no longer copy into the page (or map it) until resumeAccess; refused while mapped', () => {
  const { t, granter, back } = granterAndCopier(2);
  const ref = granter.grantAccess(1 as DomId, 3 as Frame, false);
  assert.deepEqual(back.copy(toGrant(GRANTER, ref, Uint8Array.of(1, 2, 3))), [GNTST_okay]);
  // A frontend reading what the backend wrote: access ended, the ref kept.
  assert.equal(granter.suspendAccess(ref), true);
  assert.equal(flags(granter, ref), 0);
  assert.deepEqual(back.copy(toGrant(GRANTER, ref, Uint8Array.of(9, 9, 9))), [GNTST_permission_denied], 'a late write is refused');
  assert.deepEqual(back.copy(fromGrant(GRANTER, ref, new Uint8Array(3))), [GNTST_permission_denied]);
  assert.throws(() => back.map(GRANTER, [ref], false), (e: Error & { code?: string }) => e.code === 'GNTST_permission_denied');
  // Granted again as it was: the same ref, domain and frame, writable.
  granter.resumeAccess(ref, false);
  assert.equal(flags(granter, ref), GTF_permit_access);
  const out = new Uint8Array(3);
  assert.deepEqual(back.copy(fromGrant(GRANTER, ref, out)), [GNTST_okay]);
  assert.deepEqual([...out], [1, 2, 3], 'the page kept what was written before the suspension');
  // While the grantee maps it, a suspension changes nothing (R8), as endAccess.
  const m = back.map(GRANTER, [ref], true);
  assert.equal(granter.suspendAccess(ref), false);
  assert.equal(flags(granter, ref), GTF_permit_access | GTF_reading | GTF_writing);
  m.dispose();
  assert.equal(granter.suspendAccess(ref), true);
  // A suspended grant is ended for good like any other, and its ref freed.
  assert.equal(granter.endAccess(ref), true);
  assertIdle(t, 0);
});

test('resumeAccess of a grant that is live, or of a ref never granted, is a bug', () => {
  const { granter } = granterAndCopier(2);
  const ref = granter.grantAccess(1 as DomId, 3 as Frame, true);
  assert.throws(() => granter.resumeAccess(ref, true), /resumed while not suspended/);
  assert.equal(granter.suspendAccess(ref), true);
  granter.resumeAccess(ref, true);
  assert.equal(flags(granter, ref), GTF_permit_access | GTF_readonly, 'read-only again');
  assert.equal(granter.endAccess(ref), true);
  assert.throws(() => granter.resumeAccess(ref, false), /resumed while not suspended/, 'a freed ref');
  assert.throws(() => granter.suspendAccess(99_999 as GrantRef), (e: Error & { code?: string }) => e.code === 'EINVAL');
});
