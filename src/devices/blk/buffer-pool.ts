/**
 * Private bounce buffers for blkback, reused by size (GC pressure dominated the data path
 * without it). A buffer is handed out only after the storage call that used it settled
 * (storage keeps no reference: storage/types.ts). Reuse never leaks stale bytes to a peer:
 * a READ's buffer is entirely filled by storage before any of it is copied out, a WRITE's
 * entirely by the gather from the frontend's pages.
 */
export class BufferPool {
  private readonly free = new Map<number, Uint8Array[]>();

  constructor(
    /** Buffers kept per size. */
    private readonly perSize = 8,
    /** Sizes above this are never kept. */
    private readonly maxBytes = 1 << 21,
  ) {}

  take(bytes: number): Uint8Array {
    return this.free.get(bytes)?.pop() ?? new Uint8Array(bytes);
  }

  give(buf: Uint8Array): void {
    if (buf.byteLength > this.maxBytes) return;
    let list = this.free.get(buf.byteLength);
    if (list === undefined) {
      if (this.free.size >= 64) return; // a bounded number of size classes
      list = [];
      this.free.set(buf.byteLength, list);
    }
    if (list.length < this.perSize) list.push(buf);
  }
}
