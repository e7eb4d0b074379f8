/**
 * fio's `verify=crc32c`, our layout. Every block a verifying job writes starts with a 32-byte
 * header (little-endian):
 *
 *   0  magic       u32  0x4f494658 ("XFIO")
 *   4  block size  u32  bytes
 *   8  offset      u64  byte offset of the block on the disk
 *  16  generation  u32  how many times this job wrote the block (1 = first write)
 *  20  seed        u32  the job's seed (the payload pattern depends on it)
 *  24  crc32c      u32  over bytes [0, 24) then [28, bs): the whole block except this field
 *  28  reserved    u32  0
 *
 * then a pseudo-random payload derived from (offset, generation, seed), so that a block
 * written at the wrong place, a stale block, a torn block or a flipped bit are all caught:
 * the offset check catches misdirected I/O, the generation check (when the job knows which
 * generation it wrote last) catches lost writes, the crc catches everything else.
 */
import { crc32c } from './crc32c.js';

export const HEADER_BYTES = 32;
export const FIO_MAGIC = 0x4f494658;
const CRC_AT = 24;

function blockCrc(block: Uint8Array): number {
  return crc32c(block.subarray(CRC_AT + 4), crc32c(block.subarray(0, CRC_AT)));
}

/** xorshift32 state from the block identity; never 0. */
function patternSeed(offset: number, gen: number, seed: number): number {
  let h = Math.imul((offset / 512) >>> 0, 0x9e3779b1) ^ Math.imul(Math.floor(offset / 2 ** 41) >>> 0, 0x85ebca6b);
  h = Math.imul(h ^ gen, 0xc2b2ae35) ^ Math.imul(seed ^ 0x27d4eb2f, 0x165667b1);
  h ^= h >>> 15;
  return h >>> 0 || 1;
}

/** Write a verifiable block of `block.length` bytes for byte `offset`, generation `gen`. */
export function fillBlock(block: Uint8Array, offset: number, gen: number, seed: number): void {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  view.setUint32(0, FIO_MAGIC, true);
  view.setUint32(4, block.byteLength, true);
  view.setUint32(8, offset >>> 0, true);
  view.setUint32(12, Math.floor(offset / 2 ** 32), true);
  view.setUint32(16, gen >>> 0, true);
  view.setUint32(20, seed >>> 0, true);
  view.setUint32(CRC_AT, 0, true);
  view.setUint32(28, 0, true);
  let x = patternSeed(offset, gen, seed);
  for (let at = HEADER_BYTES; at < block.byteLength; at += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view.setUint32(at, x >>> 0, true);
  }
  view.setUint32(CRC_AT, blockCrc(block), true);
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/**
 * Check a block read at byte `offset`. `expectGen`: the generation this job wrote last, or
 * undefined when any generation is acceptable (a block written by an earlier job).
 * Returns undefined when it verifies, else what is wrong.
 */
export function checkBlock(block: Uint8Array, offset: number, expectGen?: number): string | undefined {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== FIO_MAGIC) return `no fio header (magic ${hex(magic)}): block not written by a verifying job, or overwritten`;
  const bs = view.getUint32(4, true);
  if (bs !== block.byteLength) return `header says block size ${bs}, job uses ${block.byteLength}`;
  const at = view.getUint32(8, true) + view.getUint32(12, true) * 2 ** 32;
  if (at !== offset) return `header names offset ${at}: misdirected I/O`;
  const want = view.getUint32(CRC_AT, true);
  const got = blockCrc(block);
  if (want !== got) return `crc32c ${hex(got)} does not match the header's ${hex(want)}`;
  const gen = view.getUint32(16, true);
  if (expectGen !== undefined && gen !== expectGen) return `generation ${gen}, expected ${expectGen}: a write was lost`;
  return undefined;
}
