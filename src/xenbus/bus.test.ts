/**
 * The backend and frontend buses end to end against an in-process xenstored, dom0 and a domU
 * on separate connections: full connect, hot-unplug, hostile frontends (garbage state,
 * flapping), the frontend dying, the backend restarting (killed and graceful), the frontend
 * restarting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitWait,
} from '../abi/io/xenbus.js';
import { assertNoLeaks, type DomId } from '../base/index.js';
import type { XsClient } from '../xenstore/client/index.js';
import { BackendWatcher } from './backend.js';
import type { BackendDriver } from './backend-device.js';
import { FrontendWatcher } from './frontend.js';
import type { FrontendDriver } from './frontend-device.js';
import { readBool, readUint, writeKeys } from './keys.js';
import { backendPath, frontendPath, type DeviceId } from './paths.js';
import { isState, readState, waitForState } from './state.js';
import { startTestStore, type TestStore } from './testing.js';
import { addDevice, prepareDomainHome, removeDevice } from './toolstack.js';

const GUEST = 3 as DomId;
const DEV: DeviceId = { frontClass: 'vbd', backClass: 'vbd', frontDomid: GUEST, backDomid: 0 as DomId, devid: 51712 };
const FE = frontendPath(DEV);
const BE = backendPath(DEV);

/** Counts what the drivers were asked to do; the backend maps "ring-ref" with bounds. */
class Log {
  readonly events: string[] = [];
  count(prefix: string): number {
    return this.events.filter((e) => e.startsWith(prefix)).length;
  }
}

function backDriver(log: Log): BackendDriver {
  return {
    async probe(ctx) {
      await writeKeys(ctx.client, ctx.backPath, { 'feature-test': 1, sectors: 2048 });
      log.events.push('probe');
      return {
        async connect() {
          const ref = await readUint(ctx.client, ctx.frontPath, 'ring-ref', { min: 8, max: 1 << 20 });
          log.events.push(`connect ${ref}`);
        },
        disconnect() {
          log.events.push('disconnect');
        },
        remove() {
          log.events.push('remove');
        },
      };
    },
  };
}

function frontDriver(log: Log, next = { ref: 100 }): FrontendDriver {
  return {
    async create(ctx) {
      log.events.push('create');
      return {
        async initialise() {
          const ref = next.ref++;
          await writeKeys(ctx.client, ctx.frontPath, { 'ring-ref': ref, 'event-channel': 9 });
          log.events.push(`initialise ${ref}`);
          return XenbusStateInitialised;
        },
        async connect() {
          assert.equal(await readBool(ctx.client, ctx.backPath, 'feature-test'), true);
          log.events.push(`connect ${await readUint(ctx.client, ctx.backPath, 'sectors')}`);
        },
        disconnect(reason) {
          log.events.push(`disconnect ${reason}`);
        },
        remove() {
          log.events.push('remove');
        },
      };
    },
  };
}

interface World {
  readonly store: TestStore;
  readonly tool: XsClient;
  readonly guest: XsClient;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const store = startTestStore();
  const tool = store.connect(0);
  try {
    await prepareDomainHome(tool, GUEST);
    await fn({ store, tool, guest: store.connect(GUEST) });
  } finally {
    store.close();
  }
  assertNoLeaks(['xs-watch', 'xs-transaction', 'xs-connection']);
}

async function startBack(w: World, log: Log, opts: { maxConnects?: number } = {}): Promise<BackendWatcher> {
  const b = new BackendWatcher(w.store.connect(0), backDriver(log), { backDomid: 0 as DomId, backClass: 'vbd', ...opts });
  await b.start();
  return b;
}

async function startFront(w: World, log: Log, next?: { ref: number }): Promise<FrontendWatcher> {
  const f = new FrontendWatcher(w.guest, frontDriver(log, next), { selfDomid: GUEST, frontClass: 'vbd' });
  await f.start();
  return f;
}

const T = 3000;

/** Poll `cond` every few ms until true; fails the test after `ms`. */
async function eventually(cond: () => boolean, what: string, ms = T): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const connected = isState(XenbusStateConnected);

async function bothConnected(c: XsClient): Promise<void> {
  await waitForState(c, BE, connected, T);
  await waitForState(c, FE, connected, T);
}

/** Both buses running and the device connected end to end: where most scenarios start. */
async function connectedPair(w: World, devOpts?: Parameters<typeof addDevice>[2]) {
  const bl = new Log();
  const fl = new Log();
  const back = await startBack(w, bl);
  const front = await startFront(w, fl);
  await addDevice(w.tool, DEV, devOpts);
  await bothConnected(w.tool);
  return { bl, fl, back, front };
}

/** A backend alone, its device added and waiting in InitWait for a hand-driven frontend. */
async function backAtInitWait(w: World, opts: { maxConnects?: number } = {}) {
  const bl = new Log();
  const back = await startBack(w, bl, opts);
  await addDevice(w.tool, DEV);
  await waitForState(w.tool, BE, isState(XenbusStateInitWait), T);
  return { bl, back };
}

test('full connect, then hot-unplug: InitWait, Initialised, Connected; libxl ACLs; online=0 + Closing -> Closed -> removed', () =>
  withWorld(async (w) => {
    const { bl, fl, back, front } = await connectedPair(w, { backKeys: { params: 'disk.img', mode: 'w' }, frontKeys: { 'virtual-device': 51712 } });
    assert.deepEqual(bl.events, ['probe', 'connect 100']);
    assert.deepEqual(fl.events, ['create', 'initialise 100', 'connect 2048']);
    assert.deepEqual(await w.tool.getPerms(FE), [{ access: 'n', domid: 3 }, { access: 'r', domid: 0 }]);
    assert.deepEqual(await w.tool.getPerms(BE), [{ access: 'n', domid: 0 }, { access: 'r', domid: 3 }]);
    assert.equal(await w.tool.readString(`/libxl/3/device/vbd/51712/backend`), BE);
    // The guest cannot write the backend's directory.
    await assert.rejects(w.guest.write(`${BE}/state`, '6'), { code: 'EACCES' });

    const t0 = Date.now();
    const r = await removeDevice(w.tool, DEV, { timeoutMs: T });
    assert.equal(r.timedOut, false);
    assert.ok(Date.now() - t0 < T);
    await assert.rejects(w.tool.read(FE), { code: 'ENOENT' });
    await assert.rejects(w.tool.read(BE), { code: 'ENOENT' });
    await back.idle();
    await front.idle();
    assert.deepEqual(bl.events.slice(2), ['disconnect', 'remove']);
    assert.ok(fl.events.includes('disconnect backend-closed'));
    assert.equal(back.instances.size, 0);
    assert.equal(front.instances.size, 0);
    await front.close();
    await back.close();
  }));

test('unplug waits LIBXL_DESTROY_TIMEOUT (configurable) for a frontend that never closes, then removes anyway', () =>
  withWorld(async (w) => {
    const { bl, back } = await backAtInitWait(w);
    // A frontend that publishes and connects, then ignores everything.
    await writeKeys(w.guest, FE, { 'ring-ref': 77, state: XenbusStateInitialised });
    await waitForState(w.tool, BE, connected, T);
    const t0 = Date.now();
    const r = await removeDevice(w.tool, DEV, { timeoutMs: 150 });
    assert.equal(r.timedOut, true);
    assert.ok(Date.now() - t0 >= 140);
    await assert.rejects(w.tool.read(BE), { code: 'ENOENT' });
    await back.idle();
    assert.deepEqual(bl.events, ['probe', 'connect 77', 'disconnect', 'remove']);
    await back.close();
  }));

test('garbage in the frontend state: the backend disconnects, records the error and goes Closing, without throwing', () =>
  withWorld(async (w) => {
    const { bl, back } = await backAtInitWait(w);
    await writeKeys(w.guest, FE, { 'ring-ref': 12, state: XenbusStateInitialised });
    await waitForState(w.tool, BE, connected, T);
    await w.guest.write(`${FE}/state`, 'Connected!');
    await waitForState(w.tool, BE, isState(XenbusStateClosing), T);
    assert.match(await w.tool.readString('/local/domain/0/error/backend/vbd/3/51712/error'), /^71 frontend state 'Connected!'/);
    assert.deepEqual(bl.events, ['probe', 'connect 12', 'disconnect']);
    await w.guest.write(`${FE}/state`, String(XenbusStateClosed));
    await waitForState(w.tool, BE, isState(XenbusStateClosed), T);
    // A ring-ref out of the driver's bounds is refused the same way.
    await w.guest.write(`${FE}/ring-ref`, '3');
    await w.guest.write(`${FE}/state`, '1');
    await waitForState(w.tool, BE, isState(XenbusStateInitWait), T);
    await w.guest.write(`${FE}/state`, '3');
    await waitForState(w.tool, BE, isState(XenbusStateClosing), T);
    assert.match(await w.tool.readString('/local/domain/0/error/backend/vbd/3/51712/error'), /ring-ref: out of range/);
    assert.equal(bl.count('connect'), 1);
    await back.close();
  }));

test('a flapping frontend is bounded: coalesced steps, a connect budget, then marked bad and Closing', () =>
  withWorld(async (w) => {
    const { bl, back } = await backAtInitWait(w, { maxConnects: 3 });
    await w.guest.write(`${FE}/ring-ref`, '40');
    // 300 state writes as fast as the store takes them: far fewer steps, no crash.
    for (let i = 0; i < 300; i++) await w.guest.write(`${FE}/state`, String([1, 3, 6, 4, 5, 1][i % 6]));
    await back.idle();
    const dev = back.instances.get('3/51712')!;
    assert.ok(bl.count('connect') <= 3, `connects ${bl.count('connect')}`);
    assert.equal(bl.count('connect'), bl.count('disconnect') + (dev.isConnected ? 1 : 0), 'every connect undone or live');
    // Then deliberate cycles until the budget is spent.
    for (let cycle = 0; cycle < 5 && dev.phase !== 'bad'; cycle++) {
      await w.guest.write(`${FE}/state`, '6');
      await back.idle();
      await w.guest.write(`${FE}/state`, '1');
      await back.idle();
      await w.guest.write(`${FE}/state`, '3');
      await back.idle();
    }
    assert.equal(dev.phase, 'bad');
    assert.equal(bl.count('connect'), 3, 'never more than the budget');
    assert.equal(dev.isConnected, false);
    assert.deepEqual(await readState(w.tool, BE), { kind: 'state', state: XenbusStateClosing });
    assert.match(await w.tool.readString('/local/domain/0/error/backend/vbd/3/51712/error'), /reconnects too often/);
    // A bad device still closes when asked, and never offers InitWait again.
    await w.guest.write(`${FE}/state`, '6');
    await waitForState(w.tool, BE, isState(XenbusStateClosed), T);
    await w.guest.write(`${FE}/state`, '1');
    await back.idle();
    assert.deepEqual(await readState(w.tool, BE), { kind: 'state', state: XenbusStateClosed });
    await back.close();
  }));

test('the frontend domain dies (@releaseDomain): the backend disconnects and goes Closed; the toolstack then removes it', () =>
  withWorld(async (w) => {
    await w.tool.introduce(GUEST, 0, 0);
    const { bl, back, front } = await connectedPair(w);
    await front.close(); // the guest stops running: no goodbye
    await w.tool.release(GUEST); // xenstored deletes the guest's nodes, fires @releaseDomain
    await waitForState(w.tool, BE, isState(XenbusStateClosed), T);
    await back.idle();
    assert.deepEqual(bl.events, ['probe', 'connect 100', 'disconnect']);
    const r = await removeDevice(w.tool, DEV, { timeoutMs: T });
    assert.equal(r.timedOut, false);
    await back.idle();
    assert.deepEqual(bl.events.slice(-1), ['remove']);
    await back.close();
  }));

test('the backend is killed and a new one starts: it resets the frontend through Closed and both reconnect', () =>
  withWorld(async (w) => {
    const { fl, back, front } = await connectedPair(w);
    await back.close(); // killed: nothing written, its state still says Connected
    assert.deepEqual(await readState(w.tool, BE), { kind: 'state', state: XenbusStateConnected });
    const bl2 = new Log();
    const back2 = await startBack(w, bl2);
    await waitForState(w.tool, FE, isState(XenbusStateClosed), T).catch(() => undefined);
    await bothConnected(w.tool);
    await back2.idle();
    await front.idle();
    assert.deepEqual(bl2.events, ['probe', 'connect 101'], 'the new backend connected to the new ring only');
    assert.deepEqual(fl.events, ['create', 'initialise 100', 'connect 2048', 'disconnect backend-closed', 'initialise 101', 'connect 2048']);
    await front.close();
    await back2.close();
  }));

test('the backend stops gracefully (Closed) and comes back: the frontend offers Initialising and reconnects', () =>
  withWorld(async (w) => {
    const { fl, back, front } = await connectedPair(w);
    await back.close({ graceful: true });
    await waitForState(w.tool, FE, isState(1), T); // Closed, then Initialising: ready to reconnect
    assert.ok(fl.events.includes('disconnect backend-closed'));
    const back2 = await startBack(w, new Log());
    await bothConnected(w.tool);
    await front.idle();
    assert.equal(fl.count('connect'), 2);
    assert.equal(await w.tool.readString(`${FE}/ring-ref`), '101');
    await front.close();
    await back2.close();
  }));

test('the frontend restarts (kexec): the new instance closes the old connection and both reconnect', () =>
  withWorld(async (w) => {
    const { bl, back, front } = await connectedPair(w);
    await front.close();
    const fl2 = new Log();
    const front2 = await startFront(w, fl2, { ref: 500 });
    await eventually(() => fl2.count('connect') === 1, 'the new frontend to connect');
    await bothConnected(w.tool);
    await back.idle();
    await front2.idle();
    assert.deepEqual(fl2.events, ['create', 'initialise 500', 'connect 2048']);
    assert.deepEqual(bl.events, ['probe', 'connect 100', 'disconnect', 'connect 500']);
    await front2.close();
    await back.close();
  }));

test('a frontend whose backend key names another domain\'s device refuses it with an error node', () =>
  withWorld(async (w) => {
    const fl = new Log();
    const front = await startFront(w, fl);
    await addDevice(w.tool, DEV, { frontKeys: { backend: '/local/domain/0/backend/vbd/4/51712' } });
    await waitForState(w.tool, FE, isState(XenbusStateClosing), T);
    assert.match(await w.tool.readString('/local/domain/3/error/device/vbd/51712/error'), /does not match/);
    assert.deepEqual(fl.events, []);
    await front.close();
  }));
