/**
 * Test support (not a test): console 0 of a sim guest wired both ways — the guest's front
 * over its start_info page and port, dom0's back over the reserved grant — with event
 * delivery running on the event loop for both domains.
 */
import { GNTTAB_RESERVED_CONSOLE } from '../../abi/grant_table.js';
import type { DomId, EvtchnPort, GrantRef } from '../../base/index.js';
import { SimPlatform } from '../../hv/sim/platform.js';
import type { Hypervisor } from '../../hv/sim/hypervisor.js';
import type { TestStore } from '../../xenbus/testing.js';
import { prepareDomainHome } from '../../xenbus/toolstack.js';
import { ConsoleBack, type ConsoleBackOptions } from './back.js';
import { ConsoleFront, type ConsoleFrontOptions } from './front.js';
import { writePrimaryConsole } from './protocol.js';
import { waitUntil } from '../../base/testing.js';

export interface GuestConsole {
  readonly domid: DomId;
  readonly guest: SimPlatform;
  readonly page: Uint8Array;
  readonly port: EvtchnPort;
  readonly front: ConsoleFront;
  /** Signal the backend as the guest, without touching the ring (a hostile guest's tool). */
  kick(): void;
}

/** A new guest with its console 0 front attached (the back is the test's to connect). */
export function guestWithConsole(hv: Hypervisor, options: ConsoleFrontOptions = {}): GuestConsole {
  const domid = hv.createDomain({ memoryPages: 64 });
  const guest = SimPlatform.attach(hv.platformHandle(domid));
  guest.events.startAsync();
  const si = guest.startInfo!;
  const page = guest.memory.page(si.consoleFrame as never);
  const port = si.consolePort as EvtchnPort;
  let front: ConsoleFront | undefined;
  const binding = guest.events.adopt(port, () => front?.handleEvent());
  front = new ConsoleFront(page, binding, options);
  return { domid, guest, page, port, front, kick: () => binding.notify() };
}

export function connectBack(hv: Hypervisor, g: GuestConsole, options: ConsoleBackOptions = {}): ConsoleBack {
  hv.dom0.events.startAsync();
  return ConsoleBack.connect(hv.dom0, g.domid, GNTTAB_RESERVED_CONSOLE as GrantRef, g.port, options);
}

/** Poll until `cond` holds (every few ms); throws after `ms`. */
export function eventually(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  return waitUntil(cond, what, ms, 2);
}

/** A deterministic byte generator (xorshift32), so failures reproduce. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function randomBytes(next: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/**
 * The toolstack's part for a new guest, as a console daemon sees it: home with its name, the
 * console keys (with the daemon's buffer `limit`, if given), then INTRODUCE.
 */
export async function createGuest(hv: Hypervisor, store: TestStore, name: string, limit?: number): Promise<GuestConsole> {
  const g = guestWithConsole(hv);
  const tool = store.connect(0);
  await prepareDomainHome(tool, g.domid, name);
  const si = g.guest.startInfo!;
  await writePrimaryConsole(tool, g.domid, { frame: si.consoleFrame, port: si.consolePort, ...(limit === undefined ? {} : { limit }) });
  await tool.introduce(g.domid, si.storeFrame, si.storePort);
  tool.close();
  return g;
}
