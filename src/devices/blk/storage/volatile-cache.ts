/**
 * A disk with a volatile write cache, for crash testing (reliability.md R18).
 *
 * It sits under an image format as its `ImageFile`: writes, truncates and hole punches are
 * held in memory, visible to reads, until `flush()` moves them to the stable medium below.
 * `powerCut()` models losing power: the medium keeps what was flushed plus an arbitrary
 * subset of the unflushed operations, each write possibly torn at 512-byte sector boundaries
 * (real disks persist sectors, not requests, in any order). A cut can also be armed to fire
 * when the n-th operation reaches the device, so it lands in the middle of a store's
 * multi-step update (a qcow2 allocation, a flush's metadata phases). After the cut every
 * operation fails with EIO, as a dead device would.
 *
 * The cache lives at the file layer so the same harness tests raw and qcow2: a format's
 * metadata ordering is only as good as the flushes it issues to this layer.
 */
import type { ImageFile } from './image-file.js';
import { storageError } from './types.js';

type Pending =
  | { kind: 'write'; offset: number; data: Uint8Array }
  | { kind: 'truncate'; size: number }
  | { kind: 'punch'; offset: number; length: number };

/** A deterministic source of choices for what survives a cut. */
export type Rng = () => number;

export function seededRng(seed: number): Rng {
  // Scramble the seed (murmur3's finalizer) so small seeds do not start xorshift near zero.
  let s = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
  s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35);
  s = (s ^ (s >>> 16)) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

const SECTOR = 512;

export class VolatileCacheFile implements ImageFile {
  readonly hasVolatileCache = true;
  readonly readOnly = false;
  private pending: Pending[] = [];
  private dead = false;
  private opsSeen = 0;
  private cutAt = Infinity;
  private cut: Promise<void> | undefined;

  constructor(
    /** The stable medium: must itself have no volatile cache (e.g. MemoryImageFile). */
    readonly medium: ImageFile,
    private readonly rng: Rng,
  ) {}

  get name(): string {
    return `volatile(${this.medium.name})`;
  }

  get isDead(): boolean {
    return this.dead;
  }

  /** Device operations (write/flush/truncate/punch) seen so far. */
  get operations(): number {
    return this.opsSeen;
  }

  /** Cut the power when the `n`-th device operation (0-based, counted from now on) starts. */
  armCut(n: number): void {
    this.cutAt = this.opsSeen + n;
  }

  async size(): Promise<number> {
    this.alive();
    let size = await this.medium.size();
    for (const op of this.pending) {
      if (op.kind === 'write') size = Math.max(size, op.offset + op.data.byteLength);
      else if (op.kind === 'truncate') size = op.size;
    }
    return size;
  }

  async read(offset: number, dest: Uint8Array): Promise<number> {
    this.alive();
    await this.medium.read(offset, dest);
    const end = offset + dest.byteLength;
    for (const op of this.pending) {
      if (op.kind === 'write') overlay(dest, offset, op.offset, op.data);
      else if (op.kind === 'punch') zeroSpan(dest, offset, op.offset, op.offset + op.length);
      else zeroSpan(dest, offset, op.size, end);
    }
    const size = await this.size();
    return Math.max(0, Math.min(dest.byteLength, size - offset));
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    this.step();
    this.pending.push({ kind: 'write', offset, data: src.slice() });
  }

  async truncate(size: number): Promise<void> {
    this.step();
    this.pending.push({ kind: 'truncate', size });
  }

  async punchHole(offset: number, length: number): Promise<boolean> {
    this.step();
    this.pending.push({ kind: 'punch', offset, length });
    return true;
  }

  /** Commit everything pending when called, in order, to the medium. */
  async flush(): Promise<void> {
    this.step();
    const batch = this.pending;
    this.pending = [];
    for (const op of batch) await apply(this.medium, op);
    await this.medium.flush();
  }

  /** Lose power now: persist a random subset of pending operations (writes torn per sector). */
  powerCut(): Promise<void> {
    this.cut ??= this.persistSome();
    return this.cut;
  }

  private async persistSome(): Promise<void> {
    this.dead = true;
    const batch = this.pending;
    this.pending = [];
    for (const op of batch) {
      if (this.rng() < 0.5) continue;
      if (op.kind !== 'write') {
        await apply(this.medium, op);
        continue;
      }
      for (let s = 0; s < op.data.byteLength; s += SECTOR) {
        if (this.rng() < 0.5) await this.medium.write(op.offset + s, op.data.subarray(s, Math.min(op.data.byteLength, s + SECTOR)));
      }
    }
  }

  async close(): Promise<void> {
    // Closing a device does not flush its cache; the owner flushes first if it means to.
  }

  private step(): void {
    this.alive();
    if (this.opsSeen++ >= this.cutAt) {
      void this.powerCut();
      throw storageError('EIO', 'power cut');
    }
  }

  private alive(): void {
    if (this.dead) throw storageError('EIO', 'device lost power');
  }
}

async function apply(medium: ImageFile, op: Pending): Promise<void> {
  if (op.kind === 'write') await medium.write(op.offset, op.data);
  else if (op.kind === 'truncate') await medium.truncate(op.size);
  else await medium.punchHole(op.offset, op.length);
}

/** Copy the part of `data` (at file offset `at`) that falls inside `dest` (at file offset `base`). */
function overlay(dest: Uint8Array, base: number, at: number, data: Uint8Array): void {
  const from = Math.max(base, at);
  const to = Math.min(base + dest.byteLength, at + data.byteLength);
  if (to > from) dest.set(data.subarray(from - at, to - at), from - base);
}

function zeroSpan(dest: Uint8Array, base: number, from: number, to: number): void {
  const a = Math.max(base, from);
  const b = Math.min(base + dest.byteLength, to);
  if (b > a) dest.fill(0, a - base, b - base);
}
