/** The entries the ring benchmark carries (bench/ring-worker.ts), in their own module for tests. */
import type { RingCodec } from '../ring/index.js';

export const ENTRY_BYTES = 64;
export const WORDS = ENTRY_BYTES / 4;

interface BenchReq {
  id: number;
  check: number;
}

/** 64-byte requests (id + 15 payload words), 8-byte responses (id, status). */
export const benchCodec: RingCodec<BenchReq, { id: number; status: number }> = {
  requestSize: ENTRY_BYTES,
  responseSize: 8,
  encodesEveryByte: true, // checked in bench.test.ts
  encodeRequest(req, out) {
    out.setUint32(0, req.id, true);
    for (let k = 1; k < WORDS; k++) out.setUint32(4 * k, (req.id + k) >>> 0, true);
  },
  decodeRequest(b) {
    let check = 0;
    for (let k = 1; k < WORDS; k++) check ^= b.getUint32(4 * k, true);
    return { id: b.getUint32(0, true), check };
  },
  encodeResponse(rsp, out) {
    out.setUint32(0, rsp.id, true);
    out.setInt32(4, rsp.status, true);
  },
  decodeResponse: (b) => ({ id: b.getUint32(0, true), status: b.getInt32(4, true) }),
};

/** What `decodeRequest` computes as `check` for an intact request `id`. */
export function expectedCheck(id: number): number {
  let check = 0;
  for (let k = 1; k < WORDS; k++) check ^= (id + k) >>> 0;
  return check;
}
