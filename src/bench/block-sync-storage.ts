/**
 * A diagnostic storage for `xenpv bench block` only: the raw image read and written with
 * synchronous pread/pwrite (readSync/writeSync) on blkback's own thread, through the page
 * cache — the native baseline's I/O, behind the PV path.
 *
 * Not for real use: it blocks the backend's event loop for the length of each request, which
 * issue 4 forbids for storage ("Storage runs off the backend's event loop where it would block
 * it"). Its only purpose is to split the PV path's cost: PV over this storage against native
 * pread/pwrite is what the transport (ring, grants, event channels, two threads) costs by
 * itself; PV over the real storage layer adds the cost of async file I/O on libuv's pool.
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import {
  type BlockStorage,
  type StorageCapabilities,
  SECTOR_SIZE,
  checkRange,
  counted,
  newCounters,
  storageError,
} from '../devices/blk/storage/types.js';

export class SyncFileStorage implements BlockStorage {
  readonly logicalBlockSize = SECTOR_SIZE;
  readonly physicalBlockSize = 4096;
  readonly readOnly = false;
  readonly counters = newCounters();
  readonly capabilities: StorageCapabilities = {
    flush: true,
    resize: false,
    discard: { supported: false, granularity: 4096, alignment: 0, discardZeroes: false, secureDiscard: false },
  };
  readonly description: string;
  readonly sectorCount: number;
  private fd: number | undefined;

  constructor(path: string) {
    this.fd = openSync(path, 'r+');
    this.sectorCount = Math.floor(fstatSync(this.fd).size / SECTOR_SIZE);
    this.description = `sync-raw:${path}`;
  }

  private file(): number {
    if (this.fd === undefined) throw storageError('EIO', `${this.description} is closed`);
    return this.fd;
  }

  read(sectorOffset: number, dest: Uint8Array): Promise<void> {
    return counted(this.counters.read, dest.byteLength, async () => {
      checkRange('read', sectorOffset, dest.byteLength, this.sectorCount);
      const n = readSync(this.file(), dest, 0, dest.byteLength, sectorOffset * SECTOR_SIZE);
      if (n !== dest.byteLength) dest.fill(0, n);
    });
  }

  write(sectorOffset: number, src: Uint8Array): Promise<void> {
    return counted(this.counters.write, src.byteLength, async () => {
      checkRange('write', sectorOffset, src.byteLength, this.sectorCount);
      for (let done = 0; done < src.byteLength; ) done += writeSync(this.file(), src, done, src.byteLength - done, sectorOffset * SECTOR_SIZE + done);
    });
  }

  flush(): Promise<void> {
    return counted(this.counters.flush, 0, async () => fdatasyncSync(this.file()));
  }

  discard(): Promise<void> {
    return Promise.reject(storageError('EOPNOTSUPP', `${this.description}: no discard`));
  }

  async close(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
