/**
 * What a netfront queue (front-queue.ts) is given by its NetFront: the platform, the backend,
 * the page pool, its sizes and budgets, the device's counters, and the callbacks that carry
 * received frames and ring errors up; and the info a received frame comes with.
 */
import type { DomId } from '../../base/index.js';
import type { Platform } from '../../hv/platform.js';
import type { FrameInfo } from './bridge/index.js';
import type { PagePool } from './front-pages.js';

export interface RxFrameInfo extends FrameInfo {
  /** The backend's hash of the frame (XEN_NETIF_EXTRA_TYPE_HASH), when hashing is on. */
  readonly hash?: { readonly type: number; readonly value: number };
  /** The queue the frame arrived on. */
  readonly queue?: number;
}

export interface FrontCounters {
  txPackets: number;
  txBytes: number;
  txErrors: number;
  txDropped: number;
  rxPackets: number;
  rxBytes: number;
  rxErrors: number;
  rxDropped: number;
  events: number;
  /** Event-channel notifications sent to the backend (kicks after ring.h's suppression). */
  notifies: number;
}

export interface FrontQueueContext {
  readonly platform: Platform;
  readonly backend: DomId;
  readonly pool: PagePool;
  readonly txBuffers: number;
  readonly rxBuffers: number;
  readonly txBacklog: number;
  readonly rxBudget: number;
  readonly maxRxSlots: number;
  /** What the backend takes on transmit. */
  readonly back: { readonly sg: boolean; readonly gsoV4: boolean; readonly gsoV6: boolean };
  readonly counters: FrontCounters;
  /** The receiver copies what it keeps before `receive` returns (NetFront.rxTransient). */
  rxTransient(): boolean;
  receive(frame: Uint8Array, info: RxFrameInfo): void;
  broken(reason: string): void;
  /** The backlog emptied after responses came back: a paced sender may go on. */
  txRoom(): void;
}
