/**
 * Receive-side steering (netif.h "Hash types", "Control ring"): which bytes of a frame are
 * hashed for each XEN_NETIF_CTRL_HASH_TYPE_*, the Toeplitz hash over them, and the mapping
 * table from hash to queue. The frontend configures a backend's `HashConfig` through the
 * control ring; a frontend uses the same code to pick its own transmit queue.
 *
 * "The 'maximal' type of hash should always be chosen": with IPV4 and IPV4_TCP both enabled,
 * a TCP packet hashes addresses + ports, anything else addresses only. Fragments (non-zero
 * fragment offset or MF) have no TCP header to hash, as Linux's flow dissector sees them.
 */
import {
  XEN_NETIF_CTRL_HASH_ALGORITHM_NONE,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP,
} from '../../abi/io/netif.js';
import { toeplitzHash } from '../../abi/io/netif-codec.js';
import { ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './bridge/mac.js';

const IPPROTO_TCP = 6;

/** Every hash type xenpv computes (GET_HASH_FLAGS answers these, as Linux netback does). */
export const SUPPORTED_HASH_TYPES =
  XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP | XEN_NETIF_CTRL_HASH_TYPE_IPV6 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;

export interface HashInput {
  /** The _XEN_NETIF_CTRL_HASH_TYPE_* bit number (what a HASH extra's `type` carries). */
  readonly typeBit: number;
  readonly data: Uint8Array;
}

function ipv4Input(f: Uint8Array, flags: number): HashInput | undefined {
  const ip = ETH_HLEN;
  if (f.length < ip + 20 || f[ip]! >> 4 !== 4) return undefined;
  const ihl = (f[ip]! & 0x0f) * 4;
  const fragmented = ((f[ip + 6]! & 0x3f) | f[ip + 7]!) !== 0;
  const l4 = ip + ihl;
  const tcp = f[ip + 9] === IPPROTO_TCP && !fragmented && ihl >= 20 && f.length >= l4 + 4;
  if (tcp && (flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP) !== 0) {
    const data = new Uint8Array(12);
    data.set(f.subarray(ip + 12, ip + 20), 0);
    data.set(f.subarray(l4, l4 + 4), 8);
    return { typeBit: 1, data };
  }
  if ((flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4) !== 0) return { typeBit: 0, data: f.slice(ip + 12, ip + 20) };
  return undefined;
}

function ipv6Input(f: Uint8Array, flags: number): HashInput | undefined {
  const ip = ETH_HLEN;
  if (f.length < ip + 40 || f[ip]! >> 4 !== 6) return undefined;
  // Only a TCP header right after the fixed header counts (no extension-header walk).
  const tcp = f[ip + 6] === IPPROTO_TCP && f.length >= ip + 44;
  if (tcp && (flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP) !== 0) {
    const data = new Uint8Array(36);
    data.set(f.subarray(ip + 8, ip + 40), 0);
    data.set(f.subarray(ip + 40, ip + 44), 32);
    return { typeBit: 3, data };
  }
  if ((flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6) !== 0) return { typeBit: 2, data: f.slice(ip + 8, ip + 40) };
  return undefined;
}

/** The bytes netif.h says to hash for this frame under `flags`, or undefined (no hash). */
export function hashInput(frame: Uint8Array, flags: number): HashInput | undefined {
  if (frame.length < ETH_HLEN) return undefined;
  const type = (frame[12]! << 8) | frame[13]!;
  if (type === ETHERTYPE_IPV4) return ipv4Input(frame, flags);
  if (type === ETHERTYPE_IPV6) return ipv6Input(frame, flags);
  return undefined;
}

/** The hash state a frontend sets through the control ring. Defaults: no hashing. */
export class HashConfig {
  algorithm: number = XEN_NETIF_CTRL_HASH_ALGORITHM_NONE;
  flags = 0;
  /** Always maxKey bytes; octets not set are zero ("the key is assumed to be empty"). */
  readonly key: Uint8Array;
  /** The mapping table; length 0 means "hash modulo the number of queues". */
  mapping: Uint32Array = new Uint32Array(0);

  constructor(readonly maxKey: number, readonly maxMapping: number) {
    this.key = new Uint8Array(maxKey);
  }

  get enabled(): boolean {
    return this.algorithm === XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ && this.flags !== 0;
  }

  /** The frame's hash under this configuration, or undefined when it is not hashed. */
  hash(frame: Uint8Array): { typeBit: number; value: number } | undefined {
    if (!this.enabled) return undefined;
    const input = hashInput(frame, this.flags);
    if (input === undefined) return undefined;
    return { typeBit: input.typeBit, value: toeplitzHash(this.key, input.data) };
  }

  /** Queue for a hash value: the mapping table's entry, else the value modulo `numQueues`. */
  queueFor(value: number, numQueues: number): number {
    if (this.mapping.length === 0) return value % numQueues;
    const q = this.mapping[value % this.mapping.length]!;
    // Entries were checked against the queue count when set; the count cannot grow later.
    return q < numQueues ? q : 0;
  }
}
