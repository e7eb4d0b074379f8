/**
 * reliability.md R9 as a property: any sequence of frontend state writes (valid states,
 * invalid transitions, garbage, deletions of the node), at any speed, leaves the backend with
 * every connect undone or still live, never more connects than its budget, no exception out
 * of the bus, and — once the frontend says Closed and the toolstack unplugs — nothing held:
 * no device instance, no watch, no transaction. The same for a frontend facing a hostile
 * backend (XSA-391: the backend is not trusted either).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { XenbusStateInitialised } from '../abi/io/xenbus.js';
import { assertNoLeaks, type DomId } from '../base/index.js';
import { BackendWatcher } from './backend.js';
import type { BackendDriver } from './backend-device.js';
import { FrontendWatcher } from './frontend.js';
import type { FrontendDriver } from './frontend-device.js';
import { readUint } from './keys.js';
import { backendPath, frontendPath, type DeviceId } from './paths.js';
import type { XsClient } from '../xenstore/client/index.js';
import { startTestStore } from './testing.js';
import { addDevice, prepareDomainHome, removeDevice } from './toolstack.js';

const DEV: DeviceId = { frontClass: 'vbd', backClass: 'vbd', frontDomid: 5 as DomId, backDomid: 0 as DomId, devid: 768 };
const FE = frontendPath(DEV);
const BE = backendPath(DEV);

type Step = { kind: 'state'; value: string } | { kind: 'rm-state' } | { kind: 'ring-ref'; value: string } | { kind: 'pause' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 9 }).map((n): Step => ({ kind: 'state', value: String(n) })) },
  { weight: 1, arbitrary: fc.constantFrom('', 'x', '-1', '4 ', '99999').map((value): Step => ({ kind: 'state', value })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'rm-state' }) },
  { weight: 1, arbitrary: fc.constantFrom('8', '0', 'junk', '4294967296').map((value): Step => ({ kind: 'ring-ref', value })) },
  { weight: 2, arbitrary: fc.constant<Step>({ kind: 'pause' }) },
);

/** Write `steps` into the peer's directory `dir`, as a hostile peer would. */
async function play(peer: XsClient, dir: string, steps: readonly Step[]): Promise<void> {
  for (const s of steps) {
    if (s.kind === 'state') await peer.write(`${dir}/state`, s.value);
    else if (s.kind === 'ring-ref') await peer.write(`${dir}/ring-ref`, s.value);
    else if (s.kind === 'rm-state') await peer.rm(`${dir}/state`).catch(() => undefined);
    else await new Promise((r) => setTimeout(r, 1));
  }
}

/** A backend driver that counts its connects and the connections still live. */
function countingBackDriver(n: { live: number; connects: number }): BackendDriver {
  return {
    async probe(ctx) {
      return {
        async connect() {
          await readUint(ctx.client, ctx.frontPath, 'ring-ref', { min: 8, max: 1 << 20 });
          n.connects++;
          n.live++;
        },
        disconnect() {
          n.live--;
        },
      };
    },
  };
}

/** A frontend driver that counts its initialisations and the rings still live. */
function countingFrontDriver(n: { live: number; initialises: number }): FrontendDriver {
  return {
    async create(ctx) {
      return {
        async initialise() {
          n.initialises++;
          n.live++;
          await ctx.client.write(`${ctx.frontPath}/ring-ref`, '9');
          return XenbusStateInitialised;
        },
        async connect() {
          await readUint(ctx.client, ctx.backPath, 'ring-ref', { default: 8, min: 8 });
        },
        disconnect() {
          n.live--;
        },
      };
    },
  };
}

test('R9: any frontend state sequence leaves the backend consistent and, after unplug, nothing held', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
      const store = startTestStore();
      const tool = store.connect(0);
      const guest = store.connect(DEV.frontDomid);
      const n = { live: 0, connects: 0 };
      const back = new BackendWatcher(store.connect(0), countingBackDriver(n), { backDomid: 0 as DomId, backClass: 'vbd', maxConnects: 4 });
      try {
        await prepareDomainHome(tool, DEV.frontDomid);
        await back.start();
        await addDevice(tool, DEV, { frontKeys: { 'ring-ref': 8 } });
        await play(guest, FE, steps);
        await back.idle();
        assert.ok(n.live === 0 || n.live === 1, `live connections ${n.live}`);
        assert.ok(n.connects <= 4, `connects ${n.connects} beyond the budget`);
        await guest.write(`${FE}/state`, '6');
        const r = await removeDevice(tool, DEV, { timeoutMs: 2000 });
        await back.idle();
        assert.equal(r.timedOut, false, 'a frontend at Closed lets the unplug finish');
        assert.equal(n.live, 0, 'every connect undone');
        assert.equal(back.instances.size, 0);
      } finally {
        await back.close();
        store.close();
      }
      assertNoLeaks(['xs-watch', 'xs-transaction', 'xs-connection']);
    }),
    { numRuns: Number(process.env.XENPV_FC_RUNS ?? 25) },
  );
});

test('R9, the other way: any backend state sequence leaves the frontend balanced and within its budget', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
      const store = startTestStore();
      const tool = store.connect(0);
      const hostile = store.connect(0);
      const n = { live: 0, initialises: 0 };
      const front = new FrontendWatcher(store.connect(DEV.frontDomid), countingFrontDriver(n), { selfDomid: DEV.frontDomid, frontClass: 'vbd', maxInitialises: 4 });
      try {
        await prepareDomainHome(tool, DEV.frontDomid);
        await front.start();
        await addDevice(tool, DEV);
        await play(hostile, BE, steps);
        await front.idle();
        assert.ok(n.live === 0 || n.live === 1, `live rings ${n.live}`);
        assert.ok(n.initialises <= 4, `initialises ${n.initialises} beyond the budget`);
        // The toolstack removes the device (force): the frontend lets go of everything.
        await tool.rm(FE);
        await tool.rm(BE);
        await front.idle();
        await new Promise((r) => setTimeout(r, 2));
        await front.idle();
        assert.equal(front.instances.size, 0);
        assert.equal(n.live, 0, 'every initialise undone');
      } finally {
        await front.close();
        store.close();
      }
      assertNoLeaks(['xs-watch', 'xs-transaction', 'xs-connection']);
    }),
    { numRuns: Number(process.env.XENPV_FC_RUNS ?? 25) },
  );
});
