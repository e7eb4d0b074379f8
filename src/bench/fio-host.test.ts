/**
 * `builtin:fio` as a user runs it: a PV guest created by the toolstack (Host: hypervisor,
 * xenstored with the guest's store ring, blkback on a raw image), the guest kernel probing
 * xvda and fio using the kernel's BlkFront. Its JSON line reaches the console; a block
 * corrupted in the image between a writing guest and a reading guest makes the second crash
 * with a message naming the offset.
 *
 * (Here rather than beside fio: only bench and cli may import the toolstack.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DomainInfo } from '../hv/sim/hypervisor.js';
import { Host } from '../toolstack/index.js';
import { runFioGuest } from '../toolstack/domain/test-support.js';

interface Outcome {
  readonly info: DomainInfo;
  readonly console: string[];
  readonly fio: Record<string, unknown> | undefined;
}

/** `builtin:fio` with `extra` in a preserved guest (toolstack test support), then destroyed. */
async function runGuest(host: Host, dir: string, name: string, extra: string): Promise<Outcome> {
  const { info, console, fio } = await runFioGuest(host, dir, name, extra);
  await host.destroy(name);
  return { info, console, fio };
}

test('builtin:fio in a toolstack-created guest: JSON on the console, poweroff; corruption between guests crashes the reader', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-fio-host-'));
  const host = await Host.start({ runDir: join(dir, 'run'), storeSocket: false, maxMachineBytes: 256 * 2 ** 20 });
  try {
    const image = join(dir, 'disk.img');
    await writeFile(image, '');
    await truncate(image, 4 << 20);

    const w = await runGuest(host, dir, 'writer', 'rw=write bs=4k iodepth=8 size=1M verify=crc32c');
    assert.equal(w.info.shutdownReason, 'poweroff', JSON.stringify(w));
    const wr = w.fio;
    assert.ok(wr !== undefined, w.console.join('\n'));
    assert.deepEqual([wr['rw'], wr['verify'], wr['errors'], (wr['write'] as Record<string, number>)['ios']], ['write', 'ok', 0, 256]);

    const fh = await open(image, 'r+');
    try {
      await fh.write(Buffer.from([0xee]), 0, 1, 7 * 4096 + 100); // block 7 rots in dom0
    } finally {
      await fh.close();
    }
    const r = await runGuest(host, dir, 'reader', 'rw=read bs=4k iodepth=4 size=1M verify=crc32c');
    assert.equal(r.info.shutdownReason, 'crash', JSON.stringify(r));
    assert.match(r.info.message ?? '', /^fio: verify failed at offset 28672 \(block 7\): crc32c/);
    assert.equal(r.fio?.['verify'], 'failed');
  } finally {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
});
