/**
 * The backend killed mid-I/O and restarted (issue 4 "Nothing lost"), in the layout xenpv runs:
 * a guest's builtin:fio writes a raw image through its kernel's blkfront while the disk's
 * dom0 thread and its ring thread are terminated (a crashed backend: nothing released by
 * them, nothing written to the store; the host reclaims their mappings and ports) and the
 * toolstack starts a new disk thread on the same device and image (ThreadedDiskBackend's restart). The frontend reconnects, replays what
 * was not acknowledged, and fio's verify pass then reads back every block it wrote: a lost or
 * misplaced acknowledged write fails it (crc32c per block). On a raw image and on a fresh
 * qcow2 one (every write allocates: a backend that kept the new clusters' metadata in memory
 * until a flush lost acknowledged writes with its process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sleep } from '../../base/index.js';
import { ThreadedDiskBackend } from './disk-thread.js';
import { runFioGuest, withDiskHost } from './test-support.js';
import { noQemuImg, qemuImg } from '../../devices/blk/storage/test-util.js';

const XVDA = 51712;

for (const format of ['raw', 'qcow2'] as const) {
  const image = format === 'raw' ? 'disk.img' : 'disk.qcow2';
  test(`a disk thread killed mid-run and restarted by the toolstack on the same ${format} image: the guest reconnects, replays, and fio verifies every block`, { skip: format === 'qcow2' && noQemuImg }, () =>
    withDiskHost(
      64 << 20,
      async (host, dir, log) => {
        if (format === 'qcow2') {
          const r = qemuImg('create', '-q', '-f', 'qcow2', join(dir, image), '64M');
          assert.equal(r.status, 0, r.stderr);
        }
        let back: ThreadedDiskBackend | undefined;
        let writesBefore = 0;
        let crash: Promise<void> | undefined;
        const g = await runFioGuest(host, dir, 'crash', 'rw=randwrite bs=4k iodepth=32 size=64M verify=crc32c', (d) => {
          const b = d.disks.get(XVDA)!.back as ThreadedDiskBackend;
          back = b;
          crash = (async () => {
            // Mid-run: some thousands of writes done (the thread reports its figures every 50 ms).
            while (b.info().counters.write.requests < 2000) await sleep(1);
            writesBefore = b.info().counters.write.requests;
            // The toolstack starts a new thread on the same image (ThreadedDiskBackend's restart).
            await b.kill();
          })();
        }, `${image},${format},xvda,rw`);
        await crash;
        assert.equal(g.info.shutdownReason, 'poweroff', `${g.info.message ?? ''}\n${g.console.join('\n')}`);
        assert.ok(g.fio !== undefined, g.console.join('\n'));
        assert.deepEqual([g.fio['verify'], g.fio['errors']], ['ok', 0], JSON.stringify(g.fio));
        assert.ok(back !== undefined);
        assert.ok(log.some((l) => l.startsWith('disk backend thread died: reclaimed')), 'the dead thread was reclaimed');
        assert.equal(back.restarts, 1, log.join(' | '));
        // The run went on through the new thread: the writes left, and fio's verify pass.
        const after = back.info().counters;
        assert.ok(writesBefore < 16384, `killed mid-run (${writesBefore} writes before)`);
        assert.ok(after.write.requests > 0 && after.read.requests > 0, `the new thread served ${after.write.requests} writes and ${after.read.requests} reads`);
        await host.destroy('crash');
      },
      { XENPV_BLK_RING_THREADS: '1' },
    ));
}
