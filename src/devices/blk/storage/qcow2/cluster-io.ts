/**
 * Guest I/O on a qcow2 image, cluster by cluster: reads (coalescing runs of contiguous host
 * clusters), writes in place, allocating writes (copy-on-write from zero, the backing file or
 * a compressed cluster), and discard. The caller (qcow2.ts) holds the lock and decides when
 * metadata is persisted; everything here changes metadata only in memory.
 */
import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';
import type { BlockStorage } from '../types.js';
import { SECTOR_SIZE, storageError } from '../types.js';
import { type L2Mapping, clearEntry, compressedClusters, encodeL2 } from './entries.js';
import type { Qcow2Image } from './image.js';

const inflateRawAsync = promisify(inflateRaw);

interface Piece {
  /** Guest cluster index. */
  readonly gc: number;
  /** Byte offset inside the cluster. */
  readonly inOff: number;
  /** Position inside the caller's buffer. */
  readonly pos: number;
  readonly len: number;
}

export class ClusterIo {
  private readonly cs: number;
  private lastInflated: { host: number; data: Uint8Array } | undefined;

  constructor(
    private readonly image: Qcow2Image,
    private readonly backing: BlockStorage | undefined,
    private readonly discardZeroes: boolean,
  ) {
    this.cs = image.clusterSize;
  }

  async read(offset: number, dest: Uint8Array): Promise<void> {
    let run: { host: number; pos: number; len: number } | undefined;
    const flushRun = async (): Promise<void> => {
      if (run !== undefined) await this.image.file.read(run.host, dest.subarray(run.pos, run.pos + run.len));
      run = undefined;
    };
    for (const p of this.pieces(offset, dest.byteLength)) {
      const m = await this.image.lookup(p.gc);
      if (m.kind === 'normal') {
        this.image.checkDataCluster(m.host, `guest cluster ${p.gc}`);
        const host = m.host + p.inOff;
        if (run !== undefined && run.host + run.len === host) run.len += p.len;
        else {
          await flushRun();
          run = { host, pos: p.pos, len: p.len };
        }
        continue;
      }
      await flushRun();
      await this.readUnmapped(p, m, dest.subarray(p.pos, p.pos + p.len));
    }
    await flushRun();
  }

  /** Write if every cluster touched is allocated with refcount one; false (nothing written) otherwise. */
  async writeInPlace(offset: number, src: Uint8Array): Promise<boolean> {
    const hosts: number[] = [];
    const pieces = this.pieces(offset, src.byteLength);
    for (const p of pieces) {
      const m = await this.image.lookup(p.gc);
      if (m.kind !== 'normal' || !m.copied) return false;
      this.image.checkDataCluster(m.host, `guest cluster ${p.gc}`);
      hosts.push(m.host + p.inOff);
    }
    let i = 0;
    while (i < pieces.length) {
      const start = pieces[i] as Piece;
      let len = start.len;
      let j = i + 1;
      while (j < pieces.length && hosts[j] === (hosts[i] as number) + len) len += (pieces[j++] as Piece).len;
      await this.image.file.write(hosts[i] as number, src.subarray(start.pos, start.pos + len));
      i = j;
    }
    return true;
  }

  async writeAllocating(offset: number, src: Uint8Array): Promise<void> {
    for (const p of this.pieces(offset, src.byteLength)) {
      const piece = src.subarray(p.pos, p.pos + p.len);
      const m = await this.image.lookup(p.gc);
      if (m.kind === 'normal' && m.copied) {
        this.image.checkDataCluster(m.host, `guest cluster ${p.gc}`);
        await this.image.file.write(m.host + p.inOff, piece);
        continue;
      }
      await this.replaceCluster(p, m, piece);
    }
  }

  async discard(offset: number, length: number): Promise<void> {
    const diskEnd = Math.floor(this.image.size / SECTOR_SIZE) * SECTOR_SIZE;
    for (const p of this.pieces(offset, length)) {
      const clusterEnd = Math.min((p.gc + 1) * this.cs, diskEnd);
      const whole = p.inOff === 0 && p.gc * this.cs + p.len === clusterEnd;
      const m = await this.image.lookup(p.gc);
      if (m.kind === 'invalid') throw this.invalid(p.gc, m.why);
      if (whole) await this.dropCluster(p.gc, m);
      else if (this.discardZeroes) await this.zeroPart(p, m);
    }
  }

  /** Give guest cluster `gc` a new host cluster holding its old content overlaid with `piece`. */
  private async replaceCluster(p: Piece, m: L2Mapping, piece: Uint8Array): Promise<void> {
    let buf = piece;
    if (p.len !== this.cs) {
      buf = await this.content(p.gc, m);
      buf.set(piece, p.inOff);
    }
    const reuse = m.kind === 'zero' && m.copied && m.host !== 0;
    if (reuse) this.image.checkDataCluster(m.host, `guest cluster ${p.gc}`);
    const host = reuse ? m.host : (await this.image.refcounts.allocate(1)) * this.cs;
    await this.image.file.write(host, buf);
    this.image.noteWritten(host + this.cs);
    const l2 = await this.image.l2For(p.gc, true);
    if (l2 === undefined) throw storageError('EIO', 'qcow2: L2 table missing after allocation');
    encodeL2(l2.view, l2.index, host);
    this.image.touchL2(l2);
    if (!reuse) this.release(m);
  }

  /** Discard a whole cluster: unmap it (zero flag where a backing file would show through). */
  private async dropCluster(gc: number, m: L2Mapping): Promise<void> {
    const v3 = this.image.header.version === 3;
    const zeroFlag = this.backing !== undefined && v3;
    if (m.kind === 'unallocated' && !zeroFlag) return;
    if (m.kind === 'zero' && m.host === 0) return;
    const l2 = await this.image.l2For(gc, true);
    if (l2 === undefined) throw storageError('EIO', 'qcow2: L2 table missing after allocation');
    if (zeroFlag) encodeL2(l2.view, l2.index, 0, true);
    else clearEntry(l2.view, l2.index);
    this.image.touchL2(l2);
    this.release(m);
  }

  /** Make part of a cluster read as zero, without allocating where it already does. */
  private async zeroPart(p: Piece, m: L2Mapping): Promise<void> {
    if (m.kind === 'zero' || (m.kind === 'unallocated' && this.backing === undefined)) return;
    const zeroes = new Uint8Array(p.len);
    if (m.kind === 'normal' && m.copied) {
      this.image.checkDataCluster(m.host, `guest cluster ${p.gc}`);
      await this.image.file.write(m.host + p.inOff, zeroes);
      return;
    }
    await this.replaceCluster(p, m, zeroes);
  }

  /** Queue the references `m` held for release once the new mapping is durable. */
  private release(m: L2Mapping): void {
    const rc = this.image.refcounts;
    if ((m.kind === 'normal' || m.kind === 'zero') && m.host !== 0) rc.free(m.host / this.cs);
    else if (m.kind === 'compressed') {
      this.lastInflated = undefined;
      for (const c of compressedClusters(m.host, m.compressedBytes, this.cs)) rc.free(c);
    }
  }

  /** The full current content of guest cluster `gc`. */
  private async content(gc: number, m: L2Mapping): Promise<Uint8Array> {
    const buf = new Uint8Array(this.cs);
    if (m.kind === 'normal') {
      this.image.checkDataCluster(m.host, `guest cluster ${gc}`);
      await this.image.file.read(m.host, buf);
    } else {
      await this.readUnmapped({ gc, inOff: 0, pos: 0, len: this.cs }, m, buf);
    }
    return buf;
  }

  private async readUnmapped(p: Piece, m: L2Mapping, dest: Uint8Array): Promise<void> {
    switch (m.kind) {
      case 'zero':
        dest.fill(0);
        return;
      case 'unallocated':
        await this.readBacking(p.gc * this.cs + p.inOff, dest);
        return;
      case 'compressed': {
        const data = await this.inflate(p.gc, m.host, m.compressedBytes);
        dest.set(data.subarray(p.inOff, p.inOff + p.len));
        return;
      }
      case 'invalid':
        throw this.invalid(p.gc, m.why);
      case 'normal':
        throw storageError('EIO', 'qcow2: internal: normal cluster in readUnmapped');
    }
  }

  /** Backing data for guest bytes [offset, offset+dest.length); zeroes past the backing's end. */
  private async readBacking(offset: number, dest: Uint8Array): Promise<void> {
    dest.fill(0);
    if (this.backing === undefined) return;
    const backingBytes = this.backing.sectorCount * SECTOR_SIZE;
    const len = Math.max(0, Math.min(dest.byteLength, backingBytes - offset));
    const whole = Math.floor(len / SECTOR_SIZE) * SECTOR_SIZE;
    if (whole > 0) await this.backing.read(offset / SECTOR_SIZE, dest.subarray(0, whole));
  }

  private async inflate(gc: number, host: number, bytes: number): Promise<Uint8Array> {
    if (this.lastInflated?.host === host) return this.lastInflated.data;
    // The descriptor's size field can claim far more than one cluster; no real one does.
    if (bytes > 2 * this.cs + SECTOR_SIZE || host + bytes > this.image.end + SECTOR_SIZE) {
      throw this.invalid(gc, `compressed cluster of ${bytes} bytes at ${host}`);
    }
    const raw = new Uint8Array(bytes);
    await this.image.file.read(host, raw);
    let out: Uint8Array;
    try {
      // "decompression stops when it has produced a cluster of data": trailing bytes may belong to the next one.
      out = await inflateRawAsync(raw, { maxOutputLength: this.cs, finishFlush: 2 /* Z_SYNC_FLUSH */ });
    } catch (err) {
      throw storageError('EIO', `qcow2: guest cluster ${gc}: compressed data does not inflate`, { host }, err);
    }
    if (out.byteLength !== this.cs) throw this.invalid(gc, `compressed cluster inflates to ${out.byteLength} bytes`);
    this.lastInflated = { host, data: out };
    return out;
  }

  private invalid(gc: number, why: string): Error {
    return storageError('EIO', `qcow2: guest cluster ${gc}: ${why}`, { gc });
  }

  private pieces(offset: number, length: number): Piece[] {
    const out: Piece[] = [];
    for (let pos = 0; pos < length; ) {
      const g = offset + pos;
      const gc = Math.floor(g / this.cs);
      const inOff = g - gc * this.cs;
      const len = Math.min(this.cs - inOff, length - pos);
      out.push({ gc, inOff, pos, len });
      pos += len;
    }
    return out;
  }
}
