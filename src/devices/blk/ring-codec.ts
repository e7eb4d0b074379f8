/**
 * The blkif ring's codec (`DEFINE_RING_TYPES(blkif, struct blkif_request, struct blkif_response)`)
 * for one ABI: slots are `sizeof(struct blkif_request)` (112 on x86_64, 108 on x86_32), so a
 * 4 KiB page holds 32 entries on both.
 */
import { BLKIF_REQUEST, BLKIF_RESPONSE } from '../../abi/io/blkif.js';
import {
  decodeBlkifRequest,
  decodeBlkifResponse,
  encodeBlkifRequest,
  encodeBlkifResponse,
  type BlkifRequest,
  type BlkifRequestOut,
  type BlkifResponse,
} from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import type { RingCodec } from '../../ring/index.js';

const codecs = new Map<AbiName, RingCodec<BlkifRequest, BlkifResponse>>();

export function blkifRingCodec(abi: AbiName): RingCodec<BlkifRequest, BlkifResponse> {
  let c = codecs.get(abi);
  if (c === undefined) {
    c = {
      requestSize: BLKIF_REQUEST.layouts[abi].size,
      responseSize: BLKIF_RESPONSE.layouts[abi].size,
      entrySize: BLKIF_REQUEST.layouts[abi].size,
      // encodeBlkifRequest/Response zero their whole struct first (ring-codec.test.ts checks
      // the claim), so the ring does not zero the slot a second time.
      encodesEveryByte: true,
      encodeRequest: (req, out) => {
        // Only the frontend encodes, and only kinds it builds (never 'unknown').
        encodeBlkifRequest(out, 0, abi, req as BlkifRequestOut);
      },
      encodeResponse: (rsp, out) => encodeBlkifResponse(out, 0, abi, rsp),
      decodeRequest: (bytes) => decodeBlkifRequest(bytes, 0, abi),
      decodeResponse: (bytes) => decodeBlkifResponse(bytes, 0, abi),
    };
    codecs.set(abi, c);
  }
  return c;
}
