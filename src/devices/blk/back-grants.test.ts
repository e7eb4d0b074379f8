/**
 * blkback's persistent grant cache (back-grants.ts SegmentMapper): refs below and above the
 * directly indexed range, hits on reuse, eviction order, and release.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DomId, Frame, GrantRef } from '../../base/index.js';
import { SimPlatform } from '../../hv/sim/platform.js';
import { withHypervisor } from '../../hv/sim/testing.js';
import { SegmentMapper } from './back-grants.js';

test('persistent cache: refs past the direct table (a guest with a large grant table) are cached too; reuse hits; LRU eviction', () =>
  withHypervisor((hv) => {
    const domid = hv.createDomain({ memoryPages: 64, startInfo: false, maxGrantFrames: 128 });
    const p = SimPlatform.attach(hv.platformHandle(domid));
    const frames = p.memory.allocPages(3) as Frame[];
    // Use up refs so that some handed out lie above 32768 (the direct table's end).
    const filler: GrantRef[] = [];
    for (let i = 0; i < 33000; i++) filler.push(p.grants.grantAccess(0 as DomId, frames[2]!, false));
    const low = filler[5]!;
    const high = p.grants.grantAccess(0 as DomId, frames[0]!, false);
    const high2 = p.grants.grantAccess(0 as DomId, frames[1]!, false);
    assert.ok(high > 32768 && high2 > 32768, `refs ${high}, ${high2}`);
    p.memory.page(frames[0]!).fill(7);
    const mapper = new SegmentMapper(hv.dom0.grants, domid as DomId, true, 2);
    const a = mapper.acquire([high, low], true);
    assert.equal(a.pages[0]![0], 7, 'the page behind the high ref');
    assert.equal(mapper.persistentCount, 2);
    a.release();
    const b = mapper.acquire([low, high], false);
    assert.equal(mapper.stats.persistentHits, 2);
    b.release();
    // Full (2 entries): the least recently used idle one (low) makes room for high2.
    const c = mapper.acquire([high2], true);
    assert.equal(mapper.stats.evictions, 1);
    assert.equal(mapper.persistentCount, 2);
    c.release();
    const d = mapper.acquire([high], true);
    assert.equal(mapper.stats.persistentHits, 3, 'high stayed cached');
    d.release();
    mapper.dispose();
    assert.equal(mapper.persistentCount, 0);
    for (const r of [...filler, high, high2]) assert.equal(p.grants.endAccess(r), true, `ref ${r} unmapped and ended`);
    p.dispose();
  }));

test('persistent holds say where their pages lie (one buffer, each offset) only when every page is a cached one', () =>
  withHypervisor((hv) => {
    const domid = hv.createDomain({ memoryPages: 64, startInfo: false });
    const p = SimPlatform.attach(hv.platformHandle(domid));
    const frames = p.memory.allocPages(3) as Frame[];
    const refs = frames.map((f) => p.grants.grantAccess(0 as DomId, f, false));
    const readOnly = p.grants.grantAccess(0 as DomId, frames[2]!, true);
    const mapper = new SegmentMapper(hv.dom0.grants, domid as DomId, true, 16);
    const a = mapper.acquire(refs, true);
    assert.equal(a.buffer, hv.table.machine.sab);
    assert.deepEqual(Array.from(a.offsets!), a.pages.map((pg) => pg.byteOffset));
    assert.deepEqual(a.pages.map((pg) => pg.length), [4096, 4096, 4096]);
    a.release();
    // A read-only grant cannot be kept writable: mapped for the request only, so no offsets.
    const b = mapper.acquire([refs[0]!, readOnly], false);
    assert.equal(b.buffer, undefined);
    b.release();
    // A reused hold that was mixed says where its pages lie again once they are all cached.
    const c = mapper.acquireRefs(refs, 3, true, b);
    assert.equal(c.buffer, hv.table.machine.sab);
    c.release();
    mapper.dispose();
    for (const r of [...refs, readOnly]) assert.equal(p.grants.endAccess(r), true);
    p.dispose();
  }));
