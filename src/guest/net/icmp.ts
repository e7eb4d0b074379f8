/**
 * ICMP (RFC 792) as a host needs it: echo request/reply, and destination unreachable.
 *
 *   Echo or Echo Reply Message
 *    0                   1                   2                   3
 *   |     Type      |     Code      |          Checksum             |
 *   |           Identifier          |        Sequence Number        |
 *   |     Data ...
 */
export const ICMP_HLEN = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_PORT_UNREACH = 3;

export interface IcmpEcho {
  readonly type: number;
  readonly code: number;
  readonly id: number;
  readonly seq: number;
  readonly data: Uint8Array;
}

/** Decode the fixed 8 bytes; the caller has checked the length and the checksum. */
export function parseIcmp(buf: Uint8Array, off: number, end: number): IcmpEcho {
  return {
    type: buf[off]!,
    code: buf[off + 1]!,
    id: (buf[off + 4]! << 8) | buf[off + 5]!,
    seq: (buf[off + 6]! << 8) | buf[off + 7]!,
    data: buf.subarray(off + ICMP_HLEN, end),
  };
}

/** Write the 8-byte header with a zero checksum; the caller fills the checksum. */
export function writeIcmpHeader(buf: Uint8Array, off: number, type: number, code: number, rest: number): void {
  buf[off] = type;
  buf[off + 1] = code;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = (rest >>> 24) & 0xff;
  buf[off + 5] = (rest >>> 16) & 0xff;
  buf[off + 6] = (rest >>> 8) & 0xff;
  buf[off + 7] = rest & 0xff;
}
