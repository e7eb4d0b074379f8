/**
 * The blkif ring codec declares `encodesEveryByte` (the ring then skips zeroing a slot before
 * encoding into it): every request kind and the response, on both ABIs, must overwrite every
 * byte, or a slot would carry stale bytes to the peer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE } from '../../abi/io/blkif.js';
import type { BlkifRequest, BlkifResponse } from '../../abi/io/blkif-codec.js';
import { encodesEveryByte, type RingCodec } from '../../ring/index.js';
import { blkifRingCodec } from './ring-codec.js';

const requests: BlkifRequest[] = [
  { kind: 'rw', operation: BLKIF_OP_READ, nr_segments: 1, handle: 0, id: 1n, sector_number: 8n, seg: [{ gref: 9, first_sect: 0, last_sect: 7 }] },
  { kind: 'rw', operation: BLKIF_OP_WRITE, nr_segments: 0, handle: 2, id: 2n ** 64n - 1n, sector_number: 0n, seg: [] },
  { kind: 'discard', operation: BLKIF_OP_DISCARD, flag: 1, handle: 0, id: 3n, sector_number: 16n, nr_sectors: 8n },
  {
    kind: 'indirect',
    operation: BLKIF_OP_INDIRECT,
    indirect_op: BLKIF_OP_READ,
    nr_segments: 3,
    id: 4n,
    sector_number: 24n,
    handle: 0,
    indirect_grefs: [7],
  },
];
const responses: BlkifResponse[] = [
  { id: 5n, operation: BLKIF_OP_READ, status: 0 },
  { id: 2n ** 63n, operation: BLKIF_OP_WRITE, status: -1 },
];

test('the blkif ring codec writes every byte of a request or response slot, on both ABIs', () => {
  for (const abi of ['x86_64', 'x86_32'] as const) {
    const codec = blkifRingCodec(abi);
    assert.equal(codec.encodesEveryByte, true);
    assert.ok(encodesEveryByte(codec as RingCodec<BlkifRequest, BlkifResponse>, requests, responses), abi);
  }
});
