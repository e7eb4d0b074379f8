/**
 * Netback's reading of one guest-transmit packet off the tx ring (netif.h "Guest transmit"),
 * sans-IO: slots come from a `TxSlotSource`, the result says what to do and how to answer.
 *
 * Wire format: the first slot carries the TOTAL packet size; NETTXF_extra_info puts extra-info
 * slots right after it (chained by XEN_NETIF_EXTRA_FLAG_MORE); NETTXF_more_data continues the
 * packet in the next data slot, whose size is that fragment's. The first fragment's own length
 * is the total minus the later fragments.
 *
 * Verdicts follow Linux netback (xenvif_tx_build_gops, xenvif_count_requests, xenvif_get_extras):
 * - fatal (the frontend is malicious or broken; the vif is disabled): a chain running past the
 *   published requests ("Asked for %d slots but exceeds this limit"), reaching fatalSlots
 *   follow-on slots ("Malicious frontend using %d slots"), a fragment crossing its page,
 *   an extra-info slot missing or of an invalid type, a GSO extra with size 0 or a bad type;
 * - drop with NETIF_RSP_ERROR on every slot (buggy, not malicious): more than maxSlots
 *   follow-on slots, a fragment larger than what the total leaves ("slot size %u > remaining
 *   size %u"), a first fragment shorter than an Ethernet header ("Bad packet size").
 * - Zero-length follow-on fragments are legal (XSA-448): they are answered OKAY and skipped.
 */
import { ETH_HLEN } from './bridge/mac.js';
import {
  NETTXF_csum_blank,
  NETTXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
  XEN_NETIF_EXTRA_FLAG_MORE,
} from '../../abi/io/netif.js';
import type { NetifExtraInfo } from '../../abi/io/netif-codec.js';
import { PAGE_SIZE } from '../../hv/platform.js';
import type { GsoInfo } from './bridge/port.js';
import { gsoTypeOf, type TxSlot } from './protocol.js';

export interface TxSlotSource {
  /** Requests published and not yet taken. */
  available(): number;
  /** Take the next request (only called while available() > 0). */
  take(): TxSlot;
}

/** One piece of packet data in a granted page of the frontend. */
export interface TxFragment {
  readonly gref: number;
  readonly offset: number;
  readonly len: number;
}

/** How each consumed slot is answered, in ring order: a data slot by its id, an extra with NULL. */
export type TxAnswer = { readonly kind: 'data'; readonly id: number } | { readonly kind: 'extra' };

export interface TxPacket {
  readonly kind: 'packet';
  readonly size: number;
  readonly frags: readonly TxFragment[];
  readonly csumBlank: boolean;
  readonly dataValidated: boolean;
  readonly gso?: GsoInfo;
  readonly hash?: { readonly type: number; readonly value: number };
  readonly answers: readonly TxAnswer[];
}

export type TxVerdict =
  | TxPacket
  | { readonly kind: 'mcast'; readonly op: 'add' | 'del'; readonly addr: Uint8Array; readonly answers: readonly TxAnswer[] }
  | { readonly kind: 'drop'; readonly reason: string; readonly answers: readonly TxAnswer[] }
  | { readonly kind: 'fatal'; readonly reason: string };

export interface TxParseLimits {
  readonly maxSlots: number;
  readonly fatalSlots: number;
}

type Extras = Map<NetifExtraInfo['kind'], NetifExtraInfo>;

/** Read the extra-info chain after a first slot; a string is the fatal reason. */
function readExtras(src: TxSlotSource, answers: TxAnswer[]): Extras | string {
  const extras: Extras = new Map();
  for (;;) {
    if (src.available() === 0) return 'missing extra info';
    const e = src.take().extra();
    answers.push({ kind: 'extra' });
    if (e.kind === 'unknown') return `invalid extra type ${e.type}`;
    extras.set(e.kind, e); // a later extra of the same type replaces an earlier one, as in Linux
    if ((e.flags & XEN_NETIF_EXTRA_FLAG_MORE) === 0) return extras;
  }
}

interface Chain {
  readonly frags: TxFragment[];
  readonly firstLen: number;
  readonly drop?: string;
}

/** Walk the NETTXF_more_data chain (xenvif_count_requests); a string is the fatal reason. */
function readChain(firstSize: number, firstFlags: number, src: TxSlotSource, limits: TxParseLimits, answers: TxAnswer[]): Chain | string {
  const frags: TxFragment[] = [];
  let remaining = firstSize;
  let drop: string | undefined;
  let more = (firstFlags & NETTXF_more_data) !== 0;
  for (let slots = 0; more; slots++) {
    if (src.available() === 0) return `asked for ${slots + 1} slots but only ${slots} are published`;
    if (slots >= limits.fatalSlots) return `malicious frontend using ${slots} slots, threshold ${limits.fatalSlots}`;
    if (drop === undefined && slots >= limits.maxSlots) drop = `too many slots (${slots + 1}) exceeding limit (${limits.maxSlots})`;
    const req = src.take().req;
    answers.push({ kind: 'data', id: req.id });
    if (drop === undefined && req.size > remaining) drop = `slot size ${req.size} > remaining size ${remaining}`;
    remaining -= req.size;
    // "No crossing a page as the payload mustn't fragment."
    if (req.offset + req.size > PAGE_SIZE) return `cross page boundary, offset ${req.offset} size ${req.size}`;
    if (drop === undefined && req.size > 0) frags.push({ gref: req.gref, offset: req.offset, len: req.size });
    more = (req.flags & NETTXF_more_data) !== 0;
  }
  return drop === undefined ? { frags, firstLen: remaining } : { frags, firstLen: remaining, drop };
}

function gsoOf(e: NetifExtraInfo | undefined): TxPacket['gso'] | string | undefined {
  if (e === undefined || e.kind !== 'gso') return undefined;
  if (e.size === 0) return 'GSO size must not be zero';
  const type = gsoTypeOf(e.type);
  return type === undefined ? `bad GSO type ${e.type}` : { type, size: e.size };
}

/**
 * Parse the packet that starts with `first` (already taken from the ring). Consumes exactly
 * the slots the verdict's `answers` list, except for `fatal`, after which the ring is dead.
 */
export function parseTxPacket(first: TxSlot, src: TxSlotSource, limits: TxParseLimits): TxVerdict {
  const req = first.req;
  if (isSingleSlot(req)) return singleSlot(req);
  const answers: TxAnswer[] = [{ kind: 'data', id: req.id }];
  let extras: Extras = new Map();
  if ((req.flags & NETTXF_extra_info) !== 0) {
    const got = readExtras(src, answers);
    if (typeof got === 'string') return { kind: 'fatal', reason: got };
    extras = got;
  }
  // A multicast filter update is a dummy transmit: answered at once, no data (netif.h).
  const mcast = extras.get('mcast_add') ?? extras.get('mcast_del');
  if (mcast !== undefined && (mcast.kind === 'mcast_add' || mcast.kind === 'mcast_del')) {
    return { kind: 'mcast', op: mcast.kind === 'mcast_add' ? 'add' : 'del', addr: mcast.addr, answers };
  }
  const chain = readChain(req.size, req.flags, src, limits, answers);
  if (typeof chain === 'string') return { kind: 'fatal', reason: chain };
  if (chain.drop !== undefined) return { kind: 'drop', reason: chain.drop, answers };
  if (chain.firstLen < ETH_HLEN) return { kind: 'drop', reason: `bad packet size ${chain.firstLen}`, answers };
  if (req.offset + chain.firstLen > PAGE_SIZE) {
    return { kind: 'fatal', reason: `first slot crosses its page: offset ${req.offset} size ${chain.firstLen}` };
  }
  const gso = gsoOf(extras.get('gso'));
  if (typeof gso === 'string') return { kind: 'fatal', reason: gso };
  const hashExtra = extras.get('hash');
  const packet: TxPacket = {
    kind: 'packet',
    size: req.size,
    frags: [{ gref: req.gref, offset: req.offset, len: chain.firstLen }, ...chain.frags],
    csumBlank: (req.flags & NETTXF_csum_blank) !== 0,
    dataValidated: (req.flags & NETTXF_data_validated) !== 0,
    answers,
    ...(gso === undefined ? {} : { gso }),
    ...(hashExtra?.kind === 'hash' ? { hash: { type: hashExtra.type, value: hashExtra.value } } : {}),
  };
  return packet;
}

/** A request that is a whole packet by itself: no extra-info slots, no continuation. */
export function isSingleSlot(req: TxSlot['req']): boolean {
  return (req.flags & (NETTXF_extra_info | NETTXF_more_data)) === 0;
}

/**
 * The verdict on a one-slot packet (`isSingleSlot`) that is refused, or undefined when it is
 * a packet of `req.size` bytes at `req.offset` in `req.gref`: what netback's per-packet path
 * checks without building a TxPacket (no objects for the common case).
 */
export function singleSlotFault(req: TxSlot['req']): Exclude<TxVerdict, TxPacket> | undefined {
  if (req.size < ETH_HLEN) return { kind: 'drop', reason: `bad packet size ${req.size}`, answers: [{ kind: 'data', id: req.id }] };
  if (req.offset + req.size > PAGE_SIZE) {
    return { kind: 'fatal', reason: `first slot crosses its page: offset ${req.offset} size ${req.size}` };
  }
  return undefined;
}

/**
 * The common packet, one slot without extras: the same checks as the general path (a chain
 * of none, no extras), without its map and intermediate objects.
 */
function singleSlot(req: TxSlot['req']): TxVerdict {
  const bad = singleSlotFault(req);
  if (bad !== undefined) return bad;
  const answers: TxAnswer[] = [{ kind: 'data', id: req.id }];
  return {
    kind: 'packet', size: req.size, frags: [{ gref: req.gref, offset: req.offset, len: req.size }],
    csumBlank: (req.flags & NETTXF_csum_blank) !== 0, dataValidated: (req.flags & NETTXF_data_validated) !== 0, answers,
  };
}
