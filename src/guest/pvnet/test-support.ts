/**
 * Test wiring (not a test; guest layer because it puts guest IPv4 stacks on the NetFronts): sim domains with netfronts, netbacks in dom0 on one Bridge, an
 * in-process xenstored, the toolstack's device directories, and guest IPv4 stacks on top.
 * `withNet` tears everything down in the order a real host would (frontends close, backends
 * follow and unmap, grants end) and then checks for leaks.
 */
import { assertNoLeaks, sleep, type DomId } from '../../base/index.js';
import { SimPlatform } from '../../hv/sim/platform.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import type { Hypervisor } from '../../hv/sim/hypervisor.js';
import { NetStack } from '../net/stack.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { startTestStore, type TestStore } from '../../xenbus/testing.js';
import { addDevice } from '../../xenbus/toolstack.js';
import { backendPath, frontendPath, type DeviceId } from '../../xenbus/paths.js';
import { NetBack, type NetBackOptions } from '../../devices/net/back.js';
import { Bridge } from '../../devices/net/bridge/index.js';
import { NetFront, type NetFrontOptions } from '../../devices/net/front.js';
import { internetChecksum } from '../../devices/net/bridge/checksum.js';

export interface GuestSpec {
  readonly mac?: string;
  readonly ip?: string;
  readonly mtu?: number;
  readonly rate?: string;
  readonly front?: Partial<Pick<NetFrontOptions, 'features' | 'buffers' | 'hashKey'>>;
  readonly back?: Partial<Pick<NetBackOptions, 'features' | 'limits' | 'lockMac'>>;
  /** Build the stack (default true). */
  readonly stack?: boolean;
  /**
   * The stack copies what it keeps (NetFront.rxTransient, as the guest programs run): frames
   * may be views of netfront's rx pages, valid during the call; `received` records copies.
   */
  readonly transient?: boolean;
  readonly txChecksumOffload?: boolean;
}

export interface NetGuest {
  readonly domid: DomId;
  readonly platform: SimPlatform;
  readonly client: XsClient;
  readonly dev: DeviceId;
  readonly front: NetFront;
  readonly back: NetBack;
  readonly stack: NetStack;
  readonly ip: string;
  /** Every frame the front received, with its info (for offload checks). */
  readonly received: { frame: Uint8Array; info: Parameters<NonNullable<NetFront['onReceive']>>[1] }[];
}

export interface NetEnv {
  readonly hv: Hypervisor;
  readonly store: TestStore;
  readonly dom0: XsClient;
  readonly bridge: Bridge;
  readonly guests: NetGuest[];
  addGuest(spec?: GuestSpec): Promise<NetGuest>;
  /** A domain with its vif directories and a connected-ready NetBack, but no NetFront (programs bring their own). */
  addBackendOnly(spec?: GuestSpec): Promise<BackendOnly>;
}

export interface BackendOnly {
  readonly domid: DomId;
  readonly platform: SimPlatform;
  readonly client: XsClient;
  readonly dev: DeviceId;
  readonly back: NetBack;
}

const RECORD_LIMIT = 10_000;

type Base = Omit<NetEnv, 'addGuest' | 'addBackendOnly'> & { readonly cleanups: (() => Promise<void>)[] };

async function addDomainAndBack(env: Base, spec: GuestSpec, n: number): Promise<BackendOnly & { mac: string; mtu: number }> {
  // 10 MiB: room for 4 queues of 2 ring pages + 256 tx + 256 rx buffer pages each (netfront).
  const domid = env.hv.createDomain({ memoryPages: 2560, startInfo: false });
  const platform = SimPlatform.attach(env.hv.platformHandle(domid));
  platform.events.startAsync();
  const client = env.store.connect(domid);
  const dev: DeviceId = { frontClass: 'vif', backClass: 'vif', frontDomid: domid, backDomid: 0 as DomId, devid: 0 };
  const mac = spec.mac ?? `00:16:3e:00:00:${n.toString(16).padStart(2, '0')}`;
  const mtu = spec.mtu ?? 1500;
  await addDevice(env.dom0, dev, {
    frontKeys: { mac, handle: 0, mtu },
    backKeys: { mac, bridge: env.bridge.name, handle: 0, mtu, type: 'vif', ...(spec.rate ? { rate: spec.rate } : {}) },
  });
  const back = new NetBack({ platform: env.hv.dom0, store: env.dom0, bridge: env.bridge, backendPath: backendPath(dev), ...spec.back });
  await back.start();
  return { domid, platform, client, dev, back, mac, mtu };
}

async function addGuest(env: Base, spec: GuestSpec): Promise<NetGuest> {
  const n = env.guests.length + env.cleanups.length + 1;
  const { domid, platform, client, dev, back, mac, mtu } = await addDomainAndBack(env, spec, n);
  const received: NetGuest['received'] = [];
  const front = new NetFront({ platform, store: client, frontendPath: frontendPath(dev), ...spec.front });
  await front.start();
  const ip = spec.ip ?? `10.0.0.${n}`;
  const stack = new NetStack({
    mac, address: ip, prefix: 24, mtu, clock: () => performance.now(),
    txChecksumOffload: spec.txChecksumOffload ?? false,
    send: (f, info) => void front.transmit(f, info),
    sendCopies: true, // NetFront.transmit copies into a granted page or its backlog
  });
  const transient = spec.transient === true;
  front.rxTransient = transient;
  front.onReceive = (frame, info) => {
    if (received.length < RECORD_LIMIT) received.push({ frame: transient ? frame.slice() : frame, info });
    if (spec.stack !== false) stack.receive(frame, { csumBlank: info.csumBlank, dataValidated: info.dataValidated, ...(transient ? { transient: true } : {}) });
  };
  await front.waitUp(5000);
  const g: NetGuest = { domid, platform, client, dev, front, back, stack, ip, received };
  env.guests.push(g);
  return g;
}

/** Poll `cond` every few ms (running the stacks' timers) until true or `timeoutMs`. */
export async function until(env: Pick<NetEnv, 'guests'>, cond: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    for (const g of env.guests) g.stack.tick();
    if (cond()) return true;
    await sleep(2);
  }
  return cond();
}

async function addBackendOnly(env: Base, spec: GuestSpec): Promise<BackendOnly> {
  const b = await addDomainAndBack(env, spec, env.guests.length + env.cleanups.length + 1);
  env.cleanups.push(async () => {
    await until(env, () => !b.back.connected, 2000);
    await b.back.idle();
    await b.back.dispose();
    b.platform.dispose();
  });
  return b;
}

async function closeGuest(env: Base, g: NetGuest): Promise<void> {
  await g.front.dispose();
  // The backend follows the frontend to Closed and unmaps; then the last grants can end.
  await until(env, () => !g.back.connected, 2000);
  await g.back.idle();
  await g.back.dispose();
  await until(env, () => g.front.pendingPages === 0, 2000);
}

export async function withNet(fn: (env: NetEnv) => Promise<void>, guests: GuestSpec[] = [{}, {}]): Promise<void> {
  await withHypervisor(async (hv) => {
    hv.dom0.events.startAsync();
    const store = startTestStore();
    const dom0 = store.connect(0);
    const bridge = new Bridge('xenbr0');
    const base: Base = { hv, store, dom0, bridge, guests: [] as NetGuest[], cleanups: [] };
    const env: NetEnv = { ...base, addGuest: (spec = {}) => addGuest(base, spec), addBackendOnly: (spec = {}) => addBackendOnly(base, spec) };
    try {
      for (const spec of guests) await env.addGuest(spec);
      await fn(env);
    } finally {
      for (const g of base.guests) await closeGuest(base, g).catch(() => undefined);
      for (const g of base.guests) g.platform.dispose();
      for (const c of base.cleanups) await c().catch(() => undefined);
      bridge.dispose();
      store.close();
    }
  });
  assertNoLeaks();
}

/** Bytes 0..n-1 of a recognisable pattern. */
export function pattern(n: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
}

/** An Ethernet + IPv4 + TCP frame (20-byte headers, valid IP checksum) with a patterned payload. */
export function tcpFrame(src: NetGuest, dst: NetGuest, sport: number, dport: number, payloadLen: number): Uint8Array {
  const f = new Uint8Array(14 + 20 + 20 + payloadLen);
  f.set(dst.front.mac, 0);
  f.set(src.front.mac, 6);
  f[12] = 0x08;
  const ip = 14;
  f[ip] = 0x45;
  const total = 20 + 20 + payloadLen;
  f[ip + 2] = (total >> 8) & 0xff; // a GSO super-frame's length may exceed 16 bits' worth of segments; fine for tests
  f[ip + 3] = total & 0xff;
  f[ip + 8] = 64;
  f[ip + 9] = 6;
  f.set(src.ip.split('.').map(Number), ip + 12);
  f.set(dst.ip.split('.').map(Number), ip + 16);
  const sum = internetChecksum(f, ip, ip + 20);
  f[ip + 10] = sum >> 8;
  f[ip + 11] = sum & 0xff;
  const tcp = ip + 20;
  f[tcp] = sport >> 8;
  f[tcp + 1] = sport & 0xff;
  f[tcp + 2] = dport >> 8;
  f[tcp + 3] = dport & 0xff;
  f[tcp + 12] = 5 << 4;
  f.set(pattern(payloadLen, sport), tcp + 20);
  return f;
}
