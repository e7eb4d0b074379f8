/**
 * Test support (not a test): a sim hypervisor with dom0 and one guest, an in-process
 * xenstored, a vbd added the way libxl adds it, and helpers to run BlkBack and BlkFront on it.
 * Everything is torn down and leak-checked (grant mappings, grants, ports, watches,
 * transactions) by `withBlkEnv`.
 */
import { assertNoLeaks, type DomId } from '../../base/index.js';
import { SimPlatform } from '../../hv/sim/platform.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import type { Hypervisor } from '../../hv/sim/hypervisor.js';
import { startTestStore, type TestStore } from '../../xenbus/testing.js';
import { addDevice } from '../../xenbus/toolstack.js';
import { backendPath, frontendPath, type DeviceId } from '../../xenbus/paths.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { BlkBack, type BlkBackOptions } from './back.js';
import type { BlkFrontOptions } from './front-api.js';
import { BlkFront } from './front.js';
import type { BlockStorage } from './storage/types.js';
import { waitUntil } from '../../base/testing.js';

export interface BlkEnv {
  readonly hv: Hypervisor;
  readonly store: TestStore;
  readonly dom0: SimPlatform;
  readonly guest: SimPlatform;
  readonly guestId: DomId;
  readonly xs0: XsClient;
  readonly xsGuest: XsClient;
  readonly dev: DeviceId;
  readonly backPath: string;
  readonly frontPath: string;
  /** Write the vbd's two directories (libxl's generic add), with extra keys. */
  addVbd(options?: { trusted?: boolean; mode?: 'r' | 'w'; backKeys?: Record<string, string | number> }): Promise<void>;
  newBack(storage: BlockStorage, options?: BlkBackOptions): BlkBack;
  newFront(options?: BlkFrontOptions): BlkFront;
}

export const VDEV_XVDA = 51712;

export async function withBlkEnv(fn: (env: BlkEnv) => Promise<void>, guestPages = 2048): Promise<void> {
  await withHypervisor(async (hv) => {
    const guestId = hv.createDomain({ memoryPages: guestPages, startInfo: false });
    if (hv.info(guestId)?.state === 'paused') hv.unpause(guestId);
    const guest = SimPlatform.attach(hv.platformHandle(guestId));
    const dom0 = hv.dom0;
    dom0.events.startAsync();
    guest.events.startAsync();
    const store = startTestStore();
    const { env, backs, fronts } = newEnv(hv, guest, guestId, store);
    try {
      await fn(env);
    } finally {
      for (const b of backs) await b.destroy();
      for (const f of fronts) await f.dispose(2000);
      store.close();
      guest.dispose();
      await hv.destroy(guestId);
      dom0.events.stopAsync();
    }
    assertNoLeaks(['grant-mapping', 'grant-access', 'evtchn-port', 'xs-watch', 'xs-transaction']);
  });
}

/** The env over a running guest and store; every BlkBack and BlkFront it makes is recorded for teardown. */
function newEnv(hv: Hypervisor, guest: SimPlatform, guestId: DomId, store: TestStore): { env: BlkEnv; backs: BlkBack[]; fronts: BlkFront[] } {
  const dom0 = hv.dom0;
  const xs0 = store.connect(0);
  const xsGuest = store.connect(guestId);
  const dev: DeviceId = { frontClass: 'vbd', backClass: 'vbd', frontDomid: guestId, backDomid: 0 as DomId, devid: VDEV_XVDA };
  const backs: BlkBack[] = [];
  const fronts: BlkFront[] = [];
  const env: BlkEnv = {
    hv,
    store,
    dom0,
    guest,
    guestId,
    xs0,
    xsGuest,
    dev,
    backPath: backendPath(dev),
    frontPath: frontendPath(dev),
    addVbd: (o = {}) =>
      addDevice(xs0, dev, {
        frontKeys: { 'virtual-device': VDEV_XVDA, 'device-type': 'disk', ...(o.trusted === false ? { trusted: 0 } : {}) },
        backKeys: { mode: o.mode ?? 'w', params: 'test', type: 'file', dev: 'xvda', 'device-type': 'disk', ...o.backKeys },
      }),
    newBack: (storage, options) => {
      const b = new BlkBack(dom0, xs0, storage, backendPath(dev), options);
      backs.push(b);
      return b;
    },
    newFront: (options) => {
      const f = new BlkFront(guest, xsGuest, frontendPath(dev), { closingDrainMs: 50, ...options });
      fronts.push(f);
      return f;
    },
  };
  return { env, backs, fronts };
}

/** Where most scenarios start: the vbd added, a backend on `storage` and a frontend, both started. */
export async function startPair(
  env: BlkEnv,
  storage: BlockStorage,
  options: { vbd?: Parameters<BlkEnv['addVbd']>[0]; back?: BlkBackOptions; front?: BlkFrontOptions } = {},
): Promise<{ back: BlkBack; front: BlkFront }> {
  await env.addVbd(options.vbd);
  const back = env.newBack(storage, options.back);
  const front = env.newFront(options.front);
  await back.start();
  await front.start();
  return { back, front };
}

/** Deterministic bytes for sector-addressed data (each sector says which it is and which write). */
export function pattern(sector: number, sectors: number, tag: number): Uint8Array {
  const b = new Uint8Array(sectors * 512);
  for (let s = 0; s < sectors; s++) {
    for (let i = 0; i < 512; i += 4) {
      const v = ((sector + s) * 2654435761 + i * 40503 + tag * 97) >>> 0;
      b[s * 512 + i] = v & 0xff;
      b[s * 512 + i + 1] = (v >>> 8) & 0xff;
      b[s * 512 + i + 2] = (v >>> 16) & 0xff;
      b[s * 512 + i + 3] = tag & 0xff;
    }
  }
  return b;
}

/** Wait until `cond()` holds, checking every 5 ms; throws after `timeoutMs`. */
export function until(cond: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  return waitUntil(cond, what, timeoutMs);
}
