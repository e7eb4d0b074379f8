/**
 * `xen/io/netif.h`: the PV network rings (tx: guest -> backend, rx: backend -> guest), the
 * extra-info slots that carry GSO/multicast/hash metadata, and the optional control ring.
 *
 * Every layout here is the same on x86_64 and x86_32 (no 64-bit fields). Note the TX and RX
 * flag bits are NOT in the same order (NETTXF_csum_blank is bit 0, NETRXF_csum_blank bit 1).
 */
import { defineConstants, defineStruct } from '../layout.js';
import { defineSring } from './ring.js';

const H = 'xen/io/netif.h';

export const NETIF_LIMITS = defineConstants(H, {
  /** A backend must accept packets that use at least this many tx slots. */
  XEN_NETIF_NR_SLOTS_MIN: 18,
  /** Largest packet the first tx slot's 16-bit `size` can express. */
  XEN_NETIF_MAX_TX_SIZE: 0xffff,
});
export const { XEN_NETIF_NR_SLOTS_MIN, XEN_NETIF_MAX_TX_SIZE } = NETIF_LIMITS;

/** `netif_tx_request.flags`. */
export const NETTXF = defineConstants(H, {
  _NETTXF_csum_blank: 0,
  NETTXF_csum_blank: 1 << 0, // protocol checksum field is blank in the packet (hardware offload)
  _NETTXF_data_validated: 1,
  NETTXF_data_validated: 1 << 1, // packet data has been validated against the protocol checksum
  _NETTXF_more_data: 2,
  NETTXF_more_data: 1 << 2, // packet continues in the next request
  _NETTXF_extra_info: 3,
  NETTXF_extra_info: 1 << 3, // packet is followed by an extra-info slot
});
export const { NETTXF_csum_blank, NETTXF_data_validated, NETTXF_more_data, NETTXF_extra_info } = NETTXF;

/** `netif_rx_response.flags`. Bit order differs from NETTXF_*. */
export const NETRXF = defineConstants(H, {
  _NETRXF_data_validated: 0,
  NETRXF_data_validated: 1 << 0,
  _NETRXF_csum_blank: 1,
  NETRXF_csum_blank: 1 << 1,
  _NETRXF_more_data: 2,
  NETRXF_more_data: 1 << 2,
  _NETRXF_extra_info: 3,
  NETRXF_extra_info: 1 << 3,
  _NETRXF_gso_prefix: 4,
  NETRXF_gso_prefix: 1 << 4, // deprecated: GSO prefix slot before the packet
});
export const { NETRXF_data_validated, NETRXF_csum_blank, NETRXF_more_data, NETRXF_extra_info, NETRXF_gso_prefix } =
  NETRXF;

/** `netif_extra_info.type` and `.flags`, and GSO types. */
export const NETIF_EXTRA = defineConstants(H, {
  XEN_NETIF_EXTRA_TYPE_NONE: 0, // never used: invalid
  XEN_NETIF_EXTRA_TYPE_GSO: 1, // u.gso
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD: 2, // u.mcast
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL: 3, // u.mcast
  XEN_NETIF_EXTRA_TYPE_HASH: 4, // u.hash
  XEN_NETIF_EXTRA_TYPE_MAX: 5,
  _XEN_NETIF_EXTRA_FLAG_MORE: 0,
  XEN_NETIF_EXTRA_FLAG_MORE: 1 << 0, // another extra-info slot follows
  XEN_NETIF_GSO_TYPE_NONE: 0,
  XEN_NETIF_GSO_TYPE_TCPV4: 1,
  XEN_NETIF_GSO_TYPE_TCPV6: 2,
});
export const {
  XEN_NETIF_EXTRA_TYPE_NONE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
  XEN_NETIF_EXTRA_TYPE_HASH,
  XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_GSO_TYPE_NONE,
  XEN_NETIF_GSO_TYPE_TCPV4,
  XEN_NETIF_GSO_TYPE_TCPV6,
} = NETIF_EXTRA;

/** Response status: > 0 on rx is a byte count; NULL marks a tx slot that held extra info. */
export const NETIF_RSP = defineConstants(H, {
  NETIF_RSP_DROPPED: -2,
  NETIF_RSP_ERROR: -1,
  NETIF_RSP_OKAY: 0,
  NETIF_RSP_NULL: 1,
});
export const { NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETIF_RSP_NULL } = NETIF_RSP;

/** Control ring request types. */
export const XEN_NETIF_CTRL_TYPE = defineConstants(H, {
  XEN_NETIF_CTRL_TYPE_INVALID: 0,
  XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS: 1,
  XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS: 2,
  XEN_NETIF_CTRL_TYPE_SET_HASH_KEY: 3,
  XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE: 4,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE: 5,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING: 6,
  XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM: 7,
  XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE: 8,
  XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING: 9,
  XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING: 10,
});
export type XenNetifCtrlType = (typeof XEN_NETIF_CTRL_TYPE)[keyof typeof XEN_NETIF_CTRL_TYPE];

/** Control ring response status. */
export const XEN_NETIF_CTRL_STATUS = defineConstants(H, {
  XEN_NETIF_CTRL_STATUS_SUCCESS: 0,
  XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED: 1,
  XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER: 2,
  XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW: 3,
});
export const {
  XEN_NETIF_CTRL_STATUS_SUCCESS,
  XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED,
  XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
  XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW,
} = XEN_NETIF_CTRL_STATUS;

/**
 * Hash types (bits of GET/SET_HASH_FLAGS) and algorithms. Each type names the bytes hashed:
 * IPV4 = src+dst address (8 B), IPV4_TCP = + ports (12 B), IPV6 = src+dst (32 B), IPV6_TCP = + ports (36 B).
 */
export const XEN_NETIF_CTRL_HASH = defineConstants(H, {
  _XEN_NETIF_CTRL_HASH_TYPE_IPV4: 0,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4: 1 << 0,
  _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP: 1,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP: 1 << 1,
  _XEN_NETIF_CTRL_HASH_TYPE_IPV6: 2,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6: 1 << 2,
  _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP: 3,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP: 1 << 3,
  XEN_NETIF_CTRL_HASH_ALGORITHM_NONE: 0,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ: 1,
  _XEN_NETIF_CTRLF_GREF_readonly: 0,
  XEN_NETIF_CTRLF_GREF_readonly: 1 << 0,
});
export const {
  XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP,
  XEN_NETIF_CTRL_HASH_ALGORITHM_NONE,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
} = XEN_NETIF_CTRL_HASH;

/*
 * struct netif_tx_request {                   sizeof = 12; written by: frontend
 *     grant_ref_t gref;    @0
 *     uint16_t offset;     @4   within the granted page
 *     uint16_t flags;      @6   NETTXF_*
 *     uint16_t id;         @8   echoed in the response
 *     uint16_t size;       @10  first slot: whole packet length; later slots: this fragment
 * };
 */
export const NETIF_TX_REQUEST = defineStruct(H, 'netif_tx_request', {
  size: 12,
  fields: { gref: 0, offset: 4, flags: 6, id: 8, size: 10 },
});

/* struct netif_tx_response { uint16_t id; @0   int16_t status; @2 NETIF_RSP_* };  sizeof = 4 */
export const NETIF_TX_RESPONSE = defineStruct(H, 'netif_tx_response', { size: 4, fields: { id: 0, status: 2 } });

/* struct netif_rx_request { uint16_t id; @0   uint16_t pad; @2   grant_ref_t gref; @4 };  sizeof = 8 */
export const NETIF_RX_REQUEST = defineStruct(H, 'netif_rx_request', {
  size: 8,
  fields: { id: 0, pad: 2, gref: 4 },
});

/*
 * struct netif_rx_response {                  sizeof = 8; written by: backend, in the slot of
 *     uint16_t id;       @0                   its request (Linux netfront ignores `id`)
 *     uint16_t offset;   @2   data offset in the page
 *     uint16_t flags;    @4   NETRXF_*
 *     int16_t  status;   @6   > 0: bytes in this fragment; <= 0: NETIF_RSP_*
 * };
 */
export const NETIF_RX_RESPONSE = defineStruct(H, 'netif_rx_response', {
  size: 8,
  fields: { id: 0, offset: 2, flags: 4, status: 6 },
});

/*
 * struct netif_extra_info {                   sizeof = 8; overlays a tx request / rx response slot
 *     uint8_t type;     @0   XEN_NETIF_EXTRA_TYPE_*
 *     uint8_t flags;    @1   XEN_NETIF_EXTRA_FLAG_*
 *     union {
 *         struct { uint16_t size; uint8_t type; uint8_t pad; uint16_t features; } gso;  @2 @4 @5 @6
 *         struct { uint8_t addr[6]; } mcast;                                            @2
 *         struct { uint8_t type; uint8_t algorithm; uint8_t value[4]; } hash;           @2 @3 @4
 *         uint16_t pad[3];
 *     } u;
 * };
 */
export const NETIF_EXTRA_INFO = defineStruct(H, 'netif_extra_info', {
  size: 8,
  fields: {
    type: 0,
    flags: 1,
    'u.gso.size': 2,
    'u.gso.type': 4,
    'u.gso.pad': 5,
    'u.gso.features': 6,
    'u.mcast.addr': 2,
    'u.hash.type': 2,
    'u.hash.algorithm': 3,
    'u.hash.value': 4,
    'u.pad': 2,
  },
});

/* struct xen_netif_ctrl_request { uint16_t id; @0  uint16_t type; @2  uint32_t data[3]; @4 };  sizeof = 16 */
export const XEN_NETIF_CTRL_REQUEST = defineStruct(H, 'xen_netif_ctrl_request', {
  size: 16,
  fields: { id: 0, type: 2, data: 4 },
});

/* struct xen_netif_ctrl_response { uint16_t id; @0  uint16_t type; @2  uint32_t status; @4
 *                                  uint32_t data; @8 };  sizeof = 12 */
export const XEN_NETIF_CTRL_RESPONSE = defineStruct(H, 'xen_netif_ctrl_response', {
  size: 12,
  fields: { id: 0, type: 2, status: 4, data: 8 },
});

/* struct xen_netif_gref { grant_ref_t ref; @0  uint16_t flags; @4  uint16_t status; @6 };  sizeof = 8 */
export const XEN_NETIF_GREF = defineStruct(H, 'xen_netif_gref', {
  size: 8,
  fields: { ref: 0, flags: 4, status: 6 },
});

/* The three rings: 256 tx, 256 rx, 128 ctrl entries per 4 KiB page. Entries are the larger of
 * request and response, 4-aligned. */
defineSring(H, 'netif_tx', { size: 12, align: 4 });
defineSring(H, 'netif_rx', { size: 8, align: 4 });
defineSring(H, 'xen_netif_ctrl', { size: 16, align: 4 });
