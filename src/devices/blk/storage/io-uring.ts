/**
 * Linux io_uring (io_uring_setup / io_uring_enter) for a disk thread's synchronous data path:
 * the same job as linux-aio.ts (many transfers at their own offsets in one system call, all
 * finished when it returns), at a lower cost per transfer.
 *
 * Why: with Linux AIO, blkback's thread spent ~15 % of its time on 4 KiB random reads in
 * io_submit's per-iocb work around the read itself (allocating and freeing a kiocb, the
 * iovec import, posting each event under the context's lock) plus an io_getevents call per
 * batch. io_uring takes its requests from a cache, reads a single buffer without an iovec,
 * and posts completions into a ring this thread reads itself: a batch from the page cache is
 * one io_uring_enter (submitted and completed inside it); what went to the device costs one
 * more, which waits for it.
 *
 * The rings are mmapped (through koffi, the FFI package the xen platform already ships) and
 * seen as ArrayBuffers over that memory. The kernel reads the submission ring and writes the
 * completion ring only inside io_uring_enter on this thread, or, for a transfer it had to
 * hand to a worker (a page not yet in the cache), before the enter that waits for it
 * returns: `run` waits for every transfer it submitted, so plain reads and writes of the
 * rings are ordered by the system call itself. Buffer addresses as linux-aio.ts takes them.
 *
 * Where io_uring is missing or refused (an old kernel, `kernel.io_uring_disabled`, a
 * seccomp filter), `IoUring.create` answers with the reason and the store keeps Linux AIO.
 */
import { BugError, u32Add, u32Sub } from '../../../base/index.js';
import { BufferAddresses, writeIovecs, type AioOp, type BatchEngine } from './linux-aio.js';
import { loadLibc, setU64 } from '../../../hv/native-libc.js';

// <asm/unistd_64.h>
const SYS_io_uring_setup = 425;
const SYS_io_uring_enter = 426;
const SYS_io_uring_register = 427;
// <linux/io_uring.h>
const IORING_OFF_SQ_RING = 0;
const IORING_OFF_CQ_RING = 0x8000000;
const IORING_OFF_SQES = 0x10000000;
const IORING_FEAT_SINGLE_MMAP = 1 << 0;
/** Linux 5.6, the release that also brought IORING_OP_READ / IORING_OP_WRITE. */
const IORING_FEAT_RW_CUR_POS = 1 << 3;
const IORING_SETUP_COOP_TASKRUN = 1 << 8;
const IORING_SETUP_SINGLE_ISSUER = 1 << 12;
const IORING_SETUP_DEFER_TASKRUN = 1 << 13;
const IORING_ENTER_GETEVENTS = 1 << 0;
const IORING_REGISTER_FILES = 2;
/** sqe flags (byte 1 of the first word): `fd` is an index into the registered files. */
const IOSQE_FIXED_FILE = 1 << 0;
const IORING_OP_READV = 1;
const IORING_OP_WRITEV = 2;
const IORING_OP_READ = 22;
const IORING_OP_WRITE = 23;
/** sizeof(struct io_uring_params), io_uring_sqe, io_uring_cqe, iovec. */
const PARAMS_BYTES = 120;
const SQE_BYTES = 64;
const CQE_BYTES = 16;
const IOVEC_BYTES = 16;
// <sys/mman.h>
const PROT_READ_WRITE = 3;
const MAP_SHARED_POPULATE = 0x01 | 0x8000;
/** (void *) -1 */
const MAP_FAILED = 2n ** 64n - 1n;
/** io_uring_enter's passing refusals (a signal, a full completion queue, memory): wait again. */
const TRANSIENT = new Set([4, 11, 16]);
const EINTR = 4;
/**
 * EAGAIN/EBUSY answers in a row, with nothing submitted or completed between them, before a
 * run gives up (~10 ms of refused calls): a kernel that keeps refusing must not hold the disk
 * thread in a loop. A signal (EINTR) ends a wait, so it does not count.
 */
const MAX_REFUSED_ENTERS = 10_000;

interface Calls {
  setup: (entries: number, params: Uint8Array) => number;
  enter: (fd: number, toSubmit: number, minComplete: number, flags: number) => number;
  /** io_uring_register(fd, IORING_REGISTER_FILES, fds, fds.length). */
  registerFiles: (fd: number, fds: Int32Array) => number;
  mmap: (len: number, fd: number, offset: number) => unknown;
  munmap: (at: unknown, len: number) => number;
  close: (fd: number) => number;
  view: (at: unknown, len: number) => ArrayBuffer;
  isNull: (at: unknown) => boolean;
  errno: () => number;
  addressOf: (view: Uint8Array) => number;
}

let bound: Calls | string | undefined;

function bind(): Calls | string {
  if (bound !== undefined) return bound;
  const libc = loadLibc('io_uring');
  if (typeof libc === 'string') return (bound = libc);
  const { koffi, lib } = libc;
  try {
    const mmap = lib.func('void *mmap(void *, size_t, int, int, int, int64_t)') as (at: null, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
    bound = {
      setup: lib.func('long syscall(long, uint32_t, _Inout_ uint8_t *)').bind(null, SYS_io_uring_setup) as Calls['setup'],
      enter: bindEnter(lib.func('long syscall(long, int, uint32_t, uint32_t, uint32_t, void *, size_t)') as EnterCall),
      registerFiles: bindRegister(lib.func('long syscall(long, int, uint32_t, int32_t *, uint32_t)') as RegisterCall),
      mmap: (len, fd, offset) => mmap(null, len, PROT_READ_WRITE, MAP_SHARED_POPULATE, fd, offset),
      munmap: lib.func('int munmap(void *, size_t)') as Calls['munmap'],
      close: lib.func('int close(int)') as Calls['close'],
      view: (at, len) => koffi.view(at, len) as ArrayBuffer,
      isNull: (at) => at === null || koffi.address(at) === 0n || koffi.address(at) === MAP_FAILED,
      errno: libc.errno,
      addressOf: libc.addressOf,
    };
  } catch (err) {
    bound = `the native bridge (koffi) did not load: ${(err as Error).message}`;
  }
  return bound;
}

type EnterCall = (nr: number, fd: number, toSubmit: number, minComplete: number, flags: number, sig: null, sigsz: number) => number;

function bindEnter(call: EnterCall): Calls['enter'] {
  return (fd, toSubmit, minComplete, flags) => call(SYS_io_uring_enter, fd, toSubmit, minComplete, flags, null, 0);
}

type RegisterCall = (nr: number, fd: number, opcode: number, fds: Int32Array, count: number) => number;

function bindRegister(call: RegisterCall): Calls['registerFiles'] {
  return (fd, fds) => call(SYS_io_uring_register, fd, IORING_REGISTER_FILES, fds, fds.length);
}

/** The mapped rings of one io_uring instance. */
interface Rings {
  readonly regions: { at: unknown; len: number }[];
  /** Words of the submission ring region and of the completion ring region (maybe the same). */
  readonly sq: Uint32Array;
  readonly cq: Uint32Array;
  readonly cqes: Int32Array;
  readonly sqes: Uint32Array;
  /** u32 indices into `sq` / `cq` of the ring fields a run reads or writes. */
  readonly sqTail: number;
  readonly sqArray: number;
  readonly cqHead: number;
  readonly cqTail: number;
  /**
   * The ring masks themselves, read once when mapped: the kernel sets them at setup, checkRings
   * checks these values and a run uses them, never reading the mapped words again.
   */
  readonly sqMask: number;
  readonly cqMask: number;
}

/**
 * io_uring_enter refused a run before the kernel took any of its transfers (a seccomp filter
 * that lets io_uring_setup through but not io_uring_enter, say): the ring is closed, and the
 * run may be done by another engine with nothing of it in flight here.
 */
export class UringRunRefused extends BugError {}

export class IoUring implements BatchEngine {
  readonly name = 'io_uring';
  private readonly iovecs: Uint32Array;
  private readonly iovecAt: number;
  private readonly addresses: BufferAddresses;
  /** Per op of the current run: 1 once its completion was taken (a second one is a bug). */
  private readonly answered: Uint8Array;
  private fd: number;
  /**
   * The file registered at index 0 of the ring's fixed files (registerFile), or -1. A run on
   * it names index 0 with IOSQE_FIXED_FILE: the kernel skips its fget/fput per transfer.
   */
  private fixedFd = -1;

  private constructor(
    private readonly calls: Calls,
    fd: number,
    private readonly rings: Rings,
    readonly maxOps: number,
    readonly maxBuffers: number,
  ) {
    this.fd = fd;
    this.addresses = new BufferAddresses(calls.addressOf);
    this.iovecs = new Uint32Array(new ArrayBuffer(maxBuffers * IOVEC_BYTES));
    this.iovecAt = this.addresses.of(this.iovecs);
    this.answered = new Uint8Array(maxOps);
    // Every field `prepare` does not set is zero in every sqe, once and for all.
    rings.sqes.fill(0);
    // The submission array maps ring entry k to sqe k, for good: the kernel only reads it.
    for (let k = 0; k <= rings.sqMask; k++) rings.sq[rings.sqArray + k] = k;
  }

  /** An io_uring for up to `maxOps` transfers of `maxBuffers` buffers per run, or why not. */
  static create(maxOps: number, maxBuffers: number): IoUring | string {
    return IoUring.open(bind(), maxOps, maxBuffers);
  }

  /** `create` on `calls` (a test wraps the real ones to refuse what an older kernel refuses). */
  private static open(calls: Calls | string, maxOps: number, maxBuffers: number): IoUring | string {
    if (typeof calls === 'string') return calls;
    const params = new Uint8Array(PARAMS_BYTES);
    const fd = setUp(calls, maxOps, params);
    if (fd < 0) return `io_uring_setup failed (errno ${calls.errno()})`;
    // io_uring of 5.1-5.5 (5.4 LTS) would take the ring and answer every READ/WRITE -EINVAL:
    // the guest would see I/O errors where AIO serves it.
    if ((new DataView(params.buffer).getUint32(20, true) & IORING_FEAT_RW_CUR_POS) === 0) {
      calls.close(fd);
      return 'io_uring older than Linux 5.6 (no IORING_OP_READ/WRITE)';
    }
    const rings = mapRings(calls, fd, new DataView(params.buffer));
    if (typeof rings === 'string') {
      calls.close(fd);
      return rings;
    }
    const why = checkRings(rings, new DataView(params.buffer), maxOps);
    if (why !== undefined) {
      unmap(calls, rings);
      calls.close(fd);
      return why;
    }
    return new IoUring(calls, fd, rings, maxOps, maxBuffers);
  }

  get usable(): boolean {
    return this.fd >= 0;
  }

  /**
   * Register `fd` as fixed file 0 (Linux 5.1+). Refused (an old kernel, a seccomp filter,
   * RLIMIT_NOFILE), or for a second file, runs keep naming it by descriptor: nothing is lost
   * but the saving.
   */
  registerFile(fd: number): void {
    if (this.fd < 0 || this.fixedFd >= 0) return;
    if (this.calls.registerFiles(this.fd, Int32Array.of(fd)) >= 0) this.fixedFd = fd;
  }

  /** The descriptor registered as fixed file 0, or undefined (none, or the kernel refused). */
  get fixedFile(): number | undefined {
    return this.fixedFd >= 0 ? this.fixedFd : undefined;
  }

  /**
   * Perform `ops` on `fd`; `results[i]` becomes op i's byte count or -errno. Returns after
   * every op completed. The caller keeps within `maxOps` and `maxBuffers`.
   */
  run(fd: number, ops: readonly AioOp[], results: number[]): void {
    const n = ops.length;
    if (this.fd < 0) throw new BugError('IoUring used after close');
    if (n > this.maxOps) throw new BugError(`${n} io_uring transfers, at most ${this.maxOps}`);
    const r = this.rings;
    let iov = 0;
    // The fixed file's index (0) with its flag in the sqe's flags byte, or the descriptor as given.
    const file = fd === this.fixedFd ? 0 : fd;
    const flags = fd === this.fixedFd ? IOSQE_FIXED_FILE << 8 : 0;
    for (let i = 0; i < n; i++) iov = this.prepare(i, file, flags, ops[i]!, iov);
    this.answered.fill(0, 0, n);
    // Publish the n entries (the kernel reads the tail inside io_uring_enter, below).
    r.sq[r.sqTail] = u32Add(r.sq[r.sqTail]!, n);
    let submitted = 0;
    let done = 0;
    let refused = 0;
    while (done < n) {
      // The first enter only submits: reads from the page cache complete inside it, and asking
      // for completions too costs the kernel's wait setup for nothing. What is left is waited for.
      const wait = submitted < n && done === 0 ? 0 : IORING_ENTER_GETEVENTS;
      const got = this.calls.enter(this.fd, n - submitted, wait === 0 ? 0 : n - done, wait);
      if (got >= 0) submitted += got;
      else {
        const errno = this.calls.errno();
        if (!TRANSIENT.has(errno)) this.fail(`io_uring_enter failed (errno ${errno})`, submitted === 0, submitted - done);
        if (errno !== EINTR && ++refused > MAX_REFUSED_ENTERS) this.fail(`io_uring_enter refused ${MAX_REFUSED_ENTERS} times in a row (errno ${errno})`, submitted === 0, submitted - done);
      }
      const before = done;
      done = this.reap(results, n, done);
      if (got > 0 || done > before) refused = 0;
    }
  }

  /**
   * io_uring_enter refused with an error that is not one of its passing ones, or the completion
   * ring holds what this run cannot have caused: a bug (a bad descriptor or address, or the
   * kernel's). Closing the ring makes the kernel cancel and reap what is left.
   *
   * `inFlight` transfers the kernel took and has not completed still read into (or from) the
   * caller's buffers, the frontend's granted pages; closing does not wait for them (the
   * kernel finishes them in a worker after close returns). The caller answers their requests
   * with an error as soon as this throws, and the frontend reuses those pages, so a late read
   * would write into them. So they are waited for first (settle).
   */
  private fail(why: string, untaken = false, inFlight = 0): never {
    this.settle(inFlight);
    this.close();
    throw untaken ? new UringRunRefused(why) : new BugError(why);
  }

  /**
   * Wait until `owed` more completions are posted, taking them without using them; bounded as
   * run's refusals are (a kernel that keeps refusing leaves them to close's cancellation).
   */
  private settle(owed: number): void {
    const r = this.rings;
    for (let tries = 0; owed > 0 && tries <= MAX_REFUSED_ENTERS; tries++) {
      if (this.calls.enter(this.fd, 0, owed, IORING_ENTER_GETEVENTS) < 0 && !TRANSIENT.has(this.calls.errno())) return;
      const head = r.cq[r.cqHead]!;
      const posted = u32Sub(r.cq[r.cqTail]!, head);
      r.cq[r.cqHead] = u32Add(head, posted);
      owed -= posted;
    }
  }

  /**
   * Take every completion posted; returns how many of this run's `n` ops have completed. The
   * kernel's indexes and user_data are checked before use: more completions than are owed, an
   * op index outside the run, or an op completed twice would answer some request twice (or
   * leave one with a stale result) and fail the run instead.
   */
  private reap(results: number[], n: number, done: number): number {
    const r = this.rings;
    let head = r.cq[r.cqHead]!;
    const posted = u32Sub(r.cq[r.cqTail]!, head);
    if (posted > n - done) this.fail(`io_uring posted ${posted} completions, ${n - done} were owed`);
    const cqes = r.cqes;
    const answered = this.answered;
    for (let k = 0; k < posted; k++, head = u32Add(head, 1)) {
      const at = ((head & r.cqMask) * CQE_BYTES) >>> 2;
      const i = cqes[at]!; // user_data (low half): the op's index
      if (cqes[at + 1] !== 0 || i < 0 || i >= n || answered[i] !== 0) this.fail(`io_uring completion for op ${i}:${cqes[at + 1]} of ${n}, not owed`);
      answered[i] = 1;
      results[i] = cqes[at + 2]!; // res
    }
    r.cq[r.cqHead] = head;
    return done + posted;
  }

  close(): void {
    if (this.fd < 0) return;
    unmap(this.calls, this.rings);
    this.calls.close(this.fd);
    this.fd = -1;
  }

  /** Fill sqe `i` of the run: `file` a descriptor or fixed-file index, `flags` the sqe flags byte already shifted to its place. */
  private prepare(i: number, file: number, flags: number, op: AioOp, iov: number): number {
    const r = this.rings;
    const slot = u32Add(r.sq[r.sqTail]!, i) & r.sqMask;
    const w = r.sqes;
    const o = (slot * SQE_BYTES) >>> 2;
    const bufs = op.bufs;
    w[o + 1] = file;
    setU64(w, o + 2, op.offset);
    if (bufs.length === 1) {
      // One buffer: READ/WRITE take its address and length, no iovec to import.
      const b = bufs[0]!;
      w[o] = (op.write ? IORING_OP_WRITE : IORING_OP_READ) | flags; // opcode, flags, ioprio 0
      setU64(w, o + 4, this.addresses.of(b));
      w[o + 6] = b.length; // not byteLength: a builtin call over shared memory (writeIovecs)
    } else {
      if (iov + bufs.length > this.maxBuffers) throw new BugError(`io_uring run over ${this.maxBuffers} buffers`);
      const n = writeIovecs(this.iovecs, iov, bufs, this.addresses);
      if (n === 1) {
        // Buffers that follow each other in memory: one READ/WRITE of all of them.
        w[o] = (op.write ? IORING_OP_WRITE : IORING_OP_READ) | flags;
        w[o + 4] = this.iovecs[iov * 4]!;
        w[o + 5] = this.iovecs[iov * 4 + 1]!;
        w[o + 6] = this.iovecs[iov * 4 + 2]!;
      } else {
        w[o] = (op.write ? IORING_OP_WRITEV : IORING_OP_READV) | flags;
        setU64(w, o + 4, this.iovecAt + iov * IOVEC_BYTES);
        w[o + 6] = n;
        iov += n;
      }
    }
    // rw_flags, user_data's high half, buf_index, personality, splice_fd_in, addr3 and pad
    // (words 7, 9 and 10-15) stay the zeroes the constructor wrote: the kernel never writes an sqe.
    w[o + 8] = i; // user_data: the op's index (ring entry `slot` is sqe `slot`: see the constructor)
    return iov;
  }
}

/**
 * io_uring_setup with the best flags the kernel takes; the ring's descriptor (`params` filled)
 * or -1. SINGLE_ISSUER|DEFER_TASKRUN (6.1+): completions that did not happen inside the submit
 * are run only when this thread waits for them (`run` always does), and the kernel skips the
 * locking a ring shared by threads needs. With the submit-only first enter: batches of 8
 * random 4 KiB reads, 10 alternating rounds, 0.653 -> 0.627 µs CPU per read (medians) against
 * COOP_TASKRUN alone. It ties the ring to the thread that made it (each disk and ring thread
 * opens its own storage; an enter from another thread would be refused with EEXIST before
 * taking anything: UringRunRefused, AIO takes over). Else COOP_TASKRUN (5.19+): no interrupt
 * of this thread to run completions, which it reaps itself inside io_uring_enter anyway. Else none.
 */
function setUp(calls: Calls, entries: number, params: Uint8Array): number {
  for (const flags of [IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_COOP_TASKRUN, 0]) {
    params.fill(0);
    new DataView(params.buffer).setUint32(8, flags, true);
    const fd = calls.setup(entries, params);
    if (fd >= 0) return fd;
  }
  return -1;
}

/** mmap the submission ring, completion ring and sqes of io_uring `fd` (params as io_uring_setup filled them). */
function mapRings(calls: Calls, fd: number, p: DataView): Rings | string {
  const u = (at: number): number => p.getUint32(at, true);
  const sqEntries = u(0);
  const cqEntries = u(4);
  const features = u(20);
  const sqOff = 40;
  const cqOff = 80;
  const sqLen = u(sqOff + 24) + sqEntries * 4;
  const cqLen = u(cqOff + 20) + cqEntries * CQE_BYTES;
  const single = (features & IORING_FEAT_SINGLE_MMAP) !== 0;
  const regions: { at: unknown; len: number }[] = [];
  const map = (len: number, offset: number): ArrayBuffer | undefined => {
    const at = calls.mmap(len, fd, offset);
    if (calls.isNull(at)) return undefined;
    regions.push({ at, len });
    return calls.view(at, len);
  };
  const sqBuf = map(single ? Math.max(sqLen, cqLen) : sqLen, IORING_OFF_SQ_RING);
  const cqBuf = sqBuf === undefined ? undefined : single ? sqBuf : map(cqLen, IORING_OFF_CQ_RING);
  const sqeBuf = cqBuf === undefined ? undefined : map(sqEntries * SQE_BYTES, IORING_OFF_SQES);
  if (sqBuf === undefined || cqBuf === undefined || sqeBuf === undefined) {
    const errno = calls.errno();
    for (const r of regions) calls.munmap(r.at, r.len);
    return `io_uring ring mmap failed (errno ${errno})`;
  }
  const sq = new Uint32Array(sqBuf);
  const cq = new Uint32Array(cqBuf);
  return {
    regions,
    sq,
    cq,
    cqes: new Int32Array(cqBuf, u(cqOff + 20), cqEntries * (CQE_BYTES / 4)),
    sqes: new Uint32Array(sqeBuf),
    sqTail: u(sqOff + 4) >>> 2,
    sqArray: u(sqOff + 24) >>> 2,
    cqHead: u(cqOff + 0) >>> 2,
    cqTail: u(cqOff + 4) >>> 2,
    sqMask: sq[u(sqOff + 8) >>> 2]!,
    cqMask: cq[u(cqOff + 8) >>> 2]!,
  };
}

/**
 * The mapped rings are as io_uring_setup described them: masks that keep every index inside
 * its ring (the reads and writes of `run` rely on it), and room for `maxOps` transfers in each.
 */
function checkRings(rings: Rings, p: DataView, maxOps: number): string | undefined {
  const sqEntries = p.getUint32(0, true);
  const cqEntries = p.getUint32(4, true);
  const { sqMask, cqMask } = rings;
  if (sqMask !== sqEntries - 1 || cqMask !== cqEntries - 1) return `io_uring ring masks ${sqMask}/${cqMask} do not fit ${sqEntries}/${cqEntries} entries`;
  if (sqEntries < maxOps || cqEntries < maxOps) return `io_uring gave ${sqEntries}/${cqEntries} entries, not ${maxOps}`;
  return undefined;
}

function unmap(calls: Calls, rings: Rings): void {
  for (const r of rings.regions) calls.munmap(r.at, r.len);
  rings.regions.length = 0;
}

/**
 * io_uring for batches whose every transfer is a read of one buffer, another engine (Linux AIO)
 * for the rest. 4 KiB random reads (one page per transfer) are done inline in io_uring_enter and cost
 * blkback's thread 2.46 µs per read against 2.70 with AIO alone (`xenpv bench block`, 6
 * alternating pairs, 259k -> 296k IOPS). Buffered writes, on the other hand, are handed to
 * io_uring's kernel worker threads (iou-wrk appear during 1 MiB sequential writes): more
 * threads on a machine of two cores, and CPU the backend's own figures no longer show; and
 * 1 MiB sequential reads (READV of 256 pages) measured no better either way (two runs of 5-6
 * pairs, each side ahead once). Those stay on AIO, which does both inside io_submit. One-page
 * writes too: batches of 4 KiB random writes to a file on ext4 cost the process 5.6 µs of CPU
 * per write through io_uring against 1.3 with AIO (QD8; QD32 4.9 against 1.7), where reads
 * cost 1.05 against 1.24 (six alternating rounds of 40k ops each, medians).
 *
 * Once io_uring has failed (its ring is closed) every batch goes to the other engine; a run
 * io_uring refused before taking any of it is done there too, so the refusal costs no request.
 */
export class SplitBatch implements BatchEngine {
  readonly maxOps: number;
  readonly maxBuffers: number;
  private closed = false;

  constructor(
    private readonly single: IoUring,
    private readonly other: BatchEngine,
  ) {
    this.maxOps = Math.min(single.maxOps, other.maxOps);
    this.maxBuffers = Math.min(single.maxBuffers, other.maxBuffers);
  }

  get usable(): boolean {
    return !this.closed && this.other.usable;
  }

  get name(): string {
    return `${this.single.name} + ${this.other.name}`;
  }

  registerFile(fd: number): void {
    this.single.registerFile(fd);
  }

  run(fd: number, ops: readonly AioOp[], results: number[]): void {
    if (this.single.usable && onePageReads(ops)) {
      try {
        return this.single.run(fd, ops, results);
      } catch (err) {
        if (!(err instanceof UringRunRefused)) throw err;
      }
    }
    this.other.run(fd, ops, results);
  }

  close(): void {
    this.closed = true;
    this.single.close();
    this.other.close();
  }
}

/** Every op reads into one buffer (what io_uring does inline, READ without an iovec). */
function onePageReads(ops: readonly AioOp[]): boolean {
  for (let i = 0; i < ops.length; i++) if (ops[i]!.write || ops[i]!.bufs.length !== 1) return false;
  return true;
}
