/**
 * A worker of copy.test.ts's race: a grantee thread that either copies to and from a granted
 * page (GNTTABOP_copy, which holds the granter's grant lock across the copy) or maps and
 * unmaps it, checking what must hold at every step.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { GTF_reading, GTF_writing } from '../abi/grant_table.js';
import type { DomId, GrantRef } from '../base/index.js';
import { DomainTable, DW, MACHINE_PAGE_SIZE, type HvHandle } from '../memory/index.js';
import { SimGrantOps } from './ops.js';

export interface RaceJob {
  readonly handle: HvHandle;
  readonly role: 'copier' | 'mapper';
  readonly self: number;
  readonly granter: number;
  readonly ref: number;
  /** Bytes of the page only this worker writes. */
  readonly at: number;
  readonly iterations: number;
  /** Int32 start barrier: each worker adds 1, all begin once `parties` have arrived. */
  readonly start: SharedArrayBuffer;
  readonly parties: number;
}

export interface RaceResult {
  readonly ok: number;
  readonly problems: readonly string[];
}

/** Start together, so the loops overlap (worker start-up takes longer than a loop). */
function barrier(job: RaceJob): void {
  const w = new Int32Array(job.start);
  Atomics.add(w, 0, 1);
  Atomics.notify(w, 0);
  for (let seen = Atomics.load(w, 0); seen < job.parties; seen = Atomics.load(w, 0)) Atomics.wait(w, 0, seen, 100);
}

function run(job: RaceJob): RaceResult {
  barrier(job);
  const table = new DomainTable(job.handle);
  const ops = new SimGrantOps(table, job.self as DomId, table.newTid());
  const shared = new Int32Array(table.machine.sab, table.get(job.granter, DW.R_GNT_TABLE) * MACHINE_PAGE_SIZE, 2 * (job.ref + 1));
  return job.role === 'copier' ? copier(ops, job) : mapper(ops, job, shared);
}

function copier(ops: SimGrantOps, job: RaceJob): RaceResult {
  const problems: string[] = [];
  const out = new Uint8Array(4);
  const back = new Uint8Array(4);
  const domid = job.granter as DomId;
  const ref = job.ref as GrantRef;
  const toGrant = [{ source: { kind: 'local', buf: out, offset: 0 }, dest: { kind: 'grant', domid, ref, offset: job.at }, len: 4 }] as const;
  const fromGrant = [{ source: { kind: 'grant', domid, ref, offset: job.at }, dest: { kind: 'local', buf: back, offset: 0 }, len: 4 }] as const;
  let ok = 0;
  for (let i = 0; i < job.iterations && problems.length < 5; i++) {
    new DataView(out.buffer).setUint32(0, i, true);
    const [w] = ops.copy(toGrant);
    const [r] = ops.copy(fromGrant);
    if (w !== 0 || r !== 0) problems.push(`iteration ${i}: copy statuses ${w}, ${r}`);
    else if (new DataView(back.buffer).getUint32(0, true) !== i) problems.push(`iteration ${i}: read back another value`);
    else ok++;
  }
  return { ok, problems };
}

function mapper(ops: SimGrantOps, job: RaceJob, shared: Int32Array): RaceResult {
  const problems: string[] = [];
  let ok = 0;
  const check = (when: string, writable: boolean): void => {
    const flags = Atomics.load(shared, job.ref * 2) & 0xffff;
    const want = GTF_reading | (writable ? GTF_writing : 0);
    if ((flags & want) !== want) problems.push(`${when} a ${writable ? 'writable' : 'read-only'} map: flags ${flags.toString(16)}`);
  };
  for (let i = 0; i < job.iterations && problems.length < 5; i++) {
    const writable = (i & 1) === 0;
    const m = ops.map(job.granter as DomId, [job.ref as GrantRef], writable);
    check('after', writable);
    if (writable) m.pages[0]![job.at] = i & 0xff;
    check('before unmapping', writable);
    m.dispose();
    ok++;
  }
  return { ok, problems };
}

parentPort?.postMessage(run(workerData as RaceJob));
