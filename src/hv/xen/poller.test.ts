/**
 * FdReader on real file descriptors: a FIFO whose writer closes (end of file) and a FIFO
 * opened read-write (a read that blocks until someone writes, like a quiet device).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, open, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../../base/index.js';
import { FdReader } from './poller.js';

const noFifo = spawnSync('mkfifo', ['--version']).status !== 0 && 'no mkfifo';

async function withFifo(body: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-poller-'));
  try {
    const path = join(dir, 'f');
    execFileSync('mkfifo', [path]);
    await body(path);
  } finally {
    rmSync(dir, { recursive: true });
  }
}

/** A blocking read end and a write end of one FIFO: open(2) of either side waits for the other, so the read side opens on the pool. */
async function fifoPair(path: string): Promise<{ rd: number; wr: number }> {
  const rd = new Promise<number>((resolve, reject) => open(path, constants.O_RDONLY, (err, fd) => (err === null ? resolve(fd) : reject(err))));
  const wr = openSync(path, constants.O_WRONLY);
  return { rd: await rd, wr };
}

function collect(fd: number): { reader: FdReader; got: string[]; ends: () => number } {
  const got: string[] = [];
  let ends = 0;
  const reader = new FdReader(fd, 256, (b) => got.push(Buffer.from(b).toString()), (err) => assert.fail(err), () => ends++);
  return { reader, got, ends: () => ends };
}

test('the fd reader ends once at end of file instead of reading on', { skip: noFifo }, () =>
  withFifo(async (path) => {
    const { rd, wr } = await fifoPair(path);
    try {
      const { reader, got, ends } = collect(rd);
      reader.start();
      writeSync(wr, 'last');
      closeSync(wr); // the writer goes away: read(2) returns the bytes, then 0
      for (let i = 0; i < 100 && ends() === 0; i++) await sleep(5);
      assert.deepEqual(got, ['last']);
      assert.equal(ends(), 1);
      assert.equal(reader.reading, false);
      reader.start(); // the end is final: no read is issued, so no second report
      await sleep(30);
      assert.equal(ends(), 1);
      assert.equal(reader.reading, false);
      await reader.stop(() => assert.fail('nothing to wake'));
    } finally {
      closeSync(rd);
    }
  }));

test('start() after stop() takes back the blocked read: the stop resolves at once and the read delivers', { skip: noFifo }, () =>
  withFifo(async (path) => {
    const fd = openSync(path, constants.O_RDWR); // blocking reads, and open never waits for a writer
    try {
      const { reader, got } = collect(fd);
      reader.start();
      await sleep(20); // the read is now blocked in the pool
      let wakes = 0;
      const t0 = Date.now();
      const first = reader.stop(() => wakes++); // a wake that wakes nothing
      const second = reader.stop(() => wakes++);
      reader.start();
      await Promise.all([first, second]);
      assert.ok(Date.now() - t0 < 500, `stop waited ${Date.now() - t0} ms for a read the restart took over`);
      assert.equal(wakes, 1, 'one wake per wait, however many stop() calls share it');
      writeSync(fd, 'after');
      for (let i = 0; i < 100 && got.length === 0; i++) await sleep(5);
      assert.deepEqual(got, ['after']);
      await reader.stop(() => writeSync(fd, 'x'));
      assert.deepEqual(got, ['after'], 'bytes read after stop are not delivered');
    } finally {
      closeSync(fd);
    }
  }));
