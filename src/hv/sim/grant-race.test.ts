/**
 * The grant table under racing threads: a granting guest thread ends and re-grants its
 * pages while two dom0 threads map and unmap them (read-only and writable). At the end no
 * pin may be lost (every grant can be ended, the granter's pin count and dom0's maptrack
 * are zero) and no page may have been reused while mapped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { DW } from '../../memory/index.js';
import { withHypervisor } from './testing.js';
import type { RaceJob } from './grant-race-worker.js';

/** RaceJob.ctl words (the worker module runs on import, so its constants stay there). */
const STOP = 0;
const READY = 2;
const REFS = 8;

const WORKER = new URL('./grant-race-worker.js', import.meta.url);

function start(job: RaceJob): Promise<Record<string, number>> {
  const w = new Worker(WORKER, { workerData: job });
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

test('racing map/unmap against end-access/reuse from three threads: no lost pin, no reuse while mapped', () =>
  withHypervisor(async (hv) => {
    const g = hv.createDomain({ memoryPages: 32, startInfo: false });
    const ctl = new SharedArrayBuffer(64 * 4);
    const words = new Int32Array(ctl);
    words.fill(-1, REFS);
    const base = { granter: g, grantee: 0, ctl, slots: 6 };
    const granter = start({ ...base, role: 'granter', platform: hv.platformHandle(g), seed: 1 });
    const mappers = [2, 3].map((seed) => start({ ...base, role: 'mapper', platform: hv.platformHandle(0), seed }));
    // Race for 300 ms once all three threads are up (worker start-up is slow on a busy box).
    for (let i = 0; i < 1000 && Atomics.load(words, READY) < 3; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300));
    Atomics.store(words, STOP, 1);
    const [gs, ...ms] = await Promise.all([granter, ...mappers]);
    const total = (k: string) => ms.reduce((n, s) => n + (s[k] ?? 0), 0);
    assert.equal(total('violations'), 0, 'a page changed under a live mapping');
    assert.equal(gs!.finalEndFailures, 0, 'a pin was lost');
    assert.equal(hv.table.get(g, DW.FOREIGN_PINS), 0);
    assert.equal(hv.table.get(0, DW.MAPTRACK_USED), 0);
    assert.ok(total('maps') > 0 && gs!.ends! > 0, `the race ran: ${JSON.stringify({ gs, ms })}`);
    assert.ok(gs!.refused! > 0, 'end access was refused at least once while mapped');
    // Only the errors a racing mapper can meet: the grant ended (entry invalid) under it.
    for (const s of ms) {
      for (const k of Object.keys(s)) assert.ok(['maps', 'unmaps', 'violations', 'copies', 'GNTST_permission_denied'].includes(k), k);
    }
    await hv.destroy(g);
  }));
