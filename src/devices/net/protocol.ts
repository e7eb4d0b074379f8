/**
 * PV network protocol facts that are not struct layouts (those are `abi/io/netif.ts`): the
 * xenstore keys each end writes, catalogued as `xen/io/netif.h` does (Values / Default / who
 * writes it), the limits xenpv applies, and the ring codecs of the tx, rx and control rings.
 *
 * Extra-info slots overlay tx requests and rx responses (netif.h "Extra Info"), so a slot is
 * decoded both ways from the ring's one private copy; the caller knows from the previous
 * slot's flags which reading is meant.
 */
import {
  NETIF_RX_REQUEST,
  NETIF_RX_RESPONSE,
  NETIF_TX_REQUEST,
  NETIF_TX_RESPONSE,
  XEN_NETIF_CTRL_REQUEST,
  XEN_NETIF_CTRL_RESPONSE,
  XEN_NETIF_GSO_TYPE_TCPV4,
  XEN_NETIF_GSO_TYPE_TCPV6,
} from '../../abi/io/netif.js';
import {
  decodeNetifExtraInfo,
  decodeNetifRxRequest,
  decodeNetifRxRequestInto,
  decodeNetifRxResponse,
  decodeNetifTxRequest,
  decodeNetifTxRequestInto,
  decodeNetifTxResponse,
  decodeXenNetifCtrlRequest,
  decodeXenNetifCtrlResponse,
  encodeNetifExtraInfo,
  encodeNetifRxRequest,
  encodeNetifRxResponse,
  encodeNetifTxRequest,
  encodeNetifTxResponse,
  encodeXenNetifCtrlRequest,
  encodeXenNetifCtrlResponse,
  type NetifExtraInfo,
  type NetifRxRequest,
  type NetifRxResponse,
  type NetifTxRequest,
  type NetifTxResponse,
  type XenNetifCtrlRequest,
  type XenNetifCtrlResponse,
} from '../../abi/io/netif-codec.js';
import { BugError } from '../../base/index.js';
import { BackRing, RING_PAGE_SIZE, ringEntries, type RingCodec, type RingOptions } from '../../ring/index.js';
import type { GsoInfo, GsoType } from './bridge/port.js';

export interface KeySpec {
  /** Who writes it: 'back' (backend dir), 'front' (frontend dir), 'toolstack' (libxl). */
  readonly side: 'back' | 'front' | 'toolstack';
  readonly values: string;
  readonly default?: string;
  readonly note?: string;
}

/** Every node netif.h (and libxl) documents that xenpv reads or writes. */
export const NET_KEYS = {
  // ---- backend dir, written by the toolstack (libxl) ----
  mac: { side: 'toolstack', values: 'xx:xx:xx:xx:xx:xx', note: 'also in the frontend dir' },
  bridge: { side: 'toolstack', values: 'bridge name', default: 'xenbr0' },
  rate: { side: 'toolstack', values: '"<bytes>,<usecs>"', note: 'absent or malformed = unlimited' },
  mtu: { side: 'toolstack', values: '68..65535', default: '1500' },
  online: { side: 'toolstack', values: '0/1', default: '1' },
  // ---- backend dir, written by netback ----
  'feature-sg': { side: 'back', values: '0/1', default: '0', note: 'also a frontend node: accepts multi-slot rx' },
  'feature-gso-tcpv4': { side: 'back', values: '0/1', default: '0', note: 'also a frontend node' },
  'feature-gso-tcpv6': { side: 'back', values: '0/1', default: '0', note: 'also a frontend node' },
  'feature-ipv6-csum-offload': { side: 'back', values: '0/1', default: '0', note: 'also a frontend node' },
  'feature-no-csum-offload': { side: 'back', values: '0/1', default: '0', note: '1 turns IPv4 TCP/UDP csum offload OFF' },
  'feature-rx-copy': { side: 'back', values: '0/1', default: '0', note: 'required by every modern frontend' },
  'feature-rx-flip': { side: 'back', values: '0', default: '0', note: 'page flipping: never' },
  'feature-multicast-control': { side: 'back', values: '0/1', default: '0' },
  'feature-dynamic-multicast-control': { side: 'back', values: '0/1', default: '0', note: 'request-multicast-control is watched' },
  'feature-split-event-channels': { side: 'back', values: '0/1', default: '0' },
  'multi-queue-max-queues': { side: 'back', values: 'uint32', default: '1 (absent)' },
  'feature-ctrl-ring': { side: 'back', values: '0/1', default: '0' },
  carrier: { side: 'back', values: '0/1', default: '1 (absent = up)' },
  // ---- frontend dir ----
  'tx-ring-ref': { side: 'front', values: 'grant ref', note: 'top level with one queue, else queue-N/' },
  'rx-ring-ref': { side: 'front', values: 'grant ref' },
  'event-channel': { side: 'front', values: 'port', note: 'or event-channel-tx + event-channel-rx (split)' },
  'event-channel-tx': { side: 'front', values: 'port' },
  'event-channel-rx': { side: 'front', values: 'port' },
  'multi-queue-num-queues': { side: 'front', values: '1..multi-queue-max-queues', default: '1' },
  'request-rx-copy': { side: 'front', values: '0/1', default: '0', note: 'must be 1: rx-flip is not supported' },
  'feature-rx-notify': { side: 'front', values: '0/1', default: '0', note: 'without it the backend polls for rx buffers' },
  'request-multicast-control': { side: 'front', values: '0/1', default: '0', note: 'sampled at Connected unless dynamic' },
  'ctrl-ring-ref': { side: 'front', values: 'grant ref', note: 'with event-channel-ctrl, before Connected' },
  'event-channel-ctrl': { side: 'front', values: 'port' },
  trusted: { side: 'toolstack', values: '0/1', default: '1', note: 'frontend dir; 0 = distrust the backend' },
} as const satisfies Record<string, KeySpec>;

/** Limits of xenpv's netback (Linux netback's values where it has one). */
export const BACK_LIMITS = {
  /** XEN_NETBK_LEGACY_SLOTS_MAX = XEN_NETIF_NR_SLOTS_MIN: more data slots than this drop the packet. */
  maxSlots: 18,
  /**
   * Linux fatal_skb_slots (default 20): a chain reaching this many follow-on slots is
   * "Malicious frontend using %d slots" and disables the vif.
   */
  fatalSlots: 20,
  /** Queues a frontend may ask for (Linux: online CPUs). */
  maxQueues: 4,
  /** Packets taken off one tx ring per event before yielding (NAPI budget). */
  txBudget: 64,
  /** Control requests handled per event before yielding. */
  ctrlBudget: 16,
  /** Events per window before the handler defers work to the window's end (R6, xenconsoled: 30 / 200 ms). */
  eventAllowance: 1000,
  eventWindowMs: 200,
  /** XEN_NETBK_MAX_HASH_KEY_SIZE. */
  maxHashKey: 40,
  /** XEN_NETBK_MAX_HASH_MAPPING_SIZE. */
  maxHashMapping: 128,
  /** XEN_NETBK_MCAST_MAX. */
  maxMulticast: 64,
  /** How long the rx side may have frames waiting with no buffers posted before it counts a stall (R7). */
  rxStallMs: 1000,
} as const;

/** Defaults of xenpv's netfront. */
export const FRONT_DEFAULTS = {
  maxQueues: 4,
  /**
   * Granted pages per queue for transmit data (one slot each): the whole 256-slot ring, as
   * Linux netfront can have NET_TX_RING_SIZE requests out. With 64, a sender had at most 64
   * frames in flight and stalled on every backend wake-up (bench net: 123k pps, threads idle).
   */
  txBuffers: 256,
  /** Receive buffers posted per queue: the whole 256-slot ring, as Linux netfront posts NET_RX_RING_SIZE (a receiver woken late still has room for a burst). */
  rxBuffers: 256,
  /** Frames held while the tx ring or buffers are full; beyond this they are dropped. */
  txBacklog: 256,
  /** Responses handled per event before yielding. */
  rxBudget: 64,
  /** Slots one received packet may use (Linux netfront: MAX_SKB_FRAGS + 1). */
  maxRxSlots: 18,
  /** Reconnect attempts per window after the backend restarts (R9). */
  reconnects: 5,
  reconnectWindowMs: 10_000,
} as const;

/** Linux netback's default MTU when the toolstack writes none (netif.h "MTU"). */
export const DEFAULT_MTU = 1500;

/** One tx ring slot, read both ways: as a request and (on demand) as an extra-info overlay. */
export interface TxSlot {
  readonly req: NetifTxRequest;
  extra(): NetifExtraInfo;
}

/**
 * The extra-info overlay of a slot's 8 bytes, kept as two little-endian words from the ring's
 * private copy and decoded only when the previous slot said an extra follows (most slots are
 * plain data).
 */
export function overlayExtra(lo: number, hi: number): NetifExtraInfo {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setUint32(0, lo, true);
  dv.setUint32(4, hi, true);
  return decodeNetifExtraInfo(dv, 0);
}

/*
 * TxSlotRead (netback, one per tx slot) and RxSlotRead (RX_FRONT_CODEC's, one per rx response;
 * netfront itself decodes into one reused object, front-codec.ts) are classes of their own,
 * not subclasses of a common overlay class: a derived constructor's super() call costs V8 a
 * generic construct stub per slot (bench net: ~1.5% of dom0's time per packet went to the
 * constructor chain).
 */
class TxSlotRead implements TxSlot, NetifTxRequest {
  gref = 0;
  offset = 0;
  flags = 0;
  id = 0;
  size = 0;

  /** Its own `req` (not a request object beside it); rewritten from slot copy `v` (txBackRingCodec reuses it). */
  read(v: DataView): this {
    return decodeNetifTxRequestInto(v, 0, this);
  }

  get req(): NetifTxRequest {
    return this;
  }

  /** The overlay's two words are the request's first 8 bytes: gref, then offset and flags (u16 each, little-endian). */
  extra(): NetifExtraInfo {
    return overlayExtra(this.gref, this.offset | (this.flags << 16));
  }
}

class RxSlotRead implements RxSlot {
  private readonly lo: number;
  private readonly hi: number;

  constructor(v: DataView, readonly rsp: NetifRxResponse) {
    this.lo = v.getUint32(0, true);
    this.hi = v.getUint32(4, true);
  }

  extra(): NetifExtraInfo {
    return overlayExtra(this.lo, this.hi);
  }
}

/** What a frontend writes into a tx slot. */
export type TxSlotOut = { readonly kind: 'req'; readonly req: NetifTxRequest } | { readonly kind: 'extra'; readonly extra: NetifExtraInfo };

/** One rx ring response slot, read both ways. */
export interface RxSlot {
  readonly rsp: NetifRxResponse;
  extra(): NetifExtraInfo;
}

export type RxSlotOut = { readonly kind: 'rsp'; readonly rsp: NetifRxResponse } | { readonly kind: 'extra'; readonly extra: NetifExtraInfo };

const TX_REQ_SIZE = NETIF_TX_REQUEST.layouts.x86_64.size;
const TX_RSP_SIZE = NETIF_TX_RESPONSE.layouts.x86_64.size;
const RX_REQ_SIZE = NETIF_RX_REQUEST.layouts.x86_64.size;
const RX_RSP_SIZE = NETIF_RX_RESPONSE.layouts.x86_64.size;

/** `DEFINE_RING_TYPES(netif_tx, ...)`: 12-byte entries, 256 per page. */
export const TX_RING_CODEC: RingCodec<TxSlot, NetifTxResponse> & { encodeSlot(s: TxSlotOut, out: DataView): void } = {
  requestSize: TX_REQ_SIZE,
  responseSize: TX_RSP_SIZE,
  encodeRequest: (slot, out) => encodeNetifTxRequest(out, 0, slot.req),
  encodeResponse: (rsp, out) => encodeNetifTxResponse(out, 0, rsp),
  decodeRequest: (v) => new TxSlotRead().read(v),
  decodeResponse: (v) => decodeNetifTxResponse(v, 0),
  encodeSlot(s, out) {
    if (s.kind === 'req') encodeNetifTxRequest(out, 0, s.req);
    else encodeNetifExtraInfo(out, 0, s.extra);
  },
};

/** Entries of a one-page netif ring: 256 for tx (12-byte entries) and rx (8-byte). */
const TX_RING_ENTRIES = ringEntries(RING_PAGE_SIZE, Math.max(TX_REQ_SIZE, TX_RSP_SIZE));
const RX_RING_ENTRIES = ringEntries(RING_PAGE_SIZE, Math.max(RX_REQ_SIZE, RX_RSP_SIZE));

/**
 * netback's codec for ONE tx ring (netif rings are one page): TX_RING_CODEC's decoding into an
 * object kept per slot and rewritten when the slot's index comes round again
 * (RingCodec.decodeRequest). Request objects were most of what dom0 allocated per packet
 * (a sampling heap profile of bench net's stream: 36 %, with the rx requests' 23 %), and the
 * young-generation collections they caused ran on V8's helper threads, which share the two
 * cores with the guests. netback keeps no request past its answer: a consumed request holds its
 * slot (RING_REQUEST_CONS_OVERFLOW), so the slot's index cannot come round while it is pending.
 */
export function txBackRingCodec(): typeof TX_RING_CODEC & { readonly entries: number } {
  return perSlotCodec(TX_RING_CODEC, TX_RING_ENTRIES, () => new TxSlotRead(), (v, slot) => slot.read(v));
}

/** RX_BACK_CODEC for one rx ring, its requests decoded into an object kept per slot (as txBackRingCodec). */
export function rxBackRingCodec(): typeof RX_BACK_CODEC & { readonly entries: number } {
  return perSlotCodec(RX_BACK_CODEC, RX_RING_ENTRIES, () => ({ id: 0, gref: 0 }), (v, slot) => decodeNetifRxRequestInto(v, 0, slot));
}

/** `base` decoding each request into the object made for its slot (`entries` of them), rewritten when its index comes round. */
function perSlotCodec<C extends RingCodec<unknown, unknown>, S extends ReturnType<C['decodeRequest']>>(base: C, entries: number, make: () => S, read: (v: DataView, slot: S) => S): C & { readonly entries: number } {
  const slots = Array.from({ length: entries }, make);
  const mask = entries - 1;
  return { ...base, entries, decodeRequest: (v: DataView, index: number) => read(v, slots[index & mask]!) };
}

/** netback's tx ring on its one granted page, with a per-slot codec of its own (txBackRingCodec). */
export function attachTxBackRing(page: Uint8Array, options: RingOptions): BackRing<TxSlot, NetifTxResponse> {
  return attachPerSlot(page, txBackRingCodec(), options);
}

/** netback's rx ring on its one granted page, with a per-slot codec of its own (rxBackRingCodec). */
export function attachRxBackRing(page: Uint8Array, options: RingOptions): BackRing<NetifRxRequest, RxSlotOut> {
  return attachPerSlot(page, rxBackRingCodec(), options);
}

/** A ring whose codec keeps an object per slot: it must have exactly the codec's slots, or a slot's object would be rewritten before its lap. */
function attachPerSlot<Req, Rsp>(page: Uint8Array, codec: RingCodec<Req, Rsp> & { readonly entries: number }, options: RingOptions): BackRing<Req, Rsp> {
  const ring = BackRing.attach(page, codec, 0, options);
  if (ring.size !== codec.entries) throw new BugError(`a netif ring of ${ring.size} entries, its codec made for ${codec.entries}`);
  return ring;
}

/**
 * The frontend's view of the tx ring: it encodes requests or extras (`TxSlotOut`). The
 * backend's view decodes `TxSlot`. Both share the geometry. netfront itself uses
 * front-codec.ts's txFrontCodec; this one is the reference that codec is tested against
 * (front-codec.test.ts), as RX_FRONT_CODEC is for rxFrontCodec.
 */
export const TX_FRONT_CODEC: RingCodec<TxSlotOut, NetifTxResponse> = {
  requestSize: TX_REQ_SIZE,
  responseSize: TX_RSP_SIZE,
  encodeRequest: (slot, out) => TX_RING_CODEC.encodeSlot(slot, out),
  encodeResponse: (rsp, out) => encodeNetifTxResponse(out, 0, rsp),
  decodeRequest: (v) => ({ kind: 'req', req: decodeNetifTxRequest(v, 0) }),
  decodeResponse: (v) => decodeNetifTxResponse(v, 0),
};

/** The backend's view of the rx ring: requests are buffers, responses data or extras. */
export const RX_BACK_CODEC: RingCodec<NetifRxRequest, RxSlotOut> = {
  requestSize: RX_REQ_SIZE,
  responseSize: RX_RSP_SIZE,
  encodeRequest: (req, out) => encodeNetifRxRequest(out, 0, req),
  encodeResponse: (s, out) => {
    if (s.kind === 'rsp') encodeNetifRxResponse(out, 0, s.rsp);
    else encodeNetifExtraInfo(out, 0, s.extra);
  },
  decodeRequest: (v) => decodeNetifRxRequest(v, 0),
  decodeResponse: (v) => ({ kind: 'rsp', rsp: decodeNetifRxResponse(v, 0) }),
};

/** The frontend's view of the rx ring (the reference front-codec.ts's rxFrontCodec is tested against). */
export const RX_FRONT_CODEC: RingCodec<NetifRxRequest, RxSlot> = {
  requestSize: RX_REQ_SIZE,
  responseSize: RX_RSP_SIZE,
  encodeRequest: (req, out) => encodeNetifRxRequest(out, 0, req),
  encodeResponse: (s, out) => encodeNetifRxResponse(out, 0, s.rsp),
  decodeRequest: (v) => decodeNetifRxRequest(v, 0),
  decodeResponse: (v) => new RxSlotRead(v, decodeNetifRxResponse(v, 0)),
};

/** `DEFINE_RING_TYPES(xen_netif_ctrl, ...)`: 16-byte entries. */
export const CTRL_RING_CODEC: RingCodec<XenNetifCtrlRequest, XenNetifCtrlResponse> = {
  requestSize: XEN_NETIF_CTRL_REQUEST.layouts.x86_64.size,
  responseSize: XEN_NETIF_CTRL_RESPONSE.layouts.x86_64.size,
  encodeRequest: (r, out) => encodeXenNetifCtrlRequest(out, 0, r),
  encodeResponse: (r, out) => encodeXenNetifCtrlResponse(out, 0, r),
  decodeRequest: (v) => decodeXenNetifCtrlRequest(v, 0),
  decodeResponse: (v) => decodeXenNetifCtrlResponse(v, 0),
};

/** Where a queue's keys live: the device dir for one queue, `queue-N/` for several (netif.h). */
export function queueDir(deviceDir: string, queue: number, numQueues: number): string {
  return numQueues === 1 ? deviceDir : `${deviceDir}/queue-${queue}`;
}

export type { GsoType } from './bridge/port.js';

/** The GSO extra-info slot (XEN_NETIF_EXTRA_TYPE_GSO) for a frame of `gso`; flags 0 (the last extra). */
export function gsoExtraInfo(gso: GsoInfo): NetifExtraInfo {
  const type = gso.type === 'tcpv4' ? XEN_NETIF_GSO_TYPE_TCPV4 : XEN_NETIF_GSO_TYPE_TCPV6;
  return { kind: 'gso', flags: 0, size: gso.size, type, features: 0 };
}

/** A peer's XEN_NETIF_GSO_TYPE_* as our name; undefined for any other number. */
export function gsoTypeOf(wire: number): GsoType | undefined {
  if (wire === XEN_NETIF_GSO_TYPE_TCPV4) return 'tcpv4';
  if (wire === XEN_NETIF_GSO_TYPE_TCPV6) return 'tcpv6';
  return undefined;
}
