/**
 * dom0's store ring and the hypercall interface without Xen: the xenfs fallback
 * (/proc/xen/xsd_kva + xsd_port) over ordinary files, and the refusals where neither exists.
 * (The real devices are exercised by the real-Xen harness, check 4.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNative } from './ffi.js';
import { XenHypercalls } from './hypercall.js';
import { openLocalStoreRing } from './local-store.js';

async function withDirs(fn: (dev: string, proc: string) => Promise<void> | void): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'xenpv-local-store-'));
  try {
    await fn(join(root, 'dev'), root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('xsd_kva/xsd_port: the page is mapped shared, the port parsed; bad ports and missing files are refused', async (t) => {
  const n = await loadNative();
  if (!n.ok) return t.skip(n.reason);
  await withDirs((dev, proc) => {
    assert.throws(() => openLocalStoreRing(n.native, dev, proc), /neither .*xenbus_backend nor .*xsd_kva/);
    writeFileSync(join(proc, 'xsd_kva'), new Uint8Array(4096));
    for (const bad of ['', 'x1', '0', '-3', '99999999999']) {
      writeFileSync(join(proc, 'xsd_port'), `${bad}\n`);
      assert.throws(() => openLocalStoreRing(n.native, dev, proc), (e: Error & { code?: string }) => e.code === 'ENOENT', `port '${bad}'`);
    }
    writeFileSync(join(proc, 'xsd_port'), '13\n');
    const ring = openLocalStoreRing(n.native, dev, proc);
    assert.equal(ring.port, 13);
    assert.equal(ring.page.length, 4096);
    ring.page.set([1, 2, 3], 1024);
    ring.dispose();
    ring.dispose();
    // MAP_SHARED: what was written through the mapping is in the file.
    assert.deepEqual([...readFileSync(join(proc, 'xsd_kva')).subarray(1024, 1027)], [1, 2, 3]);
  });
});

test('hypercalls: no privcmd, no hypercall interface (an ENOENT, not a crash)', async (t) => {
  const n = await loadNative();
  if (!n.ok) return t.skip(n.reason);
  await withDirs((dev) => {
    assert.throws(() => XenHypercalls.open(n.native, dev), (e: Error & { code?: string }) => e.code === 'ENOENT');
  });
});
