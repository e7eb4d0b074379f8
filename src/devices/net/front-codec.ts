/**
 * netfront's own codecs of the front's view of its tx and rx rings (protocol.ts has the
 * general ones, used by the backend and tests): the same bytes, made for the per-packet path.
 *
 * - A tx request writes all 12 bytes of its slot itself (an extra-info overlay zeroes the
 *   4 bytes after its 8), so the ring need not zero the slot first (`encodesEveryByte`).
 * - A response is decoded into ONE object per codec (per ring), rewritten by the next decode:
 *   netfront reads a response's fields before it takes the next one (FrontQueue copies the
 *   fields it needs to locals first), and no response object per packet is made. The bytes
 *   still come from the ring's private copy (RING_COPY_RESPONSE), read once.
 */
import { NETIF_EXTRA_INFO, NETIF_RX_REQUEST, NETIF_RX_RESPONSE, NETIF_TX_REQUEST, NETIF_TX_RESPONSE } from '../../abi/io/netif.js';
import {
  decodeNetifRxRequest,
  decodeNetifTxRequest,
  encodeNetifExtraInfo,
  encodeNetifRxRequest,
  encodeNetifRxResponse,
  encodeNetifTxRequest,
  encodeNetifTxResponse,
  type NetifExtraInfo,
  type NetifRxRequest,
  type NetifTxResponse,
} from '../../abi/io/netif-codec.js';
import type { RingCodec } from '../../ring/index.js';
import { overlayExtra, type RxSlot, type TxSlotOut } from './protocol.js';

// Only the response decodes are netfront's own (into reused objects); every encode and the
// request decodes are netif-codec's, which already write every byte of their struct.
const TXS = NETIF_TX_RESPONSE.layouts.x86_64.fields;
const RXS = NETIF_RX_RESPONSE.layouts.x86_64.fields;
const TX_REQ_SIZE = NETIF_TX_REQUEST.layouts.x86_64.size;
const RX_REQ_SIZE = NETIF_RX_REQUEST.layouts.x86_64.size;
/** sizeof(struct netif_extra_info): the overlay's bytes inside a 12-byte tx slot. */
const EXTRA_SIZE = NETIF_EXTRA_INFO.layouts.x86_64.size;

/** A tx response, rewritten in place by each decode. */
interface TxResponseCell {
  id: number;
  status: number;
}

/** An rx response slot, rewritten in place by each decode; `extra()` reads the same 8 bytes as an overlay. */
class RxSlotCell implements RxSlot {
  readonly rsp = { id: 0, offset: 0, flags: 0, status: 0 };
  private lo = 0;
  private hi = 0;

  read(v: DataView): this {
    const r = this.rsp;
    r.id = v.getUint16(RXS.id, true);
    r.offset = v.getUint16(RXS.offset, true);
    r.flags = v.getUint16(RXS.flags, true);
    r.status = v.getInt16(RXS.status, true);
    this.lo = v.getUint32(0, true);
    this.hi = v.getUint32(4, true);
    return this;
  }

  extra(): NetifExtraInfo {
    return overlayExtra(this.lo, this.hi);
  }
}

function encodeTxSlot(slot: TxSlotOut, out: DataView): void {
  if (slot.kind === 'req') {
    encodeNetifTxRequest(out, 0, slot.req); // all 12 bytes
    return;
  }
  encodeNetifExtraInfo(out, 0, slot.extra); // writes (zeroes first) its 8 bytes
  for (let i = EXTRA_SIZE; i < TX_REQ_SIZE; i++) out.setUint8(i, 0);
}

/** The front's tx ring codec: requests or extras out, one reused response object in. */
export function txFrontCodec(): RingCodec<TxSlotOut, NetifTxResponse> {
  const cell: TxResponseCell = { id: 0, status: 0 };
  return {
    requestSize: TX_REQ_SIZE,
    responseSize: NETIF_TX_RESPONSE.layouts.x86_64.size,
    encodesEveryByte: true,
    encodeRequest: encodeTxSlot,
    encodeResponse: (rsp, out) => encodeNetifTxResponse(out, 0, rsp),
    decodeRequest: (v) => ({ kind: 'req', req: decodeNetifTxRequest(v, 0) }),
    decodeResponse: (v) => {
      cell.id = v.getUint16(TXS.id, true);
      cell.status = v.getInt16(TXS.status, true);
      return cell;
    },
  };
}

/** The front's rx ring codec: buffer requests out (every byte, the pad too), one reused slot object in. */
export function rxFrontCodec(): RingCodec<NetifRxRequest, RxSlot> {
  const cell = new RxSlotCell();
  return {
    requestSize: RX_REQ_SIZE,
    responseSize: NETIF_RX_RESPONSE.layouts.x86_64.size,
    encodesEveryByte: true,
    encodeRequest: (req, out) => encodeNetifRxRequest(out, 0, req), // the pad too
    encodeResponse: (s, out) => encodeNetifRxResponse(out, 0, s.rsp),
    decodeRequest: (v) => decodeNetifRxRequest(v, 0),
    decodeResponse: (v) => cell.read(v),
  };
}
