/**
 * The blkif ring's codec (`DEFINE_RING_TYPES(blkif, struct blkif_request, struct blkif_response)`)
 * for one ABI: slots are `sizeof(struct blkif_request)` (112 on x86_64, 108 on x86_32), so a
 * 4 KiB page holds 32 entries on both.
 */
import { BLKIF_REQUEST, BLKIF_RESPONSE } from '../../abi/io/blkif.js';
import {
  blkifRequestLength,
  decodeBlkifRequest,
  decodeBlkifRwInto,
  encodeBlkifResponseFields,
  isDirectRw,
  newBlkifRwWords,
  type BlkifResponseWords,
  type BlkifRwOp,
  type BlkifRwWords,
  type BlkifSegment,
  u64FromWords,
  decodeBlkifResponse,
  encodeBlkifRequest,
  encodeBlkifResponse,
  type BlkifRequest,
  type BlkifRequestOut,
  type BlkifResponse,
} from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import { BugError } from '../../base/index.js';
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

/**
 * The common request as blkback's hot path takes it: a direct READ or WRITE of 1..11
 * segments, decoded as numbers into one record per ring (valid until the next request).
 */
export interface FastRwRequest extends BlkifRwWords {
  readonly kind: 'fast';
}

/** What blkback's ring yields: the common request as numbers, any other decoded in full. */
export type BackRequest = FastRwRequest | BlkifRequest;

/**
 * blkback's codec for one ring: a direct READ/WRITE of 1..11 segments decodes into the ring's
 * own reused record, anything else (flush, barrier, discard, indirect, unknown, a bad segment
 * count) as blkifRingCodec does; responses are written from numbers. One per ring (the record
 * is the ring's), unlike blkifRingCodec. `fast` false (a queue without the synchronous path,
 * which plans every request): every request is decoded in full at once, not into the record
 * and then rebuilt by fullRequest.
 */
export function blkifBackRingCodec(abi: AbiName, fast = true): RingCodec<BackRequest, BlkifResponseWords> {
  const record = newBlkifRwWords() as FastRwRequest;
  (record as { kind: string }).kind = 'fast';
  const opAt = BLKIF_REQUEST.layouts[abi].fields.operation;
  const nrAt = BLKIF_REQUEST.layouts[abi].fields.nr_segments;
  return {
    // Only the fast decoder is held to reading within the length (decodeBlkifRwInto).
    ...(fast ? { requestLength: blkifRequestLength(abi) } : {}),
    requestSize: BLKIF_REQUEST.layouts[abi].size,
    responseSize: BLKIF_RESPONSE.layouts[abi].size,
    entrySize: BLKIF_REQUEST.layouts[abi].size,
    encodesEveryByte: true,
    encodeRequest: () => {
      throw new BugError('blkback never writes requests');
    },
    encodeResponse: (rsp, out) => encodeBlkifResponseFields(out, 0, abi, rsp.idLow, rsp.idHigh, rsp.operation, rsp.status),
    decodeRequest: !fast
      ? (bytes) => decodeBlkifRequest(bytes, 0, abi)
      : (bytes) => {
          // The bytes are the ring's private copy (RingSlots.readRequest): reading op and
          // nr_segments here and again in the decoder reads no shared memory twice.
          // A direct READ/WRITE was copied only as far as blkifRequestLength says, which is
          // as far as decodeBlkifRwInto reads: its header and `nr` segments.
          if (isDirectRw(bytes.getUint8(opAt), bytes.getUint8(nrAt))) {
            return decodeBlkifRwInto(bytes, 0, abi, record) as FastRwRequest;
          }
          return decodeBlkifRequest(bytes, 0, abi);
        },
    decodeResponse: () => {
      throw new BugError('blkback never reads responses');
    },
  };
}

/** A request as planRequest takes it: the fast record rebuilt as a BlkifRwRequest (for the paths that plan every request). */
export function fullRequest(req: BackRequest): BlkifRequest {
  if (req.kind !== 'fast') return req;
  const seg: BlkifSegment[] = [];
  for (let i = 0; i < req.nrSegments; i++) seg.push({ gref: req.grefs[i]!, first_sect: req.firstSect[i]!, last_sect: req.lastSect[i]! });
  return {
    kind: 'rw',
    operation: req.operation as BlkifRwOp,
    nr_segments: req.nrSegments,
    handle: req.handle,
    id: u64FromWords(req.idLow, req.idHigh),
    sector_number: u64FromWords(req.sectorLow, req.sectorHigh),
    seg,
  };
}
