/**
 * The console daemon's per-console output buffer: a byte ring of fixed capacity (the
 * console's `limit`). Output nobody has read yet waits here; beyond the capacity the oldest
 * bytes go (reliability.md R24: bounded, with a declared policy and a counter), and the next
 * reader first sees a marker saying how many bytes it missed, at the point where they were.
 */
import { discardMarker } from './protocol.js';

export class OutputBuffer {
  private readonly data: Uint8Array;
  private head = 0;
  private length = 0;
  /** Bytes discarded since the last marker was handed out. */
  private unreported = 0;
  /** All bytes ever discarded. */
  discarded = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity}`);
    this.data = new Uint8Array(capacity);
  }

  get size(): number {
    return this.length;
  }

  get space(): number {
    return this.capacity - this.length;
  }

  /** Anything to read, a marker included. */
  get readable(): boolean {
    return this.length > 0 || this.unreported > 0;
  }

  /** Append, discarding the oldest bytes beyond the capacity. */
  append(bytes: Uint8Array): void {
    let src = bytes;
    if (src.length > this.capacity) {
      this.drop(this.length + (src.length - this.capacity));
      src = src.subarray(src.length - this.capacity);
    } else if (src.length > this.space) {
      this.drop(src.length - this.space);
    }
    const tail = (this.head + this.length) % this.capacity;
    const first = Math.min(src.length, this.capacity - tail);
    this.data.set(src.subarray(0, first), tail);
    if (first < src.length) this.data.set(src.subarray(first), 0);
    this.length += src.length;
  }

  /** Take up to `max` bytes, oldest first; a pending discard marker comes out alone, first. */
  take(max = this.capacity): Uint8Array {
    if (this.unreported > 0) {
      const m = discardMarker(this.unreported);
      this.unreported = 0;
      return m;
    }
    const n = Math.min(max, this.length);
    const out = new Uint8Array(n);
    const first = Math.min(n, this.capacity - this.head);
    out.set(this.data.subarray(this.head, this.head + first));
    if (first < n) out.set(this.data.subarray(0, n - first), first);
    this.head = (this.head + n) % this.capacity;
    this.length -= n;
    return out;
  }

  private drop(n: number): void {
    const k = Math.min(n, this.length);
    this.head = (this.head + k) % this.capacity;
    this.length -= k;
    this.unreported += n;
    this.discarded += n;
  }
}
