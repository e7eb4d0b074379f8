/**
 * IPv4 header codec (RFC 791 §3.1). No options are sent; received options are skipped.
 * No fragmentation: this stack never fragments, and drops fragments it receives.
 */
import { readIpv4, writeIpv4, type Ipv4 } from './addr.js';

export const IPV4_HLEN = 20;
/** Linux's net.ipv4.ip_default_ttl. */
export const DEFAULT_TTL = 64;
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const OFFSET_MASK = 0x1fff;

export interface Ipv4Header {
  readonly headerLength: number;
  readonly totalLength: number;
  readonly id: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly src: Ipv4;
  readonly dst: Ipv4;
  readonly fragment: boolean;
}

export type Ipv4Parse =
  | { readonly ok: true; readonly header: Ipv4Header }
  | { readonly ok: false; readonly reason: 'header' | 'length' | 'checksum' };

/**
 * Validate and decode the header at `buf[off..end)`. RFC 1122 §3.2.1.1: a datagram whose
 * version is not 4 is silently discarded; §3.2.1.2: "A host MUST verify the IP header
 * checksum on every received datagram and silently discard every datagram that has a bad
 * checksum." The total length must cover the header and fit in what was received
 * (Ethernet padding after it is ignored).
 *
 * The receive path uses checkIpv4Header and reads the fields in place; this decoded form is
 * kept as the reference the golden vectors are checked against (golden.test.ts).
 */
export function parseIpv4Header(buf: Uint8Array, off: number, end: number): Ipv4Parse {
  const bad = checkIpv4Header(buf, off, end);
  if (bad !== undefined) return { ok: false, reason: bad };
  return {
    ok: true,
    header: {
      headerLength: (buf[off]! & 0x0f) * 4,
      totalLength: (buf[off + 2]! << 8) | buf[off + 3]!,
      id: (buf[off + 4]! << 8) | buf[off + 5]!,
      ttl: buf[off + 8]!,
      protocol: buf[off + 9]!,
      src: readIpv4(buf, off + 12),
      dst: readIpv4(buf, off + 16),
      fragment: isIpv4Fragment(buf, off),
    },
  };
}

/**
 * parseIpv4Header's checks without the objects (the receive path reads the fields it needs
 * from `buf` itself): undefined when the header is good, else why it is not.
 */
export function checkIpv4Header(buf: Uint8Array, off: number, end: number): 'header' | 'length' | 'checksum' | undefined {
  const avail = end - off;
  if (avail < IPV4_HLEN || buf[off]! >> 4 !== 4) return 'header';
  const headerLength = (buf[off]! & 0x0f) * 4;
  if (headerLength < IPV4_HLEN || headerLength > avail) return 'header';
  const totalLength = (buf[off + 2]! << 8) | buf[off + 3]!;
  if (totalLength < headerLength || totalLength > avail) return 'length';
  if (headerSum(buf, off, headerLength) !== 0xffff) return 'checksum';
  return undefined;
}

/**
 * The folded one's complement sum of the header's 16-bit words: 0xffff when its checksum is
 * right (the checksum makes the sum all ones). At most 30 words, so two folds suffice: the
 * per-datagram check without the general summing code's alignment paths.
 */
function headerSum(buf: Uint8Array, off: number, headerLength: number): number {
  let sum = 0;
  for (let i = off, end = off + headerLength; i < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

/** More fragments follow, or a fragment offset: part of a fragmented datagram. */
export function isIpv4Fragment(buf: Uint8Array, off: number): boolean {
  const flagsOffset = (buf[off + 6]! << 8) | buf[off + 7]!;
  return (flagsOffset & FLAG_MF) !== 0 || (flagsOffset & OFFSET_MASK) !== 0;
}

/**
 * Write a 20-byte header (DF set: this stack does not fragment) with its checksum at `off`;
 * `payloadLength`: the bytes after the header. The fields are arguments, not an object: this
 * runs per datagram, and an object per call is garbage wherever V8 does not inline the call
 * (with inlining off, a sampling heap profile of a UDP stream named it the sender's largest
 * allocation).
 */
export function writeIpv4Header(buf: Uint8Array, off: number, src: Ipv4, dst: Ipv4, protocol: number, id: number, ttl: number, payloadLength: number): void {
  const total = IPV4_HLEN + payloadLength;
  buf[off] = 0x45; // version 4, IHL 5
  buf[off + 1] = 0; // DSCP/ECN
  buf[off + 2] = total >> 8;
  buf[off + 3] = total & 0xff;
  buf[off + 4] = (id >> 8) & 0xff;
  buf[off + 5] = id & 0xff;
  buf[off + 6] = FLAG_DF >> 8;
  buf[off + 7] = 0;
  buf[off + 8] = ttl;
  buf[off + 9] = protocol;
  writeIpv4(buf, off + 12, src);
  writeIpv4(buf, off + 16, dst);
  // The checksum from the values, not read back from `buf` (per datagram, perhaps in a granted
  // page): the one's complement sum of the ten 16-bit words, the checksum word as zero.
  let sum = 0x4500 + (total & 0xffff) + (id & 0xffff) + FLAG_DF + (((ttl & 0xff) << 8) | (protocol & 0xff));
  sum += addressesSum(src, dst);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = ~((sum & 0xffff) + (sum >>> 16)) & 0xffff;
  buf[off + 10] = sum >> 8;
  buf[off + 11] = sum & 0xff;
}

/** The one's complement sum (unfolded) of two addresses' 16-bit halves: in the IPv4 header and the UDP pseudo-header alike. */
export function addressesSum(a: Ipv4, b: Ipv4): number {
  return (a >>> 16) + (a & 0xffff) + (b >>> 16) + (b & 0xffff);
}
