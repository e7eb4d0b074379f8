/**
 * Property (the hostile-frontend rule of hostile-front.test.ts): a frontend that puts RANDOM
 * request slots on blkback's ring — any operation byte, nr_segments 0..255, sectors in any
 * order, sector numbers around and far past the end, refs that are good, never granted,
 * revoked, read-only or granted to another domain, indirect requests over random segment
 * lists, discards of any size, slots rewritten after they were pushed, req_prod pushed past the
 * ring, its state node flapped mid-I/O — gets error responses or a closed device; never a
 * crash, a hang, a leak, a second answer, or a write outside what it granted. Run on both of
 * blkback's data paths: the asynchronous one (storage promises, map or copy) and the
 * synchronous one (storage.syncIo, hostile-sync.test.ts).
 *
 * Each case: the frontend writes a canary (sectors 0..7) with a well-formed WRITE, then plays
 * its actions; no generated request names a sector below 8 (only a wrapped u64 or a missed
 * range check could reach them). Afterwards either the ring is still served and a well-formed
 * READ gives the canary back, or req_prod was overflowed and the backend closed with the
 * reason in its log, or the state node flapped and the backend closed. withBlkEnv checks that
 * no mapping, grant, port, watch or transaction is left behind.
 *
 * The cases and their generators are in hostile-fuzz-cases.ts; the frontend's pages, the slot
 * encoding and the oracle of what blkback may answer and touch in hostile-fuzz-oracle.ts.
 *
 * In the suite a few cases per path run; XENPV_FUZZ_RUNS=20000 runs a campaign
 * (XENPV_FUZZ_SEED and XENPV_FUZZ_PATH replay a case fast-check reports, without shrinking:
 * a case that leaked leaves the process's leak registry dirty, and every later case fails).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BLKIF_REQUEST, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import { encodeBlkifRwFields, encodeBlkifRwSegment } from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import type { DomId } from '../../base/index.js';
import { fuzzCampaign } from '../../base/testing.js';
import type { BlkBack } from './back.js';
import { CANARY_SECTORS, fuzzCase, type Case } from './hostile-fuzz-cases.js';
import { count, encode, matchResponses, mayWrite, Pool, reached, rewriteFrom, watchedStorage, type Phase, type Sent } from './hostile-fuzz-oracle.js';
import { backState } from './raw-support.js';
import { SlotFront } from './slot-front.js';
import { MemoryStorage } from './storage/memory.js';
import { pattern, until, withBlkEnv, type BlkEnv } from './test-support.js';


// ---- one case ----

const CANARY_TAG = 0x5c;

/** A well-formed one-page READ (0) or WRITE (1) of sectors 0..7, for the canary. */
function canarySlot(abi: AbiName, op: 0 | 1, id: bigint, gref: number): Uint8Array {
  const bytes = new Uint8Array(BLKIF_REQUEST.layouts[abi].size);
  const v = new DataView(bytes.buffer);
  encodeBlkifRwFields(v, 0, abi, op, 1, 0, id, 0);
  encodeBlkifRwSegment(v, 0, abi, 0, gref, 0, 7);
  return bytes;
}

/** Wait until `n` responses have come (the backend notifies; we look too). */
function responses(front: SlotFront, back: BlkBack, n: number, what: string): Promise<void> {
  return until(() => {
    front.collect();
    return front.responses.length >= n || front.problems.length > 0 || !back.isConnected;
  }, 3000, what);
}


function diff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function runCase(env: BlkEnv, sync: boolean, c: Case, uncaught: unknown[]): Promise<void> {
  const s = c.setup;
  const logs: string[] = [];
  const violations: string[] = [];
  const hooks: (() => void)[] = [];
  const phase = { now: 'canary' as Phase };
  const disk = new MemoryStorage(s.sectors, { sync, logicalBlockSize: s.blockSize });
  const canary = pattern(0, CANARY_SECTORS, CANARY_TAG);
  await env.addVbd({ mode: s.readOnly ? 'r' : 'w', backKeys: s.discard ? {} : { 'discard-enable': 0 } });
  const back = env.newBack(watchedStorage(disk, s, phase, hooks, violations), {
    // The copy data path has no synchronous variant: the sync test always maps.
    dataPath: s.copy && !sync ? 'copy' : 'map',
    maxIndirectSegments: s.maxIndirect,
    log: (m) => logs.push(m),
  });
  await back.start();
  const front = new SlotFront(env, s.abi);
  try {
    const pool = new Pool(front, s, (env.guestId + 1) as DomId);
    await front.connect(s.order, { 'feature-persistent': s.persistent ? '1' : '0' });
    await until(async () => (await backState(env)) === '4', 3000, 'backend Connected');
    const why = (): string => `\n  backend log:\n    ${logs.slice(-12).join('\n    ')}`;

    // The canary, written the way any frontend writes (on a read-only vbd, put on the disk).
    if (s.readOnly) disk.bytes.set(canary);
    else {
      const src = front.grant(false);
      src.bytes.set(canary);
      front.put(canarySlot(s.abi, 1, 0xca4a7n, src.ref));
      front.push();
      await responses(front, back, 1, 'the canary WRITE answered');
      assert.deepEqual(front.responses[0], { id: 0xca4a7n, operation: 1, status: BLKIF_RSP_OKAY }, `canary WRITE${why()}`);
    }
    const first = front.responses.length;
    phase.now = 'fuzz';

    const sent: Sent[] = [];
    /** How the actions ended: all played, req_prod overflowed, or the state node written. */
    let ended: 'played' | 'overflow' | 'flap' = 'played';
    for (const act of c.actions) {
      if (act.a === 'put') {
        front.collect();
        if (front.free === 0) {
          front.push();
          await until(() => (front.collect(), front.free > 0 || front.problems.length > 0 || !back.isConnected), 3000, `a free slot${why()}`);
          if (front.free === 0) break;
        }
        sent.push({ index: front.put(encode(act.req, s, pool)), head: act.req.head, bodies: [act.req.body], matched: false });
      } else if (act.a === 'push') {
        front.push();
      } else if (act.a === 'rewrite') {
        const n = Math.min(sent.length, front.size);
        if (n === 0) continue;
        const x = sent[sent.length - 1 - (act.back % n)]!;
        const apply = (): void => {
          // A deferred rewrite must not land on a later request that took the slot since.
          if (((front.written - x.index) >>> 0) > front.size) return;
          x.bodies.push(act.body);
          count(`rewrite ${act.when}`);
          front.rewrite(x.index, encode({ head: x.head, body: act.body }, s, pool), rewriteFrom(s.abi));
        };
        if (act.when === 'now') apply();
        else hooks.push(apply);
      } else if (act.a === 'wait') {
        if (act.how === 'micro') await Promise.resolve();
        else if (act.how === 'immediate') await new Promise((r) => setImmediate(r));
        else await new Promise((r) => setTimeout(r, 1));
      } else if (act.a === 'overflow') {
        front.setReqProd(front.published + front.size + 1 + act.k);
        ended = 'overflow';
        count('req_prod overflowed');
        break;
      } else {
        // Answers from now on are not checked: a backend that reconnects serves the ring from
        // index 0 again (the frontend did not re-initialise it), which is the frontend's loss.
        front.collect();
        front.stopReading();
        for (const st of act.states) await env.xsGuest.write(`${env.frontPath}/state`, String(st));
        await env.xsGuest.write(`${env.frontPath}/state`, '6');
        ended = 'flap';
        count('state flapped');
        break;
      }
    }

    if (ended === 'played') {
      front.push();
      await responses(front, back, first + sent.length, `an answer to each of the ${sent.length} requests${why()}`);
    }
    hooks.length = 0;
    const fuzzAnswers = front.responses.slice(first);
    assert.deepEqual(front.problems, [], `the ring${why()}`);
    assert.deepEqual(matchResponses(fuzzAnswers, sent, s, pool), [], `responses${why()}`);
    assert.deepEqual(violations, [], `storage calls${why()}`);

    if (ended === 'overflow') {
      await until(async () => (await backState(env)) === '5', 3000, 'backend Closing after req_prod overflowed');
      assert.equal(back.isConnected, false);
      assert.ok(logs.some((l) => /request-prod-overflow/.test(l)), `the reason is logged${why()}`);
    } else if (ended === 'flap') {
      // Watch events still in flight may start one more step: wait until the backend is quiet.
      await until(async () => {
        await new Promise((r) => setTimeout(r, 20));
        await back.idle();
        return ['5', '6'].includes(await backState(env)) && env.hv.dom0.grants.maptrack.live().length === 0;
      }, 3000, `backend settles closed and unmapped after the state node flapped${why()}`);
      assert.equal(back.isConnected, false);
    } else {
      assert.equal(back.isConnected, true, `a ring whose req_prod was never overflowed is still served${why()}`);
      assert.equal(fuzzAnswers.length, sent.length, 'one answer per request');
      // The device still works: the canary reads back.
      phase.now = 'canary';
      const into = front.grant(true);
      front.put(canarySlot(s.abi, 0, 0xca4a8n, into.ref));
      front.push();
      await responses(front, back, first + sent.length + 1, `the canary READ answered${why()}`);
      assert.deepEqual(front.responses.at(-1), { id: 0xca4a8n, operation: 0, status: BLKIF_RSP_OKAY }, `canary READ${why()}`);
      assert.equal(diff(into.bytes, canary), -1, 'the canary reads back intact');
    }

    // Pages: nothing the backend could not write was written.
    const marks = mayWrite(sent, pool, ended === 'flap');
    for (const p of pool.watched) {
      const m = p.writable && p.ref !== undefined ? marks.get(p.ref) : undefined;
      for (let sct = 0; sct < 8; sct++) {
        if (m?.[sct] === true) continue;
        const at = diff(p.bytes.subarray(sct * 512, sct * 512 + 512), p.before.subarray(sct * 512, sct * 512 + 512));
        assert.equal(at, -1, `${p.what}: sector ${sct} byte ${at} written, though no READ named it${why()}`);
      }
    }

    // Close from the frontend: the backend lets go of everything (withBlkEnv then checks leaks).
    await env.xsGuest.write(`${env.frontPath}/state`, '6');
    await until(async () => ['5', '6'].includes(await backState(env)), 3000, 'backend closes');
    await until(() => env.hv.dom0.grants.maptrack.live().length === 0, 3000, 'backend unmaps every grant');
    assert.equal(back.info().inFlight, 0);
    await front.dispose();
  } catch (err) {
    // Let go of everything here, or the leak registry (one per process) would fail every
    // later case, and fast-check would shrink towards whatever case ran next.
    await back.destroy();
    await front.dispose().catch(() => undefined);
    const thrown = uncaught.splice(0);
    // What escaped the backend is the likelier cause of whatever failed after it.
    if (thrown.length > 0) throw new Error(`thrown out of the backend: ${thrown.map((e) => (e instanceof Error ? e.stack : String(e))).join('\n')}`, { cause: err });
    throw err;
  }
  assert.deepEqual(uncaught.splice(0), [], 'nothing thrown out of the backend');
}

function fuzz(sync: boolean): Promise<void> {
  let ran = 0;
  return fuzzCampaign(
    8,
    100,
    (params, uncaught) =>
      fc.assert(
        fc.asyncProperty(fuzzCase, (c) => {
          ran++;
          return withBlkEnv((env) => runCase(env, sync, c, uncaught));
        }),
        params,
      ),
    (seconds) => {
      console.log(`${sync ? 'sync' : 'async'} path: ${ran} cases in ${seconds.toFixed(1)} s`);
      for (const [what, n] of [...reached].sort()) console.log(`  ${what}: ${n}`);
      reached.clear();
    },
  );
}


test('fuzz: random hostile request slots on the asynchronous path get errors or a closed device, never a crash, leak, double answer or stray write', () =>
  fuzz(false));

test('fuzz: random hostile request slots on the synchronous path get errors or a closed device, never a crash, leak, double answer or stray write', () =>
  fuzz(true));
