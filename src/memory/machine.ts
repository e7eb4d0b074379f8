/**
 * Machine memory: every page the hypervisor model owns, in one shared WebAssembly.Memory.
 *
 * Why one buffer and not one per domain: a backend worker started before a guest exists must
 * still be able to map that guest's grants synchronously, as a Xen hypercall runs on the
 * calling CPU. With one buffer handed to every thread at start, a machine frame number is all
 * a thread needs to reach any page; per-domain buffers would need a message round trip to
 * learn about each new domain. A domain's guest-physical frames are a contiguous run of
 * machine frames (its p2m is `base + frame`).
 *
 * Why a WebAssembly.Memory: its buffer is a SharedArrayBuffer like any other, and it also
 * gives `memory.copy`, a memmove between any two places of machine memory, where copying
 * between typed arrays over shared memory is a word loop (wasm-copy.ts). Its whole size is
 * reserved at creation, so the buffer never moves or grows: pages never touched cost no RAM.
 *
 * Extents are handed out by the host only (domain create/destroy run on the host's main
 * thread), so the extent allocator is host-private and needs no atomics.
 */
import { XenpvError } from '../base/index.js';
import { WASM_MAX_PAGES, WASM_PAGE, memoryCopy, sharedMemory, type MemoryCopy, type WasmMemory } from './wasm-copy.js';

export const MACHINE_PAGE_SIZE = 4096;

/** The structured-cloneable part: post it to a worker and rebuild `MachineMemory` there. */
export interface MachineHandle {
  readonly memory: WasmMemory;
}

export class MachineMemory {
  readonly sab: SharedArrayBuffer;
  private readonly memory: WasmMemory;
  private copier: MemoryCopy | undefined;

  constructor(handle: MachineHandle) {
    const sab = handle.memory.buffer;
    if (!(sab instanceof SharedArrayBuffer)) throw new XenpvError('EINVAL', 'machine memory must be a shared WebAssembly.Memory');
    this.memory = handle.memory;
    this.sab = sab;
  }

  /** Machine memory of `maxBytes` (rounded down to WebAssembly's 64 KiB pages; at most 4 GiB). */
  static create(maxBytes: number): MachineMemory {
    const pages = Math.floor(maxBytes / WASM_PAGE);
    if (pages < 1 || pages > WASM_MAX_PAGES) {
      throw new XenpvError('EINVAL', 'machine memory must be 64 KiB to 4 GiB', { maxBytes });
    }
    return new MachineMemory({ memory: sharedMemory(pages) });
  }

  get handle(): MachineHandle {
    return { memory: this.memory };
  }

  /** Frames there are (the whole size is there from the start). */
  get frameCount(): number {
    return this.sab.byteLength / MACHINE_PAGE_SIZE;
  }

  /** A live view of `count` machine frames from `mfn`. */
  bytes(mfn: number, count = 1): Uint8Array {
    return new Uint8Array(this.sab, mfn * MACHINE_PAGE_SIZE, count * MACHINE_PAGE_SIZE);
  }

  /** A live Int32 view of `count` machine frames from `mfn` (for atomics on shared words). */
  words(mfn: number, count = 1): Int32Array {
    return new Int32Array(this.sab, mfn * MACHINE_PAGE_SIZE, (count * MACHINE_PAGE_SIZE) / 4);
  }

  /**
   * Copy `len` bytes from byte address `src` to `dst` of machine memory (memmove). Callers
   * check bounds as they would for any copy; a range past the end throws (a WebAssembly trap).
   */
  copy(dst: number, src: number, len: number): void {
    (this.copier ??= memoryCopy(this.memory))(dst, src, len);
  }

  /** Whether `view` lies in machine memory (its addresses are then `view.byteOffset` onwards). */
  holds(view: Uint8Array): boolean {
    return view.buffer === this.sab;
  }

  /** ENOMEM unless frames [0, frames) exist (all of the size given at creation do: nothing grows). */
  checkFrames(frames: number): void {
    if (frames * MACHINE_PAGE_SIZE > this.sab.byteLength) {
      throw new XenpvError('ENOMEM', 'machine memory exhausted', { frames, maxFrames: this.frameCount });
    }
  }
}

interface Extent {
  base: number;
  count: number;
}

/**
 * First-fit allocator of machine-frame extents, host-private. Freed extents coalesce with
 * their neighbours; when none fits, the machine buffer grows. Extents are zeroed when handed
 * out again, so a new domain never inherits a dead one's bytes.
 */
export class ExtentAllocator {
  private free: Extent[] = [];
  private top = 0;

  constructor(private readonly machine: MachineMemory) {}

  alloc(count: number): number {
    if (!Number.isInteger(count) || count <= 0) throw new XenpvError('EINVAL', 'bad extent size', { count });
    const i = this.free.findIndex((e) => e.count >= count);
    if (i >= 0) {
      const e = this.free[i]!;
      const base = e.base;
      if (e.count === count) this.free.splice(i, 1);
      else {
        e.base += count;
        e.count -= count;
      }
      this.machine.bytes(base, count).fill(0);
      return base;
    }
    this.machine.checkFrames(this.top + count);
    const base = this.top;
    this.top += count;
    return base;
  }

  release(base: number, count: number): void {
    this.free.push({ base, count });
    this.free.sort((a, b) => a.base - b.base);
    const merged: Extent[] = [];
    for (const e of this.free) {
      const last = merged[merged.length - 1];
      if (last !== undefined && last.base + last.count === e.base) last.count += e.count;
      else merged.push({ ...e });
    }
    this.free = merged;
  }

  /** Frames currently handed out (for leak tests). */
  get inUse(): number {
    return this.top - this.free.reduce((n, e) => n + e.count, 0);
  }
}
