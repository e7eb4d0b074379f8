/**
 * IPv4 addresses as unsigned 32-bit integers (network order in value: 10.0.0.1 = 0x0a000001),
 * and the interface configuration a guest stack runs with.
 */
import { XenpvError } from '../../base/index.js';

export type Ipv4 = number;

export const IPV4_BROADCAST: Ipv4 = 0xffffffff;
export const IPV4_ANY: Ipv4 = 0;

export function parseIpv4(text: string): Ipv4 {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
    throw new XenpvError('EINVAL', `invalid IPv4 address '${text}'`, { address: text });
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(ip: Ipv4): string {
  return [ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff].join('.');
}

export function toIpv4(v: Ipv4 | string): Ipv4 {
  if (typeof v === 'string') return parseIpv4(v);
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new XenpvError('EINVAL', `invalid IPv4 address ${v}`, {});
  return v;
}

export function readIpv4(buf: Uint8Array, offset: number): Ipv4 {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

export function writeIpv4(buf: Uint8Array, offset: number, ip: Ipv4): void {
  buf[offset] = ip >>> 24;
  buf[offset + 1] = (ip >>> 16) & 0xff;
  buf[offset + 2] = (ip >>> 8) & 0xff;
  buf[offset + 3] = ip & 0xff;
}

/** 224.0.0.0/4 (RFC 5771). */
export function isMulticastIpv4(ip: Ipv4): boolean {
  return ip >>> 28 === 0xe;
}

/** An interface address with its prefix, and an optional default gateway. */
export class Ipv4Interface {
  readonly address: Ipv4;
  readonly prefix: number;
  readonly netmask: Ipv4;
  readonly gateway: Ipv4 | undefined;
  /**
   * The subnet's directed broadcast (RFC 919/922); none for /31 and /32 (RFC 3021). A field,
   * not a getter: it is compared for every datagram sent and received.
   */
  readonly broadcast: Ipv4 | undefined;

  constructor(address: Ipv4 | string, prefix: number, gateway?: Ipv4 | string) {
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
      throw new XenpvError('EINVAL', `invalid prefix length ${prefix}`, { prefix });
    }
    this.address = toIpv4(address);
    this.prefix = prefix;
    this.netmask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    this.gateway = gateway === undefined ? undefined : toIpv4(gateway);
    this.broadcast = prefix >= 31 ? undefined : (this.address | ~this.netmask) >>> 0;
  }

  onLink(ip: Ipv4): boolean {
    return ((ip ^ this.address) & this.netmask) === 0;
  }

  isBroadcast(ip: Ipv4): boolean {
    return ip === IPV4_BROADCAST || ip === this.broadcast;
  }

  /** The neighbour a datagram to `dst` goes to: itself on-link, else the gateway (or none). */
  nextHop(dst: Ipv4): Ipv4 | undefined {
    if (this.isBroadcast(dst) || this.onLink(dst)) return dst;
    return this.gateway;
  }

  toString(): string {
    return `${formatIpv4(this.address)}/${this.prefix}`;
  }
}
