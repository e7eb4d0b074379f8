/**
 * The fuzz test's reference for netback's transmit side (not a test): what netif.h and Linux
 * netback (xenvif_tx_build_gops, xenvif_get_extras, xenvif_count_requests) say must happen to
 * a run of raw tx slots, written from those rules and independently of tx-parse.ts, which it
 * checks. It decodes the 12-byte slots itself.
 *
 * Per packet, in ring order: extra-info slots (type 0 or >= XEN_NETIF_EXTRA_TYPE_MAX, or one
 * missing, is fatal); a multicast add/del is answered at once without data; the data chain
 * (running past the published slots or reaching 20 follow-on slots is fatal, more than 18 or a
 * fragment larger than what the total leaves is an error, a fragment crossing its page is
 * fatal); then the first fragment (shorter than an Ethernet header: error; crossing its page:
 * fatal) and the GSO extra (size 0 or unknown type: fatal). A packet whose every fragment
 * copies is answered OKAY and forwarded, else ERROR. Extra slots are answered NULL.
 */
import {
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETTXF_csum_blank,
  NETTXF_extra_info,
  NETTXF_more_data,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
} from '../../abi/io/netif.js';
import { ETH_HLEN } from '../../devices/net/bridge/mac.js';
import { PAGE_SIZE } from '../../hv/platform.js';

export interface ModelLimits {
  readonly maxSlots: number;
  readonly fatalSlots: number;
  readonly maxMulticast: number;
}

export interface Forwarded {
  readonly frame: Uint8Array;
  readonly gso: boolean;
  readonly csumBlank: boolean;
}

export interface TxExpectation {
  /** One per slot netback answers, in ring order: a data slot's id and status, or an extra's NULL. */
  readonly responses: { readonly id: number | undefined; readonly status: number }[];
  /** Set when a packet is fatal: netback answers nothing from it on and disables the vif. */
  readonly fatal: string | undefined;
  readonly forwarded: Forwarded[];
  /**
   * Packets refused with errors, by the first rule each broke, in netback's words (its
   * txDropReasons): 'too many' slots, 'slot size' larger than what remains, 'bad packet' size,
   * 'grant copy' failed. A refused multicast update is not a dropped packet.
   */
  readonly drops: Record<string, number>;
}

interface Req {
  readonly gref: number;
  readonly offset: number;
  readonly flags: number;
  readonly id: number;
  readonly size: number;
}

function req(s: Uint8Array): Req {
  const v = new DataView(s.buffer, s.byteOffset, 12);
  return { gref: v.getUint32(0, true), offset: v.getUint16(4, true), flags: v.getUint16(6, true), id: v.getUint16(8, true), size: v.getUint16(10, true) };
}

/**
 * `slots`: every slot published, in order. `page(ref)`: the bytes of a page granted to dom0
 * (a copy from it succeeds), or undefined (the copy fails). `mcast`: the vif's multicast
 * list as hex keys, updated as netback would.
 */
export function expectTx(slots: readonly Uint8Array[], page: (ref: number) => Uint8Array | undefined, mcast: Set<string>, limits: ModelLimits): TxExpectation {
  const responses: TxExpectation['responses'] = [];
  const forwarded: Forwarded[] = [];
  const drops: Record<string, number> = {};
  let i = 0;
  const fatal = (reason: string): TxExpectation => ({ responses, fatal: reason, forwarded, drops });
  while (i < slots.length) {
    const first = req(slots[i++]!);
    const answers: { id: number | undefined; status: number }[] = [{ id: first.id, status: NETIF_RSP_OKAY }];
    const extras = new Map<number, Uint8Array>();
    if ((first.flags & NETTXF_extra_info) !== 0) {
      for (;;) {
        if (i >= slots.length) return fatal('missing extra info');
        const e = slots[i++]!;
        answers.push({ id: undefined, status: NETIF_RSP_NULL });
        if (e[0] === 0 || e[0]! >= XEN_NETIF_EXTRA_TYPE_MAX) return fatal(`invalid extra type ${e[0]}`);
        extras.set(e[0]!, e);
        if ((e[1]! & XEN_NETIF_EXTRA_FLAG_MORE) === 0) break;
      }
    }
    const mc = extras.get(XEN_NETIF_EXTRA_TYPE_MCAST_ADD) ?? extras.get(XEN_NETIF_EXTRA_TYPE_MCAST_DEL);
    if (mc !== undefined) {
      const key = Buffer.from(mc.subarray(2, 8)).toString('hex');
      let ok = true;
      if (mc[0] === XEN_NETIF_EXTRA_TYPE_MCAST_DEL) mcast.delete(key);
      else if (!mcast.has(key)) {
        ok = mcast.size < limits.maxMulticast;
        if (ok) mcast.add(key);
      }
      answers[0] = { id: first.id, status: ok ? NETIF_RSP_OKAY : NETIF_RSP_ERROR };
      responses.push(...answers);
      continue;
    }
    // The data chain: the first slot's size is the packet's; each follow-on's is its own.
    let remaining = first.size;
    let dropped: string | undefined;
    const frags: Req[] = [];
    for (let n = 0, more = (first.flags & NETTXF_more_data) !== 0; more; n++) {
      if (i >= slots.length) return fatal('chain past the published requests');
      if (n >= limits.fatalSlots) return fatal('too many slots: malicious');
      if (n >= limits.maxSlots) dropped ??= 'too many';
      const r = req(slots[i++]!);
      answers.push({ id: r.id, status: NETIF_RSP_OKAY });
      if (r.size > remaining) dropped ??= 'slot size';
      remaining -= r.size;
      if (r.offset + r.size > PAGE_SIZE) return fatal('fragment crosses its page');
      if (r.size > 0) frags.push(r);
      more = (r.flags & NETTXF_more_data) !== 0;
    }
    const error = (reason: string): void => {
      drops[reason] = (drops[reason] ?? 0) + 1;
      responses.push(...answers.map((a) => (a.id === undefined ? a : { id: a.id, status: NETIF_RSP_ERROR })));
    };
    if (dropped !== undefined || remaining < ETH_HLEN) {
      error(dropped ?? 'bad packet');
      continue;
    }
    if (first.offset + remaining > PAGE_SIZE) return fatal('first fragment crosses its page');
    const gso = extras.get(XEN_NETIF_EXTRA_TYPE_GSO);
    if (gso !== undefined) {
      const v = new DataView(gso.buffer, gso.byteOffset, 8);
      if (v.getUint16(2, true) === 0 || (gso[4] !== 1 && gso[4] !== 2)) return fatal('bad GSO extra');
    }
    const parts = [{ gref: first.gref, offset: first.offset, size: remaining }, ...frags];
    const pages = parts.map((p) => page(p.gref));
    if (pages.some((p) => p === undefined)) {
      error('grant copy');
      continue;
    }
    const frame = new Uint8Array(first.size);
    let at = 0;
    parts.forEach((p, k) => {
      frame.set(pages[k]!.subarray(p.offset, p.offset + p.size), at);
      at += p.size;
    });
    responses.push(...answers);
    forwarded.push({ frame, gso: gso !== undefined, csumBlank: (first.flags & NETTXF_csum_blank) !== 0 });
  }
  return { responses, fatal: undefined, forwarded, drops };
}
