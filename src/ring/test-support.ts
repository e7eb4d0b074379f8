/**
 * Test fixtures for rings (used by the ring tests and the benchmark): a small codec with a
 * configurable entry size, pages built the way a domain's memory holds them, and a ring page
 * set up at any starting index (to cross the 2^32 wrap).
 */
import { RING_PAGE_SIZE, type RingMemory } from './memory.js';
import { SRING_REQ_EVENT, SRING_REQ_PROD, SRING_RSP_EVENT, SRING_RSP_PROD, type RingCodec } from './sring.js';

export interface TestRequest {
  readonly id: number;
  /** Filler words, so entries can be any multiple of 4 bytes. */
  readonly words: readonly number[];
}

export interface TestResponse {
  readonly id: number;
  readonly status: number;
}

/** Requests of `requestSize` bytes (id + filler words), responses of 8 bytes (id, status). */
export function testCodec(requestSize: number, responseSize = 8): RingCodec<TestRequest, TestResponse> {
  const words = (requestSize - 4) >>> 2;
  return {
    requestSize,
    responseSize,
    encodeRequest(req, out) {
      out.setUint32(0, req.id, true);
      for (let i = 0; i < words; i++) out.setUint32(4 + 4 * i, req.words[i] ?? 0, true);
    },
    decodeRequest(bytes) {
      const w: number[] = [];
      for (let i = 0; i < words; i++) w.push(bytes.getUint32(4 + 4 * i, true));
      return { id: bytes.getUint32(0, true), words: w };
    },
    encodeResponse(rsp, out) {
      out.setUint32(0, rsp.id, true);
      out.setInt32(4, rsp.status, true);
    },
    decodeResponse(bytes) {
      return { id: bytes.getUint32(0, true), status: bytes.getInt32(4, true) };
    },
  };
}

/**
 * `count` 4 KiB pages of one SharedArrayBuffer, handed out in a scrambled order with gaps
 * between them, as a multi-page ring's granted pages are: not contiguous.
 */
export function scatteredPages(count: number): Uint8Array[] {
  const sab = new SharedArrayBuffer(RING_PAGE_SIZE * (2 * count + 1));
  const pages: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const frame = 2 * ((count + 2 - i) % count) + 1; // reversed and rotated: a permutation
    pages.push(new Uint8Array(sab, frame * RING_PAGE_SIZE, RING_PAGE_SIZE));
  }
  return pages;
}

/** The state SHARED_RING_INIT leaves, shifted to start at free-running index `start`. */
export function initRingAt(mem: RingMemory, start: number): void {
  mem.store32(SRING_REQ_PROD, start);
  mem.store32(SRING_RSP_PROD, start);
  mem.store32(SRING_REQ_EVENT, (start + 1) >>> 0);
  mem.store32(SRING_RSP_EVENT, (start + 1) >>> 0);
}
