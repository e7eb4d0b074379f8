/**
 * Ethernet (IEEE 802.3 / DIX) addresses and the 14-byte header, shared by the dom0 bridge
 * and the guest stack. A MAC is a 6-byte Uint8Array on the wire; `macKey` packs it into one
 * safe integer (48 bits < 2^53) so tables can key on it without allocating strings.
 */
import { XenpvError, type DomId } from '../../../base/index.js';

export const ETH_ALEN = 6;
/** Destination (6) + source (6) + EtherType (2). */
export const ETH_HLEN = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
/** Xen's OUI: "random in 00:16:3e" (xl-network-configuration(5), `mac=` default). */
export const XEN_OUI = [0x00, 0x16, 0x3e] as const;
export const BROADCAST_MAC: Uint8Array = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
export const BROADCAST_KEY = 0xffffffffffff;

/** The MAC at `offset` in `buf` as one integer (bytes big-endian). `buf` must hold 6 bytes there. */
export function macKey(buf: Uint8Array, offset = 0): number {
  let hi = 0;
  for (let i = 0; i < 2; i++) hi = hi * 256 + buf[offset + i]!;
  let lo = 0;
  for (let i = 2; i < 6; i++) lo = lo * 256 + buf[offset + i]!;
  return hi * 0x1_0000_0000 + lo;
}

export function keyToMac(key: number): Uint8Array {
  const out = new Uint8Array(ETH_ALEN);
  let v = key;
  for (let i = 5; i >= 0; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}

/** The I/G bit: bit 0 of the first octet set means a group (multicast or broadcast) address. */
export function isGroupMac(buf: Uint8Array, offset = 0): boolean {
  return (buf[offset]! & 0x01) !== 0;
}

export function isZeroMac(buf: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < ETH_ALEN; i++) if (buf[offset + i] !== 0) return false;
  return true;
}

/**
 * 01:80:C2:00:00:00–0F is reserved by IEEE 802.1D for link-local protocols (STP, pause,
 * LACP, 802.1X): a conforming bridge never forwards it.
 */
export function isLinkLocalMac(buf: Uint8Array, offset = 0): boolean {
  return (
    buf[offset] === 0x01 && buf[offset + 1] === 0x80 && buf[offset + 2] === 0xc2 &&
    buf[offset + 3] === 0x00 && buf[offset + 4] === 0x00 && (buf[offset + 5]! & 0xf0) === 0
  );
}

/** `aa:bb:cc:dd:ee:ff` (also `-` separated, any case), as xl and Linux accept it. */
export function parseMac(text: string): Uint8Array {
  const parts = text.trim().split(/[:-]/);
  if (parts.length !== ETH_ALEN || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new XenpvError('EINVAL', `invalid MAC address '${text}'`, { mac: text });
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(buf: Uint8Array, offset = 0): string {
  const out: string[] = [];
  for (let i = 0; i < ETH_ALEN; i++) out.push(buf[offset + i]!.toString(16).padStart(2, '0'));
  return out.join(':');
}

/**
 * A random MAC in Xen's OUI 00:16:3e, as xl picks when `mac=` is absent. The OUI is a
 * universally administered unicast prefix, so the result is unicast by construction.
 */
export function randomXenMac(randomByte: () => number = () => Math.floor(Math.random() * 256)): Uint8Array {
  return Uint8Array.of(XEN_OUI[0], XEN_OUI[1], XEN_OUI[2], randomByte() & 0xff, randomByte() & 0xff, randomByte() & 0xff);
}

/** The backend interface name libxl gives a PV NIC: `vif<DOMID>.<DEVID>` (xl-network-configuration(5)). */
export function vifName(domid: DomId | number, devid: number): string {
  return `vif${domid}.${devid}`;
}
