/**
 * Machine memory asks for transparent huge pages (huge-pages.ts): the advice reaches the
 * kernel (the mapping's VmFlags in /proc/self/smaps gain `hg`), or the hypervisor says why not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { withHypervisor } from './testing.js';

/** Mappings of this process the kernel marks MADV_HUGEPAGE. */
function advisedMappings(): number {
  return readFileSync('/proc/self/smaps', 'utf8').split('\n').filter((l) => l.startsWith('VmFlags:') && /\bhg\b/.test(l)).length;
}

const thp = process.platform === 'linux' && existsSync('/sys/kernel/mm/transparent_hugepage/enabled');

test('machine memory is advised MADV_HUGEPAGE before dom0 touches it', { skip: thp ? false : 'no transparent huge pages in this kernel' }, async () => {
  const before = advisedMappings();
  await withHypervisor(async (hv) => {
    assert.equal(hv.hugePagesRefused, undefined);
    assert.ok(advisedMappings() > before, 'a mapping marked hg appeared');
    // Domains come and go on it as before.
    const d = hv.createDomain({ memoryPages: 1024 });
    await hv.destroy(d);
  });
});

test('XENPV_THP=0 leaves machine memory as it is, and says so', async () => {
  const saved = process.env.XENPV_THP;
  process.env.XENPV_THP = '0';
  try {
    const before = thp ? advisedMappings() : 0;
    await withHypervisor(async (hv) => {
      assert.equal(hv.hugePagesRefused, 'XENPV_THP=0');
      if (thp) assert.equal(advisedMappings(), before);
    });
  } finally {
    if (saved === undefined) delete process.env.XENPV_THP;
    else process.env.XENPV_THP = saved;
  }
});
