/**
 * One direction of a byte-stream ring: a data array of power-of-two size and two free-running
 * u32 indices (`cons`, `prod`), as in the xenstore page (`MASK_XENSTORE_IDX`) and the console
 * page (`MASK_XENCONS_IDX`).
 *
 * Each end keeps its own index privately and reads the peer's once per operation. The pair
 * must satisfy `(prod - cons) mod 2^32 <= size`; anything else means the peer wrote garbage
 * (XSA-38, XSA-86), and the end stops: it reads and writes nothing more and reports why.
 * A full ring is `prod == cons + size`, not empty (the XSA-38 follow-up regression).
 */
import { BugError } from '../base/index.js';
import { toRingMemory, type RingMemory, type RingMemoryInput } from './memory.js';

export interface ByteRingLayout {
  /** Offset of the data array (`req`, `rsp`, `in`, `out`). */
  readonly data: number;
  /** Its size in bytes, a power of two. */
  readonly size: number;
  /** Offsets of the u32 consumer and producer indices. */
  readonly cons: number;
  readonly prod: number;
}

export interface ByteRingBroken {
  readonly reason: 'byte-ring-index';
  readonly prod: number;
  readonly cons: number;
  readonly size: number;
}

export interface ByteRingOptions {
  readonly onBroken?: (broken: ByteRingBroken) => void;
}

abstract class ByteRingEnd {
  protected readonly mem: RingMemory;
  protected readonly mask: number;
  private brokenBy: ByteRingBroken | undefined;

  constructor(
    mem: RingMemoryInput,
    readonly layout: ByteRingLayout,
    private readonly options: ByteRingOptions,
  ) {
    this.mem = toRingMemory(mem);
    const { size, data } = layout;
    if (size <= 0 || (size & (size - 1)) !== 0 || data + size > this.mem.byteLength) {
      throw new BugError(`byte ring of ${size} bytes at ${data} does not fit`);
    }
    this.mask = size - 1;
  }

  get broken(): ByteRingBroken | undefined {
    return this.brokenBy;
  }

  /** Check `prod - cons <= size`; false (and broken from now on) when it does not hold. */
  protected valid(prod: number, cons: number): boolean {
    if (this.brokenBy !== undefined) return false;
    if (((prod - cons) >>> 0) <= this.layout.size) return true;
    this.brokenBy = { reason: 'byte-ring-index', prod, cons, size: this.layout.size };
    this.options.onBroken?.(this.brokenBy);
    return false;
  }

  /** Copy `length` bytes between the ring (from free-running index `idx`) and `buf`. */
  protected transfer(idx: number, buf: Uint8Array, at: number, length: number, out: boolean): void {
    const start = idx & this.mask;
    const first = Math.min(length, this.layout.size - start);
    const copy = out ? this.mem.copyOut.bind(this.mem) : this.mem.copyIn.bind(this.mem);
    copy(this.layout.data + start, buf, at, first);
    if (first < length) copy(this.layout.data, buf, at + first, length - first);
  }
}

/** The producer end: writes bytes, publishes `prod`, reads the peer's `cons`. */
export class ByteRingWriter extends ByteRingEnd {
  private prodPvt: number;

  /** Attach to a live ring: our index is taken from the page once (indices need not be 0). */
  constructor(mem: RingMemoryInput, layout: ByteRingLayout, options: ByteRingOptions = {}) {
    super(mem, layout, options);
    this.prodPvt = this.mem.load32(layout.prod);
  }

  /** Our producer index: where the next byte goes (free-running). */
  get produced(): number {
    return this.prodPvt;
  }

  /** Bytes that can be written now (0 when full or broken). */
  space(): number {
    const cons = this.mem.load32(this.layout.cons);
    if (!this.valid(this.prodPvt, cons)) return 0;
    return this.layout.size - ((this.prodPvt - cons) >>> 0);
  }

  /**
   * Write as much of `bytes` as fits and publish it; returns the count written. The caller
   * signals the peer when the count is not 0 (xenstore-ring.txt: every update is signalled).
   */
  write(bytes: Uint8Array): number {
    const n = Math.min(this.space(), bytes.length);
    if (n === 0) return 0;
    this.transfer(this.prodPvt, bytes, 0, n, false);
    this.prodPvt = (this.prodPvt + n) >>> 0;
    // The index store comes after the data writes (Atomics orders them): the peer never
    // sees an index covering bytes not yet written.
    this.mem.store32(this.layout.prod, this.prodPvt);
    return n;
  }

  /** Re-read our index from the page, after the peer reset the ring (xenstore reconnect). */
  resync(): void {
    this.prodPvt = this.mem.load32(this.layout.prod);
  }
}

/** The consumer end: copies bytes out once, publishes `cons`, reads the peer's `prod`. */
export class ByteRingReader extends ByteRingEnd {
  private consPvt: number;

  constructor(mem: RingMemoryInput, layout: ByteRingLayout, options: ByteRingOptions = {}) {
    super(mem, layout, options);
    this.consPvt = this.mem.load32(layout.cons);
  }

  /** Bytes waiting (0 when empty or broken). */
  available(): number {
    const prod = this.mem.load32(this.layout.prod);
    if (!this.valid(prod, this.consPvt)) return 0;
    return (prod - this.consPvt) >>> 0;
  }

  /**
   * Copy up to `max` waiting bytes out into a new private buffer and free their space;
   * the caller signals the peer when the result is not empty.
   */
  read(max = this.layout.size): Uint8Array {
    const n = Math.min(this.available(), max);
    const out = new Uint8Array(n);
    if (n > 0) this.consume(out, n);
    return out;
  }

  /** As `read`, into `dst`; returns the count. */
  readInto(dst: Uint8Array): number {
    const n = Math.min(this.available(), dst.length);
    if (n > 0) this.consume(dst, n);
    return n;
  }

  resync(): void {
    this.consPvt = this.mem.load32(this.layout.cons);
  }

  private consume(dst: Uint8Array, n: number): void {
    this.transfer(this.consPvt, dst, 0, n, true);
    this.consPvt = (this.consPvt + n) >>> 0;
    this.mem.store32(this.layout.cons, this.consPvt);
  }
}
