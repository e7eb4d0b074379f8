/**
 * O_DIRECT from Node. O_DIRECT needs the memory address, the file offset and the length
 * aligned (to the device's logical block, 512 here); JavaScript cannot see addresses, and
 * buffers that are views of a guest's SharedArrayBuffer sit at whatever offset the grant
 * gives (performance.md §2.5: the SAB data pointer is 16 bytes past a 512-byte boundary).
 * So direct I/O goes through a bounce slab whose alignment is found by probing: read one
 * page with O_DIRECT at successive 16-byte offsets inside the slab until the kernel accepts
 * it. Offsets and lengths are widened to 512 bytes; a request that is not 512-aligned costs
 * a read-modify-write, which only qcow2's serialized metadata updates ever cause.
 */
import type { promises as fsp } from 'node:fs';
import { storageError } from './types.js';

/** File offset/length alignment for O_DIRECT (the device's logical block). */
export const DIRECT_ALIGN = 512;
const PAGE = 4096;
const SLOT_BYTES = 1024 * 1024;
const SLOTS = 8;

export class AlignedPool {
  private readonly free: number[] = [];
  private readonly waiters: Array<() => void> = [];

  private constructor(
    private readonly slab: Uint8Array,
    private readonly base: number,
  ) {
    for (let i = 0; i < SLOTS; i++) this.free.push(i);
  }

  /** Probe the slab's alignment against `fh` (opened O_DIRECT; needs at least one page of file). */
  static async create(fh: fsp.FileHandle, name: string): Promise<AlignedPool> {
    const slab = new Uint8Array(new ArrayBuffer(SLOTS * SLOT_BYTES + PAGE));
    if ((await fh.stat()).size < PAGE) {
      throw storageError('EINVAL', `${name}: O_DIRECT needs a file of at least ${PAGE} bytes to probe alignment`);
    }
    for (let off = 0; off < PAGE; off += 16) {
      try {
        await fh.read(slab, off, PAGE, 0);
        return new AlignedPool(slab, off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      }
    }
    throw storageError('EINVAL', `${name}: no buffer alignment accepted by O_DIRECT`);
  }

  async read(fh: fsp.FileHandle, offset: number, dest: Uint8Array): Promise<number> {
    let fromFile = 0;
    for (let done = 0; done < dest.byteLength; ) {
      const part = Math.min(dest.byteLength - done, SLOT_BYTES - PAGE);
      fromFile += await this.withSlot((slot) => this.readSpan(fh, slot, offset + done, dest.subarray(done, done + part)));
      done += part;
    }
    return fromFile;
  }

  async write(fh: fsp.FileHandle, offset: number, src: Uint8Array): Promise<void> {
    for (let done = 0; done < src.byteLength; ) {
      const part = Math.min(src.byteLength - done, SLOT_BYTES - PAGE);
      await this.withSlot((slot) => this.writeSpan(fh, slot, offset + done, src.subarray(done, done + part)));
      done += part;
    }
  }

  private async readSpan(fh: fsp.FileHandle, slot: Uint8Array, offset: number, dest: Uint8Array): Promise<number> {
    const start = alignDown(offset);
    const len = alignUp(offset + dest.byteLength) - start;
    const got = await preadAll(fh, slot.subarray(0, len), start);
    const head = offset - start;
    dest.set(slot.subarray(head, head + dest.byteLength));
    return Math.max(0, Math.min(dest.byteLength, got - head));
  }

  private async writeSpan(fh: fsp.FileHandle, slot: Uint8Array, offset: number, src: Uint8Array): Promise<void> {
    const start = alignDown(offset);
    const end = alignUp(offset + src.byteLength);
    const len = end - start;
    if (start !== offset || end !== offset + src.byteLength) await preadAll(fh, slot.subarray(0, len), start);
    slot.set(src, offset - start);
    for (let done = 0; done < len; ) {
      const { bytesWritten } = await fh.write(slot, done, len - done, start + done);
      done += bytesWritten;
    }
  }

  private async withSlot<T>(fn: (slot: Uint8Array) => Promise<T>): Promise<T> {
    while (this.free.length === 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    const index = this.free.pop() as number;
    try {
      const at = this.base + index * SLOT_BYTES;
      return await fn(this.slab.subarray(at, at + SLOT_BYTES));
    } finally {
      this.free.push(index);
      this.waiters.shift()?.();
    }
  }
}

/** Read into `buf` (aligned) until full or EOF; zero the rest. Returns bytes read. */
async function preadAll(fh: fsp.FileHandle, buf: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesRead } = await fh.read(buf, done, buf.byteLength - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
    // A short O_DIRECT read ends at EOF; the next call would start unaligned.
    if (done % DIRECT_ALIGN !== 0) break;
  }
  buf.fill(0, done);
  return done;
}

const alignDown = (n: number): number => Math.floor(n / DIRECT_ALIGN) * DIRECT_ALIGN;
const alignUp = (n: number): number => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;
