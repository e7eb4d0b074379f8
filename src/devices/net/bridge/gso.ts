/**
 * Software GSO: cut a TCP super-frame (netif.h's GSO extra info: type TCPv4/TCPv6, `size` =
 * the MSS) into MSS-sized segments for a receiver that did not negotiate that GSO type (a
 * vif without feature-gso-tcpv4/6, or the TAP uplink toward Linux). What Linux's
 * skb_gso_segment / tcp_gso_segment does for a device without TSO, written from the TCP
 * and IP specifications:
 *
 * - every segment carries a copy of the Ethernet, IP (with its options) and TCP headers
 *   (with its options) of the super-frame, and the next `size` bytes of its payload;
 * - TCP sequence number: the super-frame's plus the segment's payload offset (RFC 9293
 *   §3.4, "each octet of data sent over a TCP connection has a sequence number"), u32;
 * - FIN and PSH only on the last segment: the super-frame's FIN is one sequence number after
 *   its last data octet, and PSH marks the end of what the sender pushed;
 * - CWR only on the first (RFC 3168 §6.1.2: CWR is set on the first new data after a
 *   window reduction, not on every segment of it);
 * - IPv4: total length per segment, identification incremented per segment (as TSO
 *   hardware and Linux do unless told the id is fixed), header checksum recomputed;
 *   IPv6: payload length per segment;
 * - the TCP checksum complete on every segment (RFC 9293 §3.1, the pseudo-header sum plus
 *   the segment), whatever the super-frame's field held (a blank, or a partial sum).
 *
 * Frames are peer input: anything that is not TCP directly over IPv4/IPv6 matching the
 * GSO type, fragmented, with lengths that do not add up, or needing more than
 * `MAX_GSO_SEGMENTS` segments is refused (undefined), and the caller counts the drop.
 */
import { u32Add } from '../../../base/index.js';
import { ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './mac.js';
import { IPPROTO_TCP, internetChecksum, ipv4PseudoSum, ipv6PseudoSum } from './checksum.js';
import { FrameSlab } from './slab.js';
import type { FrameInfo, GsoInfo, GsoType } from './port.js';

/**
 * A super-frame is at most XEN_NETIF_MAX_TX_SIZE (65535) bytes; with Linux's minimum send
 * MSS of 48 bytes (TCP_MIN_SND_MSS) that is about 1365 segments. A hostile `size` of 1
 * would ask for 65k frames out of one; 2048 keeps every honest super-frame whole and bounds
 * the work one frame can cause.
 */
export const MAX_GSO_SEGMENTS = 2048;

/** TCP header flag bits (RFC 9293 §3.1, RFC 3168 §6.1). */
export const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
export const TCP_CWR = 0x80;

/** What the headers of a TCP super-frame say, once checked. */
export interface GsoLayout {
  readonly v6: boolean;
  /** Offset of the IP header (14) and of the TCP header. */
  readonly ip: number;
  readonly tcp: number;
  /** Offset of the first payload byte, and the end of the IP packet (trailing padding excluded). */
  readonly payload: number;
  readonly end: number;
}

/** Check the headers of a TCP super-frame of `kind`; undefined if it is anything else. */
export function parseGsoFrame(frame: Uint8Array, kind: GsoType): GsoLayout | undefined {
  if (frame.length < ETH_HLEN) return undefined;
  const type = (frame[12]! << 8) | frame[13]!;
  const ip = ETH_HLEN;
  let tcp: number;
  let end: number;
  if (kind === 'tcpv4') {
    if (type !== ETHERTYPE_IPV4 || frame.length < ip + 20 || frame[ip]! >> 4 !== 4) return undefined;
    const ihl = (frame[ip]! & 0x0f) * 4;
    const total = (frame[ip + 2]! << 8) | frame[ip + 3]!;
    const fragment = ((frame[ip + 6]! << 8) | frame[ip + 7]!) & 0x3fff; // MF + offset
    if (ihl < 20 || fragment !== 0 || frame[ip + 9] !== IPPROTO_TCP) return undefined;
    tcp = ip + ihl;
    end = ip + total;
  } else {
    // Extension headers are not walked: netif GSO TCPv6 with TCP right after the fixed header.
    if (type !== ETHERTYPE_IPV6 || frame.length < ip + 40 || frame[ip]! >> 4 !== 6 || frame[ip + 6] !== IPPROTO_TCP) return undefined;
    tcp = ip + 40;
    end = tcp + ((frame[ip + 4]! << 8) | frame[ip + 5]!);
  }
  if (end > frame.length || tcp + 20 > end) return undefined;
  const payload = tcp + (frame[tcp + 12]! >> 4) * 4;
  if (payload < tcp + 20 || payload > end) return undefined;
  return { v6: kind === 'tcpv6', ip, tcp, payload, end };
}

/** How many segments `frame` becomes at `mss`; 0 when it is not a valid super-frame. */
export function gsoSegmentCount(layout: GsoLayout, mss: number): number {
  if (!Number.isInteger(mss) || mss <= 0) return 0;
  return Math.max(1, Math.ceil((layout.end - layout.payload) / mss));
}

const slab = new FrameSlab();

/**
 * The segments of a GSO super-frame, each a complete frame with valid IP and TCP
 * checksums; undefined (nothing allocated) when the frame is not a valid `gso.type`
 * super-frame or would need more than `maxSegments` segments.
 */
export function segmentGso(
  frame: Uint8Array,
  gso: GsoInfo,
  maxSegments = MAX_GSO_SEGMENTS,
): Uint8Array[] | undefined {
  const layout = parseGsoFrame(frame, gso.type);
  if (layout === undefined) return undefined;
  const count = gsoSegmentCount(layout, gso.size);
  if (count === 0 || count > maxSegments) return undefined;
  const out: Uint8Array[] = [];
  const total = layout.end - layout.payload;
  for (let i = 0; i < count; i++) {
    const from = i * gso.size;
    out.push(buildSegment(frame, layout, from, Math.min(gso.size, total - from), i, count));
  }
  return out;
}

function buildSegment(frame: Uint8Array, l: GsoLayout, from: number, len: number, index: number, count: number): Uint8Array {
  const seg = slab.alloc(l.payload + len);
  seg.set(frame.subarray(0, l.payload), 0);
  seg.set(frame.subarray(l.payload + from, l.payload + from + len), l.payload);
  const t = l.tcp;
  const dv = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
  dv.setUint32(t + 4, u32Add(dv.getUint32(t + 4), from));
  let flags = seg[t + 13]!;
  if (index !== count - 1) flags &= ~(TCP_FIN | TCP_PSH);
  if (index !== 0) flags &= ~TCP_CWR;
  seg[t + 13] = flags;
  const l4Len = seg.length - t;
  let pseudo: number;
  if (l.v6) {
    dv.setUint16(l.ip + 4, l4Len);
    pseudo = ipv6PseudoSum(seg, l.ip, IPPROTO_TCP, l4Len);
  } else {
    dv.setUint16(l.ip + 2, seg.length - l.ip);
    dv.setUint16(l.ip + 4, (dv.getUint16(l.ip + 4) + index) & 0xffff);
    dv.setUint16(l.ip + 10, 0);
    dv.setUint16(l.ip + 10, internetChecksum(seg, l.ip, t));
    pseudo = ipv4PseudoSum(seg, l.ip, IPPROTO_TCP, l4Len);
  }
  dv.setUint16(t + 16, 0);
  dv.setUint16(t + 16, internetChecksum(seg, t, seg.length, pseudo));
  return seg;
}

/** The offload state of every segment: complete checksums, no GSO. */
export const SEGMENT_INFO: FrameInfo = Object.freeze({ csumBlank: false, dataValidated: true });
