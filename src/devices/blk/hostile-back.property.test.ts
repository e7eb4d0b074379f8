/**
 * Property (reliability.md R5): against a backend that answers a random mix of correct and
 * hostile responses, the frontend completes each request at most once, only with its own
 * data, fails everything outstanding the moment the backend misbehaves, and stays dead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import { errorCode, type DomId, type GrantRef } from '../../base/index.js';
import { startRawBack, type RawBack } from './raw-back.js';
import { until, withBlkEnv, type BlkEnv } from './test-support.js';

type Action =
  | { kind: 'ok'; pick: number }
  | { kind: 'error'; pick: number }
  | { kind: 'bogus-id'; id: bigint }
  | { kind: 'duplicate' }
  | { kind: 'wrong-op'; pick: number }
  | { kind: 'overflow' };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('ok' as const), pick: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('error' as const), pick: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bogus-id' as const), id: fc.bigInt({ min: 32n, max: 2n ** 64n - 1n }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'duplicate' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrong-op' as const), pick: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'overflow' as const }) },
);

/** A request the frontend put on the ring, as the raw backend answers it. */
type Posted = { id: bigint; sector: number; gref: number } | undefined;

/**
 * Answer as `a` says, recording in `answered` the request it used up. 'skip': nothing to act
 * on; 'hostile': the answer broke the protocol (the frontend must give up).
 */
function play(env: BlkEnv, raw: RawBack, a: Action, open: readonly Posted[], answered: bigint[]): 'skip' | 'fine' | 'hostile' {
  const live = open.filter((o) => o !== undefined && !answered.includes(o.id));
  if (a.kind === 'ok' || a.kind === 'error' || a.kind === 'wrong-op') {
    const o = live[a.pick % Math.max(1, live.length)];
    if (o === undefined) return 'skip';
    if (a.kind === 'ok') {
      const m = env.dom0.grants.map(env.guestId as DomId, [o.gref as GrantRef], true);
      m.pages[0]!.fill(o.sector + 1, 0, 512);
      m.dispose();
    }
    raw.respond({ id: o.id, operation: a.kind === 'wrong-op' ? BLKIF_OP_WRITE : BLKIF_OP_READ, status: a.kind === 'error' ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY });
    answered.push(o.id);
    return a.kind === 'wrong-op' ? 'hostile' : 'fine';
  }
  if (a.kind === 'bogus-id') {
    if (live.length === 0) return 'skip';
    raw.respond({ id: a.id, operation: BLKIF_OP_READ, status: 0 });
    answered.push(live[0]!.id);
  } else if (a.kind === 'duplicate') {
    if (answered.length === 0 || live.length === 0) return 'skip';
    raw.respond({ id: answered[0]!, operation: BLKIF_OP_READ, status: 0 });
    answered.push(live[0]!.id);
  } else {
    raw.setRspProd(1000);
  }
  return 'hostile';
}

test('property: hostile response sequences never complete a request twice or with foreign data', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 8 }), async (actions) => {
      await withBlkEnv(async (env) => {
        const { raw, front, started } = await startRawBack(env);
        await started;
        const settled = new Map<number, 'ok' | 'err'>();
        const bufs = Array.from({ length: 6 }, () => new Uint8Array(512));
        const ops = bufs.map((b, i) =>
          front.read(i * 8, b).then(
            () => void settled.set(i, 'ok'),
            () => void settled.set(i, 'err'),
          ),
        );
        const reqs = await raw.waitRequests(6);
        const open: Posted[] = reqs.map((r) => (r.kind === 'rw' ? { id: r.id, sector: Number(r.sector_number), gref: r.seg[0]!.gref } : undefined));
        const answered: bigint[] = [];
        let hostile = false;
        for (const a of actions) {
          const how = play(env, raw, a, open, answered);
          if (how === 'skip') continue;
          hostile = how === 'hostile';
          if (hostile) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        if (hostile) {
          await Promise.all(ops);
          await until(async () => (await env.xsGuest.readString(`${env.frontPath}/state`)) === '5', 2000, 'frontend Closing');
          await assert.rejects(front.read(0, new Uint8Array(512)), (e) => errorCode(e) === 'EIO');
        } else {
          await until(() => settled.size === answered.length, 2000, 'answered requests settle');
        }
        // Every completion carries its own data; unanswered requests never completed OK.
        for (const [i, how] of settled) {
          if (how === 'ok') assert.ok(bufs[i]!.every((b) => b === i * 8 + 1), `read ${i} has its own data`);
        }
        const okIds = [...settled].filter(([, h]) => h === 'ok').map(([i]) => i);
        for (const i of okIds) assert.ok(answered.includes(open[i]!.id), `read ${i} completed OK only after its answer`);
        raw.dispose();
        if (!hostile) await front.dispose(1000);
        await Promise.all(ops);
      });
    }),
    { numRuns: 25 },
  );
});
