/**
 * Linux native AIO (io_setup / io_submit / io_getevents) for a disk thread's synchronous data
 * path: many transfers, each at its own offset, in one system call.
 *
 * Why: a 4 KiB random read through `readSync` costs the disk thread a syscall entry and exit
 * plus Node's binding (~0.4 µs) per request; blkback answers a whole ring pass of requests,
 * so one io_submit for the pass pays those once. On this machine kind a loop of 32-read
 * batches ran at 0.76 µs per read against 1.07 µs for pread. QEMU's Xen block backend
 * (xen-block with aio=native) submits the same way.
 *
 * On a buffered (not O_DIRECT) descriptor Linux performs each transfer inside io_submit, so
 * every event is ready when it returns; io_getevents then only collects them. The kernel
 * reads and writes the callers' buffers by address: an address is taken from the buffer's
 * own ArrayBuffer (which V8 never moves once `.buffer` was read) and remembered per buffer
 * and per view in WeakMaps, so it is forgotten with them; the kernel uses it only within one
 * `run`, which holds the views and waits for every event before it returns (a failed wait
 * destroys the context, which waits for the rest), so no transfer outlives its call.
 *
 * Reached through koffi, the FFI package the xen platform already ships; where it cannot load
 * (or the kernel refuses io_setup) `LinuxAio.create` answers with the reason and the disk
 * thread keeps its one-syscall-per-run path.
 */
import { BugError } from '../../../base/index.js';
import type { SyncFileOp } from './image-file.js';
import { loadLibc, setU64 } from '../../../hv/native-libc.js';

// <asm/unistd_64.h>
const SYS_io_setup = 206;
const SYS_io_destroy = 207;
const SYS_io_getevents = 208;
const SYS_io_submit = 209;
// <linux/aio_abi.h>
const IOCB_CMD_PREADV = 7;
const IOCB_CMD_PWRITEV = 8;
/** sizeof(struct iocb), sizeof(struct io_event), sizeof(struct iovec) on x86_64. */
const IOCB_BYTES = 64;
const EVENT_BYTES = 32;
const IOVEC_BYTES = 16;

/** One transfer: `bufs` back to back from byte `offset` of the file. */
export type AioOp = Pick<SyncFileOp, 'write' | 'offset' | 'bufs'>;

/**
 * Write the iovecs of `bufs` from entry `at` of `iovecs` (16 bytes each: base, length), one per
 * run of buffers that follow each other in memory; returns how many were written. A frontend's
 * 1 MiB buffer is 256 granted pages, adjacent in machine memory when its frames are, and the
 * kernel walks an iovec array per segment: 1 MiB reads from the page cache moved 14.1 GB/s
 * through 256 iovecs of 4 KiB against 17.3 through one (readv, large folios, this machine).
 */
export function writeIovecs(iovecs: Uint32Array, at: number, bufs: readonly Uint8Array[], addresses: BufferAddresses): number {
  let n = 0;
  let end = -1;
  let len = 0;
  for (let b = 0; b < bufs.length; b++) {
    const v = bufs[b]!;
    const base = addresses.of(v);
    // `length`, not `byteLength` (the same for bytes): over a SharedArrayBuffer V8 inlines the
    // first and calls a builtin for the second, 1.6 against 10.7 ns here, twice per page, 512
    // times per MiB.
    const bytes = v.length;
    if (base === end) {
      len += bytes;
      setU64(iovecs, (at + n - 1) * 4 + 2, len);
    } else {
      len = bytes;
      setU64(iovecs, (at + n) * 4, base);
      setU64(iovecs, (at + n) * 4 + 2, len);
      n++;
    }
    end = base + bytes;
  }
  return n;
}

/** A kernel interface that moves many transfers per system call: LinuxAio, or IoUring (io-uring.ts). */
export interface BatchEngine {
  /** Transfers per `run` at most. */
  readonly maxOps: number;
  /** Buffers per `run` at most, over all its transfers. */
  readonly maxBuffers: number;
  /** False once closed, or when the engine cannot go on: `run` would throw. */
  readonly usable: boolean;
  /** What it is, for the log ("Linux AIO", "io_uring + Linux AIO"). */
  readonly name: string;
  /**
   * Perform `ops` on `fd`; `results[i]` becomes op i's byte count or -errno. Returns after
   * every op completed. The caller keeps within `maxOps` and `maxBuffers`.
   */
  run(fd: number, ops: readonly AioOp[], results: number[]): void;
  /**
   * The file every `run` will be given, told once: an engine may register it with the kernel
   * (io_uring's fixed files spare a file lookup per transfer). The caller closes the engine
   * before the file, so a registration never outlives the descriptor it was made from.
   */
  registerFile?(fd: number): void;
  /** Release the kernel's side. Idempotent. */
  close(): void;
}

/** What BufferAddresses remember, per `addressOf` function (see BufferAddresses.key). */
interface AddressCache {
  readonly key: symbol;
  readonly bases: WeakMap<ArrayBufferLike, number>;
}

const addressCaches = new WeakMap<(view: Uint8Array) => number, AddressCache>();

/**
 * The addresses the kernel is given for buffers: taken from the buffer's own ArrayBuffer
 * (which V8 never moves once `.buffer` was read) and remembered per buffer and per view in
 * WeakMaps, so each is forgotten with its buffer.
 */
export class BufferAddresses {
  /** Base address of each ArrayBuffer seen (a buffer never moves; the entry dies with it): shared like `key`. */
  private readonly bases: WeakMap<ArrayBufferLike, number>;
  /**
   * The property under which a view seen before carries its address (a view's buffer and
   * offset never change; the address dies with the view). A property of the view, not a
   * WeakMap entry: 1 MiB sequential reads look up 256 page views per MiB, and the WeakMap's
   * hash lookups were ~10% of blkback's CPU there (perf); taking them away cut blkback's CPU
   * per MiB by 13% (4 alternating pairs, one disk thread). One key per `addressOf`, so a
   * test's scripted one never sees the real addresses, nor they its; and the engines of a
   * thread (io_uring and AIO both see a disk's pages) share libc's, so a page view gains one
   * property, not one per engine: views whose shapes multiply make the lookup megamorphic.
   */
  private readonly key: symbol;

  /** `addressOf` gives the address koffi passes for a typed array. */
  constructor(private readonly addressOf: (view: Uint8Array) => number) {
    let cache = addressCaches.get(addressOf);
    if (cache === undefined) addressCaches.set(addressOf, (cache = { key: Symbol('address'), bases: new WeakMap() }));
    this.key = cache.key;
    this.bases = cache.bases;
  }

  of(view: ArrayBufferView): number {
    // By view first: a backend's mapped pages are the same view objects request after
    // request, and `view.buffer` is a runtime call.
    let at = (view as unknown as Record<symbol, number | undefined>)[this.key];
    if (at !== undefined) return at;
    const buffer = view.buffer;
    let base = this.bases.get(buffer);
    if (base === undefined) {
      base = this.addressOf(new Uint8Array(buffer, 0, Math.min(1, buffer.byteLength)));
      this.bases.set(buffer, base);
    }
    at = base + view.byteOffset;
    // Not enumerable: the view's owner sees no new property (a deep comparison of two views stays equal).
    Object.defineProperty(view, this.key, { value: at });
    return at;
  }
}

interface Calls {
  setup: (nr: number, ctx: BigUint64Array) => number;
  destroy: (ctx: number) => number;
  submit: (ctx: number, nr: number, iocbpp: number) => number;
  getevents: (ctx: number, min: number, nr: number, events: number, timeout: number) => number;
  /** memcpy(p, p, 0): returns `p`, i.e. the address koffi passes for a typed array. */
  addressOf: (view: Uint8Array) => number;
  errno: () => number;
}

let bound: Calls | string | undefined;

function bind(): Calls | string {
  if (bound !== undefined) return bound;
  const libc = loadLibc('Linux AIO');
  if (typeof libc === 'string') return (bound = libc);
  const lib = libc.lib;
  try {
    // glibc's syscall() is an assembly stub that moves its integer arguments into place: a
    // fixed prototype per use is as good as the variadic one, and cheaper to call.
    bound = {
      setup: lib.func('long syscall(long, long, _Out_ uint64_t *)').bind(null, SYS_io_setup) as Calls['setup'],
      destroy: lib.func('long syscall(long, uint64_t)').bind(null, SYS_io_destroy) as Calls['destroy'],
      submit: lib.func('long syscall(long, uint64_t, long, uint64_t)').bind(null, SYS_io_submit) as Calls['submit'],
      getevents: lib.func('long syscall(long, uint64_t, long, long, uint64_t, uint64_t)').bind(null, SYS_io_getevents) as Calls['getevents'],
      addressOf: libc.addressOf,
      errno: libc.errno,
    };
  } catch (err) {
    bound = `the native bridge (koffi) did not load: ${(err as Error).message}`;
  }
  return bound;
}

export class LinuxAio implements BatchEngine {
  readonly name = 'Linux AIO';
  private readonly iocbs: Uint32Array;
  private readonly iovecs: Uint32Array;
  private readonly events: Int32Array;
  /** The iocb pointer array io_submit reads (kept referenced: the kernel reads it by address). */
  private readonly pointers: Uint32Array;
  private readonly iocbAt: number;
  private readonly iovecAt: number;
  private readonly pointersAt: number;
  private readonly eventsAt: number;
  private readonly addresses: BufferAddresses;
  /** Ops of the current run the kernel has reported done (a second report is refused). */
  private readonly done: Uint8Array;
  private ctx: number;

  private constructor(
    private readonly calls: Calls,
    ctx: number,
    /** Transfers per `run` at most. */
    readonly maxOps: number,
    /** Buffers per `run` at most, over all its transfers. */
    readonly maxBuffers: number,
  ) {
    this.ctx = ctx;
    this.addresses = new BufferAddresses(calls.addressOf);
    this.iocbs = new Uint32Array(new ArrayBuffer(maxOps * IOCB_BYTES));
    this.iovecs = new Uint32Array(new ArrayBuffer(maxBuffers * IOVEC_BYTES));
    this.events = new Int32Array(new ArrayBuffer(maxOps * EVENT_BYTES));
    this.done = new Uint8Array(maxOps);
    const pointers = (this.pointers = new Uint32Array(new ArrayBuffer(maxOps * 8)));
    this.iocbAt = this.addressOf(this.iocbs);
    this.iovecAt = this.addressOf(this.iovecs);
    this.eventsAt = this.addressOf(this.events);
    this.pointersAt = this.addressOf(pointers);
    for (let i = 0; i < maxOps; i++) setU64(pointers, i * 2, this.iocbAt + i * IOCB_BYTES);
  }

  /** An AIO context for up to `maxOps` transfers of `maxBuffers` buffers per run, or why not. */
  static create(maxOps: number, maxBuffers: number): LinuxAio | string {
    const calls = bind();
    if (typeof calls === 'string') return calls;
    const ctx = setupContext(calls, maxOps);
    if (ctx === 0) return `io_setup failed (errno ${calls.errno()})`;
    return new LinuxAio(calls, ctx, maxOps, maxBuffers);
  }

  /** False once closed, or when a context could not be renewed (io_setup failed): `run` would throw. */
  get usable(): boolean {
    return this.ctx !== 0;
  }

  /**
   * Perform `ops` on `fd`; `results[i]` becomes op i's byte count or -errno. Returns after
   * every op completed. The caller keeps within `maxOps` and `maxBuffers`.
   */
  run(fd: number, ops: readonly AioOp[], results: number[]): void {
    const n = ops.length;
    if (this.ctx === 0) throw new BugError('LinuxAio used after close (or its context could not be renewed)');
    if (n > this.maxOps) throw new BugError(`${n} AIO transfers, at most ${this.maxOps}`);
    let iov = 0;
    for (let i = 0; i < n; i++) iov = this.prepare(i, fd, ops[i]!, iov);
    let submitted = 0;
    this.done.fill(0, 0, n);
    while (submitted < n) {
      const got = this.calls.submit(this.ctx, n - submitted, this.pointersAt + submitted * 8);
      if (got > 0) {
        this.collect(got, n, results);
        submitted += got;
      } else {
        // The first iocb of the rest was refused: syscall() answered -1 and its errno is the op's.
        results[submitted] = -(this.calls.errno() || 5);
        submitted++;
      }
    }
  }

  /** Release the kernel context. Idempotent. */
  close(): void {
    if (this.ctx === 0) return;
    this.calls.destroy(this.ctx);
    this.ctx = 0;
  }

  private prepare(i: number, fd: number, op: AioOp, iov: number): number {
    const bufs = op.bufs;
    if (iov + bufs.length > this.maxBuffers) throw new BugError(`AIO run over ${this.maxBuffers} buffers`);
    const firstIov = iov;
    const iovcnt = writeIovecs(this.iovecs, iov, bufs, this.addresses);
    iov += iovcnt;
    const w = this.iocbs;
    const o = i * (IOCB_BYTES / 4);
    w[o] = i; // aio_data: the op's index
    w[o + 1] = 0;
    w[o + 2] = 0; // aio_key
    w[o + 3] = 0; // aio_rw_flags
    w[o + 4] = op.write ? IOCB_CMD_PWRITEV : IOCB_CMD_PREADV; // aio_lio_opcode, aio_reqprio 0
    w[o + 5] = fd;
    setU64(w, o + 6, this.iovecAt + firstIov * IOVEC_BYTES); // aio_buf: the iovec array
    setU64(w, o + 8, iovcnt); // aio_nbytes: iovcnt for PREADV/PWRITEV
    setU64(w, o + 10, op.offset);
    w[o + 12] = 0; // aio_reserved2
    w[o + 13] = 0;
    w[o + 14] = 0; // aio_flags
    w[o + 15] = 0; // aio_resfd
    return iov;
  }

  /** Wait for `count` events of a run of `n` ops and store each result at its op's index. */
  private collect(count: number, n: number, results: number[]): void {
    let left = count;
    while (left > 0) {
      const got = this.calls.getevents(this.ctx, left, left, this.eventsAt, 0);
      if (got < 0) {
        const errno = this.calls.errno();
        if (errno === 4) continue; // EINTR
        this.renew(`io_getevents failed (errno ${errno})`);
      }
      const e = this.events;
      for (let k = 0; k < got; k++) {
        const at = k * (EVENT_BYTES / 4);
        // Checked as io_uring's reap checks its user_data: an index outside this run, or one
        // answered twice, would write a result no op owns (or hide one still owed).
        const i = e[at]!;
        if (e[at + 1] !== 0 || i < 0 || i >= n || this.done[i] !== 0) this.renew(`io_getevents reported op ${i}:${e[at + 1]} of a run of ${n}`);
        this.done[i] = 1;
        // res is an s64; a transfer here is < 2^31 bytes and an error is -errno.
        results[i] = e[at + 4]!;
      }
      left -= got;
    }
  }

  /**
   * The run cannot be trusted: events still owed would land in a later run under its
   * indices, and their transfers may still use this run's buffers. io_destroy waits for
   * them; later runs get a fresh context.
   */
  private renew(why: string): never {
    this.close();
    this.ctx = setupContext(this.calls, this.maxOps);
    throw new BugError(why);
  }

  private addressOf(view: ArrayBufferView): number {
    return this.addresses.of(view);
  }
}

/** io_setup for `maxOps` events: the context id, or 0 (see errno). */
function setupContext(calls: Calls, maxOps: number): number {
  const ctx = new BigUint64Array(1);
  return calls.setup(maxOps, ctx) === 0 ? Number(ctx[0]) : 0;
}
