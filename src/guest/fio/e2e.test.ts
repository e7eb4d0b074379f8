/**
 * fio end to end: a guest worker (its own thread, the guest domain's platform) runs fio on
 * xvda through BlkFront, against BlkBack in dom0 over a memory disk; the JSON line reaches the
 * console; a block corrupted on the backing store between the write and the read shuts the
 * domain down with reason crash and a message naming the offset. And `builtin:fio` in the
 * real guest kernel refuses bad arguments with a crash message naming them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SHUTDOWN_crash } from '../../abi/xen.js';
import { MemoryStorage } from '../../devices/blk/storage/memory.js';
import { withBlkEnv } from '../../devices/blk/test-support.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import { prepareDomainHome } from '../../xenbus/toolstack.js';
import { GUEST_KERNEL_URL } from '../entry.js';
import { FioGuest } from './guest-host.js';
import type { FioResult } from './job.js';

/** Read through a call: the field changes when messages arrive, which narrowing cannot know. */
const shutdownOf = (g: FioGuest): FioGuest['shutdownInfo'] => g.shutdownInfo;

function jsonLines(console: readonly string[]): FioResult[] {
  return console.filter((l) => l.startsWith('{"job":"fio"')).map((l) => JSON.parse(l) as FioResult);
}

test('fio in a guest worker: write + verify, then random reads verify; a corrupted block crashes the domain naming its offset', () =>
  withBlkEnv(async (env) => {
    const storage = new MemoryStorage(8192); // 4 MiB
    await prepareDomainHome(env.xs0, env.guestId); // as libxl does: the guest may list its device/ dir
    await env.addVbd();
    await env.newBack(storage).start();
    const g = await FioGuest.start({ platform: env.hv.platformHandle(env.guestId), daemon: env.store.daemon });
    try {
      assert.equal(g.sectors, 8192);
      const w = await g.run('rw=write bs=16k iodepth=4 size=1M verify=crc32c');
      assert.equal(w.result.write.ios, 64);
      assert.equal(w.result.verify, 'ok');
      assert.equal(w.result.verified, 64);
      assert.equal(w.result.errors, 0);
      const r = await g.run('rw=randread bs=16k iodepth=8 size=1M verify=crc32c seed=5');
      assert.equal(r.result.read.ios, 64);
      assert.equal(r.result.read.bytes, 2 ** 20);
      assert.equal(r.result.verify, 'ok');
      assert.ok(r.result.read.iops > 0 && r.result.read.lat_us.p99 >= r.result.read.lat_us.p50);
      // The same results, as the JSON lines fio printed on the console.
      assert.deepEqual(jsonLines(g.console), [w.result, r.result]);
      assert.equal(shutdownOf(g), undefined);

      storage.bytes[3 * 16384 + 777]! ^= 0x10; // dom0 corrupts block 3 behind the guest's back
      const bad = await g.run('rw=read bs=16k iodepth=2 size=1M verify=crc32c');
      assert.equal(bad.result.verify, 'failed');
      assert.equal(env.hv.info(env.guestId)?.shutdownCode, SHUTDOWN_crash);
      assert.equal(shutdownOf(g)?.reason, 'crash');
      assert.match(shutdownOf(g)?.message ?? '', /^fio: verify failed at offset 49152 \(block 3\): crc32c/);
      assert.equal(jsonLines(g.console).at(-1)?.verify, 'failed');
    } finally {
      assert.equal(await g.close(), 0, 'every grant reclaimed');
    }
  }, 4096));

test('builtin:fio in the guest kernel: a bad argument crashes the domain with a message naming it', () =>
  withHypervisor(
    async (hv) => {
      const d = hv.createDomain({ kernel: 'builtin:fio', extra: 'rw=randread bs=3000', startInfo: false });
      const info = await hv.waitForShutdown(d);
      assert.equal(info.shutdownReason, 'crash');
      assert.match(info.message ?? '', /^fio: bs=3000 must be a multiple of 512/);
      await hv.destroy(d);
    },
    { vcpuEntry: GUEST_KERNEL_URL },
  ));
