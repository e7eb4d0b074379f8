/**
 * Private bounce buffers for blkback, reused by size (GC pressure dominated the data path
 * without it). A buffer is handed out only after the storage call that used it settled
 * (storage keeps no reference: storage/types.ts). Reuse never leaks stale bytes to a peer:
 * a READ's buffer is entirely filled by storage before any of it is copied out, a WRITE's
 * entirely by the gather from the frontend's pages.
 */
export class BufferPool {
  private readonly free = new Map<number, Uint8Array[]>();
  /** Bytes held in `free`, bounded by `maxPooledBytes` whatever sizes a frontend asks for. */
  private pooled = 0;

  constructor(
    /** Buffers kept per size. */
    private readonly perSize = 8,
    /** Sizes above this are never kept. */
    private readonly maxBytes = 1 << 21,
    /** All kept buffers together. */
    private readonly maxPooledBytes = 32 << 20,
  ) {}

  take(bytes: number): Uint8Array {
    const buf = this.free.get(bytes)?.pop();
    if (buf === undefined) return new Uint8Array(bytes);
    this.pooled -= bytes;
    return buf;
  }

  give(buf: Uint8Array): void {
    if (buf.byteLength > this.maxBytes || this.pooled + buf.byteLength > this.maxPooledBytes) return;
    let list = this.free.get(buf.byteLength);
    if (list === undefined) {
      if (this.free.size >= 64) return; // a bounded number of size classes
      list = [];
      this.free.set(buf.byteLength, list);
    }
    if (list.length >= this.perSize) return;
    list.push(buf);
    this.pooled += buf.byteLength;
  }
}
