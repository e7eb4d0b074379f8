/**
 * `xenpv bench block`'s baselines: the same image file read and written by the host process
 * itself, with no PV path in between.
 *
 * - cached: synchronous `fs.readSync`/`fs.writeSync` (pread/pwrite) from the main thread on a
 *   plain (non-shared) Buffer, through the page cache: the fastest file I/O Node has
 *   (performance.md §2.5: ~1 M 4 KiB IOPS per thread). A synchronous loop has exactly one
 *   request in flight, so it is the baseline for queue depth 1 and 32 alike.
 * - the storage layer blkback itself uses (`storageLoop` over a BlockStorage from
 *   `openStorage`), at the queue depth asked: cached (async FileHandle I/O on libuv's pool,
 *   what blkback does for every request) and O_DIRECT (`direct: true`, storage/direct-io.ts:
 *   an aligned bounce pool of 8 slots) — the paths blkback takes, without blkback.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { xorshift32 } from '../base/index.js';
import type { BlockStorage } from '../devices/blk/storage/types.js';
import { threadCpuNs } from '../hv/sim/thread-sched.js';
import { processCpuNs } from './block-cpu.js';

export type NativeKind = 'randread' | 'seqread' | 'seqwrite';

export interface LoopOutput {
  readonly ops: number;
  readonly bytes: number;
  readonly elapsedNs: number;
  /** CPU of the calling (main) thread and of the whole process over the loop, ns. */
  readonly mainCpuNs: number | undefined;
  readonly processCpuNs: number;
}

/** Offsets of the next block: random aligned blocks, or sequential wrapping around the file. */
function offsets(kind: NativeKind, fileBytes: number, bs: number, seed: number): () => number {
  const blocks = Math.floor(fileBytes / bs);
  if (kind === 'randread') {
    const r = xorshift32(seed);
    return () => (r() % blocks) * bs;
  }
  let i = 0;
  return () => (i++ % blocks) * bs;
}

/**
 * The cached native loop on the main thread: `seconds` of one kind of I/O, synchronous, through
 * `buffers` buffers in turn (1: the same one every time, the fastest; fio in a guest at iodepth N
 * has N, which are cold in the CPU's caches by the time each comes round again).
 */
export function nativeLoop(path: string, kind: NativeKind, bs: number, seconds: number, seed = 1, buffers = 1): LoopOutput {
  const fd = openSync(path, kind === 'seqwrite' ? 'r+' : 'r');
  const bufs = Array.from({ length: buffers }, () => Buffer.alloc(bs, 0x5a));
  const next = offsets(kind, fstatSync(fd).size, bs, seed);
  const cpu0 = threadCpuNs();
  const proc0 = processCpuNs();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let ops = 0;
  try {
    // Check the clock every few operations: at ~1 µs per 4 KiB pread, reading it each time costs several percent.
    const check = bs >= 65536 ? 1 : 32;
    for (;;) {
      for (let k = 0; k < check; k++) {
        const at = next();
        const buf = bufs[(ops + k) % buffers]!;
        const n = kind === 'seqwrite' ? writeSync(fd, buf, 0, bs, at) : readSync(fd, buf, 0, bs, at);
        if (n !== bs) throw new Error(`bench block: short ${kind} at ${at}: ${n} of ${bs}`);
      }
      ops += check;
      if (performance.now() >= end) break;
    }
  } finally {
    closeSync(fd);
  }
  return loopOutput(ops, bs, t0, cpu0, proc0);
}

/**
 * The loop through a BlockStorage (cached or O_DIRECT): `qd` async workers, each with its own buffer,
 * issuing `kind` for `seconds`.
 */
export async function storageLoop(storage: BlockStorage, kind: NativeKind, bs: number, qd: number, seconds: number, seed = 1): Promise<LoopOutput> {
  const next = offsets(kind, storage.sectorCount * 512, bs, seed);
  const cpu0 = threadCpuNs();
  const proc0 = processCpuNs();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let ops = 0;
  const worker = async (): Promise<void> => {
    const buf = new Uint8Array(bs).fill(0x5a);
    while (performance.now() < end) {
      const sector = next() / 512;
      await (kind === 'seqwrite' ? storage.write(sector, buf) : storage.read(sector, buf));
      ops++;
    }
  };
  await Promise.all(Array.from({ length: qd }, worker));
  return loopOutput(ops, bs, t0, cpu0, proc0);
}

/** What a timed loop measured, from its start marks (wall clock, this thread's and the process's CPU). */
function loopOutput(ops: number, bs: number, t0: number, cpu0: number | undefined, proc0: number): LoopOutput {
  const elapsedNs = (performance.now() - t0) * 1e6;
  const cpu1 = threadCpuNs();
  return {
    ops,
    bytes: ops * bs,
    elapsedNs,
    mainCpuNs: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0,
    processCpuNs: processCpuNs() - proc0,
  };
}
