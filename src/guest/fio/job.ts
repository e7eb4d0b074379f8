/**
 * The fio job itself, against any block device (`FioDisk`): the PV disk through BlkFront in
 * a guest, an in-memory fake in unit tests.
 *
 * Each of `iodepth` buffers has one I/O in flight while there is work, as fio's libaio
 * engine keeps its queue full: by one async worker per buffer (issue, wait, record; run.ts),
 * or, on a disk with `submit`, each buffer's next I/O started from the last one's completion
 * (submit-run.ts).
 *
 * Verification (`verify=crc32c`, verify.ts): every write carries a header; a read of a block
 * this job wrote checks offset, crc and the generation written last; a read-only job
 * (read/randread) checks every block it reads (they must have been written by an earlier
 * verifying job); after the timed phase of a writing job, every block it wrote is read back
 * and checked, as fio's verify phase does. A block is never read and written at the same
 * time (the outcome would be undefined), so with verify a worker skips busy blocks. The first
 * failure stops the job.
 */
import { XenpvError } from '../../base/index.js';
import type { FioJob } from './args.js';
import { now, Run, type Region } from './run.js';
import type { DirectionReport } from './stats.js';
import { SubmitRun } from './submit-run.js';

/** A buffer the disk can do I/O on (BlkBuffer fits). */
export interface FioBuffer {
  copyIn(offset: number, src: Uint8Array): void;
  copyOut(offset: number, dst: Uint8Array): void;
}

/** A completion of `FioDisk.submit`: the tag it was given; `err` undefined on success. */
export type IoDone = (tag: number, err: Error | undefined) => void;

export interface FioDisk {
  /** 512-byte sectors. */
  readonly sectors: number;
  /** Logical block size in bytes. */
  readonly sectorSize: number;
  readonly readOnly: boolean;
  read(sector: number, buf: FioBuffer): Promise<void>;
  write(sector: number, buf: FioBuffer): Promise<void>;
  /**
   * Optional, io_submit's model (fio's libaio engine): start an I/O whose completion calls
   * `done(tag, err)` later, never inside this call; an error returned means the I/O was
   * refused and `done` will not run for it. When offered, a job uses it instead of
   * read/write: no promise and no async-function resume per I/O.
   */
  submit?(write: boolean, sector: number, buf: FioBuffer, done: IoDone, tag: number): Error | undefined;
  alloc(bytes: number): FioBuffer;
  free(buf: FioBuffer): void;
}

export interface FioResult {
  readonly job: 'fio';
  readonly rw: string;
  readonly bs: number;
  readonly iodepth: number;
  readonly size: number;
  readonly elapsed_s: number;
  readonly read: DirectionReport;
  readonly write: DirectionReport;
  readonly errors: number;
  readonly verify: 'ok' | 'none' | 'failed';
  /** Blocks checked (timed phase + verify phase). */
  readonly verified: number;
  /** Why the job stopped early: the first verify failure or I/O error. */
  readonly failure?: string;
}

/** Blocks a verifying job tracks at most (5 bytes each). */
const MAX_VERIFY_BLOCKS = 1 << 24;

function region(disk: FioDisk, job: FioJob): Region {
  const diskBytes = disk.sectors * 512;
  if (job.bs % disk.sectorSize !== 0 || job.offset % disk.sectorSize !== 0) {
    throw new XenpvError('EINVAL', `fio: bs=${job.bs} and offset=${job.offset} must be multiples of the disk's ${disk.sectorSize}-byte blocks`);
  }
  const bytes = job.size ?? diskBytes - job.offset;
  if (job.offset + bytes > diskBytes || bytes < job.bs) {
    throw new XenpvError('EINVAL', `fio: offset=${job.offset} size=${bytes} does not fit the ${diskBytes}-byte disk`);
  }
  if ((job.rw === 'write' || job.rw === 'randwrite' || job.rw === 'randrw') && disk.readOnly) {
    throw new XenpvError('EROFS', `fio: rw=${job.rw} on a read-only disk`);
  }
  const blocks = Math.floor(bytes / job.bs);
  if (job.verify === 'crc32c' && blocks > MAX_VERIFY_BLOCKS) {
    throw new XenpvError('EINVAL', `fio: verify over ${blocks} blocks (at most ${MAX_VERIFY_BLOCKS}): use a larger bs or a smaller size`);
  }
  return { start: job.offset, blocks };
}

/** One I/O buffer per request in flight, all before the clock starts; a clear error if they do not fit. */
function allocBuffers(disk: FioDisk, job: FioJob, depth: number): FioBuffer[] {
  const buffers: FioBuffer[] = [];
  try {
    for (let i = 0; i < depth; i++) buffers.push(disk.alloc(job.bs));
  } catch (err) {
    for (const b of buffers) disk.free(b);
    const mib = (depth * job.bs) / 2 ** 20;
    throw new XenpvError('ENOMEM', `fio: iodepth=${depth} buffers of bs=${job.bs} (${mib} MiB) do not fit in guest memory: ${err instanceof Error ? err.message : String(err)}`);
  }
  return buffers;
}

/** Run `job` on `disk`. Throws only for a job that cannot run (geometry, memory); I/O problems are in the result. */
export async function runFio(disk: FioDisk, job: FioJob): Promise<FioResult> {
  const r = region(disk, job);
  const depth = job.verify === 'crc32c' ? Math.min(job.iodepth, r.blocks) : job.iodepth;
  const buffers = allocBuffers(disk, job, depth);
  const start = now();
  const run = disk.submit !== undefined ? new SubmitRun(disk, job, r, start, buffers) : new Run(disk, job, r, start, buffers);
  let elapsed: number;
  try {
    await run.issueAll();
    // I/O issued from timedFrom on is counted, so the rates are over that window.
    elapsed = Math.max(0, now() - run.timedFrom);
    await run.verifyPhase();
  } finally {
    for (const b of buffers) disk.free(b);
  }
  const verify = job.verify === 'none' ? 'none' : run.failure?.startsWith('verify') === true ? 'failed' : 'ok';
  return {
    job: 'fio',
    rw: job.rw,
    bs: job.bs,
    iodepth: job.iodepth,
    size: r.blocks * job.bs,
    elapsed_s: Math.round(elapsed / 1e3) / 1e6,
    read: run.read.report(elapsed),
    write: run.write.report(elapsed),
    errors: run.errors,
    verify,
    verified: run.verified,
    ...(run.failure !== undefined ? { failure: run.failure } : {}),
  };
}
