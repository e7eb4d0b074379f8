/**
 * Netfront's end of the control ring: requests with ids, answered in any order ("there is no
 * requirement that responses are issued in the same order as requests"). A response for no
 * outstanding id breaks the device (R5); every request has a timeout.
 */
import {
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  XEN_NETIF_CTRL_STATUS_SUCCESS,
  XEN_NETIF_CTRL_TYPE,
} from '../../abi/io/netif.js';
import type { XenNetifCtrlRequest, XenNetifCtrlResponse } from '../../abi/io/netif-codec.js';
import { XenpvError, type Disposable, type DomId } from '../../base/index.js';
import type { EvtchnBinding, Platform } from '../../hv/platform.js';
import { FrontRing } from '../../ring/index.js';
import type { GrantedPage, PagePool } from './front-pages.js';
import { CTRL_RING_CODEC } from './protocol.js';

const T = XEN_NETIF_CTRL_TYPE;
export const CTRL_TIMEOUT_MS = 2000;

interface Waiter {
  readonly resolve: (r: XenNetifCtrlResponse) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class FrontCtrl implements Disposable {
  readonly page: GrantedPage;
  readonly evt: EvtchnBinding;
  private readonly ring: FrontRing<XenNetifCtrlRequest, XenNetifCtrlResponse>;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 0;
  private dead = false;

  constructor(platform: Platform, backend: DomId, private readonly pool: PagePool, private readonly broken: (r: string) => void) {
    [this.page] = pool.grant(1, false) as [GrantedPage];
    this.ring = FrontRing.init(this.page.bytes, CTRL_RING_CODEC, { onBroken: () => broken('control ring: response producer overflow') });
    try {
      this.evt = platform.events.allocUnbound(backend, () => setImmediate(() => this.drain()));
    } catch (err) {
      pool.release([this.page]);
      throw err;
    }
  }

  request(type: number, data: readonly [number, number, number]): Promise<XenNetifCtrlResponse> {
    if (this.dead) return Promise.reject(new XenpvError('ESHUTDOWN', 'control ring closed', {}));
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;
    if (!this.ring.putRequest({ id, type, data })) return Promise.reject(new XenpvError('EBUSY', 'control ring full', {}));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new XenpvError('ETIMEDOUT', `control request ${type} got no answer`, { type }));
      }, CTRL_TIMEOUT_MS);
      this.waiting.set(id, { resolve, reject, timer });
      if (this.ring.pushRequests()) this.evt.notify();
    });
  }

  private drain(): void {
    do this.take();
    while (!this.dead && this.ring.finalCheckForResponses()); // re-arm rsp_event, then look again
  }

  private take(): void {
    for (let r = this.ring.nextResponse(); r !== undefined && !this.dead; r = this.ring.nextResponse()) {
      const w = this.waiting.get(r.id);
      if (w === undefined) {
        this.broken(`control response for unknown id ${r.id}`);
        return;
      }
      this.waiting.delete(r.id);
      clearTimeout(w.timer);
      w.resolve(r);
    }
  }

  dispose(): void {
    if (this.dead) return;
    this.dead = true;
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new XenpvError('ESHUTDOWN', 'control ring closed', {}));
    }
    this.waiting.clear();
    this.evt.dispose();
    this.pool.release([this.page]);
  }
}

export interface HashSetup {
  readonly key: Uint8Array;
  readonly flags: number;
  /** Mapping table: entry i steers to queue mapping[i]. */
  readonly mapping: readonly number[];
}

export const DEFAULT_HASH_FLAGS = XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;

/** Configure the backend's Toeplitz steering: algorithm, flags, key, mapping (netif.h order). */
export async function setupHash(ctrl: FrontCtrl, pool: PagePool, h: HashSetup): Promise<void> {
  const check = (r: XenNetifCtrlResponse, what: string): void => {
    if (r.status !== XEN_NETIF_CTRL_STATUS_SUCCESS) throw new XenpvError('EIO', `${what}: status ${r.status}`, { status: r.status });
  };
  check(await ctrl.request(T.XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, [XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ, 0, 0]), 'set algorithm');
  check(await ctrl.request(T.XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, [h.flags, 0, 0]), 'set flags');
  const [page] = pool.grant(1, true) as [GrantedPage];
  try {
    page.bytes.set(h.key, 0);
    check(await ctrl.request(T.XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, [page.ref, h.key.length, 0]), 'set key');
    check(await ctrl.request(T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, [h.mapping.length, 0, 0]), 'set mapping size');
    const view = new DataView(page.bytes.buffer, page.bytes.byteOffset, 4096);
    page.bytes.fill(0);
    h.mapping.forEach((q, i) => view.setUint32(i * 4, q, true));
    check(await ctrl.request(T.XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, [page.ref, h.mapping.length, 0]), 'set mapping');
  } finally {
    pool.release([page]);
  }
}
