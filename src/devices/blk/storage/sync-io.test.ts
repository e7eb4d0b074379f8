/**
 * The synchronous data path of raw files (`syncIo`, sync-file.ts): scatter/gather over several
 * buffers, SharedArrayBuffer views (a backend's mapped grants), the same checks and counters
 * as the async path, and a read past the end of a shorter file.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { XenpvError } from '../../../base/index.js';
import { openStorage } from './open.js';
import { tempDir } from './test-util.js';

const dir = tempDir('sync-io');
after(() => dir.remove());

function filled(bytes: number, seed: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

const throwsCode = (fn: () => void, code: string): void => assert.throws(fn, (e: unknown) => e instanceof XenpvError && e.code === code);

test('raw sync: writev gathers, readv scatters into SharedArrayBuffer pages, counters count', async () => {
  const path = dir.file('a.img');
  writeFileSync(path, new Uint8Array(64 * 1024));
  const s = await openStorage({ format: 'raw', target: path, sync: true });
  try {
    const io = s.syncIo!;
    assert.ok(io !== undefined, 'a sync-opened raw file offers syncIo');
    const data = filled(12288, 5);
    io.writev(8, [data.subarray(0, 4096), data.subarray(4096, 4608), data.subarray(4608)]);
    const sab = new SharedArrayBuffer(3 * 4096);
    const pages = [new Uint8Array(sab, 8192, 4096), new Uint8Array(sab, 0, 4096), new Uint8Array(sab, 4096, 4096)];
    io.readv(8, pages);
    assert.deepEqual(Uint8Array.from([...pages[0]!, ...pages[1]!, ...pages[2]!]), data);
    assert.deepEqual(await (async () => { const b = new Uint8Array(12288); await s.read(8, b); return b; })(), data, 'the async path sees the same bytes');
    assert.equal(s.counters.write.requests, 1);
    assert.equal(s.counters.write.bytes, 12288);
    assert.equal(s.counters.read.requests, 2);
  } finally {
    await s.close();
  }
});

test('raw sync: out of range, too many buffers and read-only are refused before any byte moves', async () => {
  const path = dir.file('b.img');
  writeFileSync(path, new Uint8Array(8192));
  const s = await openStorage({ format: 'raw', target: path, sync: true });
  const ro = await openStorage({ format: 'raw', target: path, sync: true, readOnly: true });
  try {
    const page = new Uint8Array(4096).fill(9);
    throwsCode(() => s.syncIo!.writev(12, [page]), 'ERANGE');
    throwsCode(() => s.syncIo!.readv(-1, [page]), 'ERANGE');
    throwsCode(() => s.syncIo!.readv(0, Array.from({ length: 1025 }, () => new Uint8Array(0))), 'ERANGE');
    throwsCode(() => ro.syncIo!.writev(0, [page]), 'EROFS');
    const back = new Uint8Array(8192);
    await s.read(0, back);
    assert.ok(back.every((b) => b === 0), 'nothing was written');
    assert.equal(s.counters.write.errors, 1);
    assert.equal(s.counters.read.errors, 2);
  } finally {
    await s.close();
    await ro.close();
  }
});

test('raw sync: what lies past the end of the file reads as zero', async () => {
  const path = dir.file('c.img');
  writeFileSync(path, filled(8192, 1));
  const s = await openStorage({ format: 'raw', target: path, sync: true });
  try {
    // The file shrinks underneath (another writer): the sectors still exist for the disk.
    truncateSync(path, 6144);
    const a = new Uint8Array(4096).fill(0xee);
    const b = new Uint8Array(4096).fill(0xee);
    s.syncIo!.readv(0, [a, b]);
    assert.deepEqual(a, filled(8192, 1).subarray(0, 4096));
    assert.deepEqual(b.subarray(0, 2048), filled(8192, 1).subarray(4096, 6144));
    assert.ok(b.subarray(2048).every((x) => x === 0), 'past the end: zeroes');
  } finally {
    await s.close();
  }
});

/** The open flags (octal in /proc/self/fdinfo) of every descriptor this process holds on `path`. */
function openFlags(path: string): number[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== path) return [];
      const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      return m === null ? [] : [parseInt(m[1]!, 8)];
    } catch {
      return []; // a descriptor closed while we looked
    }
  });
}

test('raw sync: the data descriptor is opened O_NOATIME (reads leave the image atime alone)', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
  const path = dir.file('noatime.img');
  writeFileSync(path, new Uint8Array(8192));
  assert.deepEqual(openFlags(path), [], 'nothing holds the new image yet');
  const s = await openStorage({ format: 'raw', target: path, sync: true });
  try {
    const flags = openFlags(path);
    const noAtime = 0o1000000; // O_NOATIME on Linux
    assert.ok(flags.some((f) => (f & noAtime) !== 0), `one of ${flags.map((f) => f.toString(8)).join(', ')} has O_NOATIME`);
  } finally {
    await s.close();
  }
});
