/**
 * A range of mmapped device memory (grant mappings from gntdev, our granted pages from
 * gntalloc) seen from JavaScript as an ArrayBuffer over the mapped pages, without copies.
 *
 * The danger of such views: after munmap, a stale Uint8Array would touch unmapped memory
 * and kill the process with SIGSEGV (the page of a request answered late, a mapping
 * released by a killed backend while its storage I/O still completes). So a region is
 * never simply unmapped: `retire()` atomically replaces it with private zero pages
 * (mmap MAP_FIXED over the device mapping, which is also what releases the device's pages),
 * and those are unmapped only when the last view of the ArrayBuffer has been collected.
 * A stale view then reads zeros and writes nowhere.
 */
import { XenpvError } from '../../base/index.js';
import {
  MAP_ANONYMOUS,
  MAP_FAILED,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  errnoName,
  type Native,
  type NativePtr,
} from './ffi.js';

interface Placeholder {
  readonly native: Native;
  readonly ptr: NativePtr;
  readonly len: number;
}

const collected = new FinalizationRegistry<Placeholder>((p) => {
  p.native.munmap(p.ptr, p.len);
});

export class MappedRegion {
  readonly buffer: ArrayBuffer;
  private live = true;

  private constructor(
    private readonly native: Native,
    private readonly ptr: NativePtr,
    readonly length: number,
  ) {
    this.buffer = native.view(ptr, length);
  }

  /** mmap `length` bytes of `fd` at `offset`; throws XenpvError(code) on failure. */
  static map(native: Native, fd: number, offset: bigint, length: number, writable: boolean, what: string): MappedRegion {
    const prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    const ptr = native.mmap(null, length, prot, 0x01 /* MAP_SHARED */, fd, offset);
    if (native.address(ptr) === MAP_FAILED) {
      const errno = native.errno();
      throw new XenpvError(errnoName(native, errno), `mmap of ${what} failed: ${errnoName(native, errno)}`, { errno });
    }
    return new MappedRegion(native, ptr, length);
  }

  /** Private zeroed memory with a stable native address (staging for copies). */
  static anonymous(native: Native, length: number): MappedRegion {
    const ptr = native.mmap(null, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
    if (native.address(ptr) === MAP_FAILED) throw new XenpvError('ENOMEM', `no memory for ${length} bytes of staging`);
    return new MappedRegion(native, ptr, length);
  }

  /** The native address of the first byte. */
  get address(): bigint {
    return this.native.address(this.ptr);
  }

  get mapped(): boolean {
    return this.live;
  }

  /** 4 KiB views, one per page. */
  pages(pageSize: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let off = 0; off < this.length; off += pageSize) out.push(new Uint8Array(this.buffer, off, pageSize));
    return out;
  }

  /**
   * Put `fd`'s pages at `offset` (a gntalloc page) under this region's address, keeping the
   * bytes: every view of the region now reads and writes the device's pages. MAP_FIXED
   * replaces the old pages atomically; the bytes are copied across by the calling thread, so
   * a concurrent writer on another thread would lose its write (ours have none while granting).
   */
  adoptDevicePages(fd: number, offset: bigint, what: string): void {
    this.swap(PROT_READ | PROT_WRITE, 0x01 /* MAP_SHARED */ | MAP_FIXED, fd, offset, what);
  }

  /** Back to private pages under the same address, keeping the bytes (the device's go). */
  toPrivatePages(what: string): void {
    this.swap(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0n, what);
  }

  private swap(prot: number, flags: number, fd: number, offset: bigint, what: string): void {
    if (!this.live) throw new XenpvError('EINVAL', `${what}: the region is retired`);
    const bytes = new Uint8Array(this.buffer);
    const keep = bytes.slice();
    const p = this.native.mmap(this.ptr, this.length, prot, flags, fd, offset);
    if (this.native.address(p) === MAP_FAILED) {
      const errno = this.native.errno();
      throw new XenpvError(errnoName(this.native, errno), `mmap of ${what} failed: ${errnoName(this.native, errno)}`, { errno });
    }
    bytes.set(keep);
  }

  /**
   * Drop the device mapping (the kernel unmaps the grants or our granted pages now) and
   * leave zero pages under any view still held. Idempotent.
   */
  retire(): void {
    if (!this.live) return;
    this.live = false;
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
    const p = this.native.mmap(this.ptr, this.length, PROT_READ | PROT_WRITE, flags, -1, 0n);
    if (this.native.address(p) === MAP_FAILED) {
      // Out of memory for the page tables of a placeholder: the device mapping must still go.
      // Views of it are then invalid; nothing of ours reads a retired region.
      this.native.munmap(this.ptr, this.length);
      return;
    }
    collected.register(this.buffer, { native: this.native, ptr: this.ptr, len: this.length });
  }
}
