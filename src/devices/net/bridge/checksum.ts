/**
 * The Internet checksum (RFC 1071) and the L4 checksum fill that a "checksum blank" frame
 * needs before it reaches a receiver that cannot take it blank.
 *
 * RFC 1071 §1: "Adjacent octets to be checksummed are paired to form 16-bit integers, and
 * the 1's complement sum of these 16-bit integers is formed." An odd trailing octet is
 * padded with a zero octet. The sum is kept unfolded in a double (exact below 2^53: far
 * beyond 64 KiB of words) and folded once at the end; RFC 1071 §2(B) allows deferring the
 * end-around carries.
 */
import { ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './mac.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** Below this many bytes the byte-pair loop is as fast as setting up the word loop. */
const WORD_SUM_MIN = 64;
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
/** The u32 view of the last buffer summed: packets of one path share one buffer (a page pool, guest memory). */
let wordsOf: ArrayBufferLike | undefined;
let words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

/**
 * The unfolded sum of big-endian 16-bit words of buf[start, end): a value with the same
 * end-around-carry fold as the plain word sum (and 0 only when every byte is 0).
 *
 * Long ranges are summed as native little-endian u32 words. RFC 1071 §2(A)/(B): the sum is
 * independent of byte order (swap the folded sum back) and 32-bit words may be added with
 * the carries folded at the end. The head up to a 4-byte boundary and the tail are summed
 * as big-endian pairs, so `start` must be even relative to the word part (it is: the head
 * loop moves in pairs from `start`, and only an even head length reaches the word loop).
 */
export function onesSum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  if (LITTLE_ENDIAN && end - start >= WORD_SUM_MIN && ((buf.byteOffset + start) & 1) === 0) {
    for (; ((buf.byteOffset + i) & 3) !== 0; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
    const w = wordView(buf);
    const first = (buf.byteOffset + i) >>> 2;
    const last = first + ((end - i) >>> 2);
    let le = 0;
    for (let k = first; k < last; k++) le += w[k]!;
    i += (last - first) << 2;
    const f = foldSum(le);
    sum += ((f & 0xff) << 8) | (f >>> 8);
  }
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

function wordView(buf: Uint8Array): Uint32Array {
  if (wordsOf !== buf.buffer) {
    wordsOf = buf.buffer;
    words = new Uint32Array(buf.buffer, 0, buf.buffer.byteLength >>> 2);
  }
  return words;
}

/** Fold carries back into 16 bits (the end-around carry). */
export function foldSum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum field value: the complement of the folded sum. */
export function internetChecksum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  return ~foldSum(onesSum(buf, start, end, initial)) & 0xffff;
}

/**
 * The IPv4 pseudo-header sum (RFC 768, RFC 793 §3.1): source address, destination
 * address, zero, protocol, L4 length. `ipHeader` is the offset of the IPv4 header in `buf`.
 */
export function ipv4PseudoSum(buf: Uint8Array, ipHeader: number, protocol: number, l4Length: number): number {
  return onesSum(buf, ipHeader + 12, ipHeader + 20) + protocol + l4Length;
}

/** The IPv6 pseudo-header sum (RFC 8200 §8.1): both addresses, upper-layer length, next header. */
export function ipv6PseudoSum(buf: Uint8Array, ipHeader: number, nextHeader: number, l4Length: number): number {
  return onesSum(buf, ipHeader + 8, ipHeader + 40) + Math.floor(l4Length / 0x10000) + (l4Length % 0x10000) + nextHeader;
}

interface L4Location {
  l4: number;
  end: number;
  protocol: number;
  pseudo: number;
}

function locateIpv4(frame: Uint8Array): L4Location | undefined {
  const ip = ETH_HLEN;
  if (frame.length < ip + 20 || frame[ip]! >> 4 !== 4) return undefined;
  const ihl = (frame[ip]! & 0x0f) * 4;
  const total = (frame[ip + 2]! << 8) | frame[ip + 3]!;
  const fragment = ((frame[ip + 6]! << 8) | frame[ip + 7]!) & 0x3fff;
  if (ihl < 20 || total < ihl || ip + total > frame.length || fragment !== 0) return undefined;
  const protocol = frame[ip + 9]!;
  const l4 = ip + ihl;
  return { l4, end: ip + total, protocol, pseudo: ipv4PseudoSum(frame, ip, protocol, total - ihl) };
}

function locateIpv6(frame: Uint8Array): L4Location | undefined {
  const ip = ETH_HLEN;
  if (frame.length < ip + 40 || frame[ip]! >> 4 !== 6) return undefined;
  const payload = (frame[ip + 4]! << 8) | frame[ip + 5]!;
  const protocol = frame[ip + 6]!;
  // Extension headers are not walked: only TCP/UDP directly after the fixed header.
  if (ip + 40 + payload > frame.length) return undefined;
  return { l4: ip + 40, end: ip + 40 + payload, protocol, pseudo: ipv6PseudoSum(frame, ip, protocol, payload) };
}

/**
 * Compute and store the TCP or UDP checksum of an Ethernet frame carrying IPv4 or IPv6,
 * whatever the field held before (a blank, or the pseudo-header seed that Linux leaves
 * for CHECKSUM_PARTIAL). Returns false, leaving the frame untouched, when the frame is
 * not TCP/UDP over IP or its lengths do not add up.
 */
export function fillL4Checksum(frame: Uint8Array): boolean {
  if (frame.length < ETH_HLEN) return false;
  const type = (frame[12]! << 8) | frame[13]!;
  const loc = type === ETHERTYPE_IPV4 ? locateIpv4(frame) : type === ETHERTYPE_IPV6 ? locateIpv6(frame) : undefined;
  if (loc === undefined) return false;
  const field = loc.protocol === IPPROTO_UDP ? 6 : loc.protocol === IPPROTO_TCP ? 16 : -1;
  if (field < 0 || loc.end - loc.l4 < field + 2) return false;
  frame[loc.l4 + field] = 0;
  frame[loc.l4 + field + 1] = 0;
  let sum = internetChecksum(frame, loc.l4, loc.end, loc.pseudo);
  // RFC 768: "If the computed checksum is zero, it is transmitted as all ones."
  if (sum === 0 && loc.protocol === IPPROTO_UDP) sum = 0xffff;
  frame[loc.l4 + field] = sum >> 8;
  frame[loc.l4 + field + 1] = sum & 0xff;
  return true;
}
