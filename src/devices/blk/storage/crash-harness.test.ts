import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { type CrashOp, type CrashScenario, type CrashTarget, runCrashScenario } from './crash-harness.js';
import type { ImageFile } from './image-file.js';
import { checkQcow2 } from './qcow2/check.js';
import { Qcow2Storage } from './qcow2/qcow2.js';
import { RawStorage } from './raw.js';
import { noQemuImg, qemuImg, tempDir } from './test-util.js';
import type { BlockStorage } from './types.js';

const SECTORS = 2048; // 1 MiB disks: small and fast, large enough for several L2 tables at 4 KiB clusters

function arbScenario(sectors: number, maxCut: number): fc.Arbitrary<CrashScenario> {
  const unaligned = fc.integer({ min: 1, max: 40 }).chain((n) =>
    fc.record({ sector: fc.integer({ min: 0, max: sectors - n }), sectors: fc.constant(n) }),
  );
  // Whole 4 KiB clusters, so discards free clusters that later writes reuse.
  const aligned = fc.integer({ min: 1, max: 4 }).chain((n) =>
    fc.record({ sector: fc.integer({ min: 0, max: sectors / 8 - n }).map((k) => k * 8), sectors: fc.constant(n * 8) }),
  );
  const span = fc.oneof(unaligned, aligned);
  const op: fc.Arbitrary<CrashOp> = fc.oneof(
    { weight: 5, arbitrary: span.map((s) => ({ kind: 'write' as const, ...s })) },
    { weight: 2, arbitrary: fc.constant({ kind: 'flush' as const }) },
    { weight: 2, arbitrary: span.map((s) => ({ kind: 'read' as const, ...s })) },
    { weight: 2, arbitrary: span.map((s) => ({ kind: 'discard' as const, ...s })) },
  );
  return fc.record({
    ops: fc.array(op, { minLength: 1, maxLength: 30 }),
    cutAt: fc.integer({ min: 0, max: maxCut }),
    seed: fc.integer({ min: 1, max: 0x7fffffff }),
  });
}

async function holds(target: CrashTarget, runs: number, maxCut: number): Promise<void> {
  let fired = 0;
  await fc.assert(
    fc.asyncProperty(arbScenario(target.sectors, maxCut), async (scenario) => {
      const report = await runCrashScenario(target, scenario);
      if (report.cutFired) fired++;
      assert.deepEqual(report.failures, [], `${target.name}: ${report.failures.slice(0, 5).join('; ')}`);
    }),
    { numRuns: runs, seed: 4242 },
  );
  // The property is only meaningful if cuts land inside workloads, not only after them.
  assert.ok(fired > runs / 4, `${target.name}: only ${fired}/${runs} cuts fired mid-workload`);
}

const rawTarget = (cache: 'writeback' | 'writethrough'): CrashTarget => ({
  name: `raw/${cache}`,
  sectors: SECTORS,
  initialMedium: async () => new Uint8Array(SECTORS * 512),
  open: (file: ImageFile) => RawStorage.open(file, { cache }),
});

describe('crash harness: raw', () => {
  test('writeback: every write acknowledged before a completed flush survives', async () => {
    await holds(rawTarget('writeback'), 80, 12);
  });
  test('writethrough (no flush advertised): every acknowledged write survives', async () => {
    await holds(rawTarget('writethrough'), 80, 12);
  });
});

describe('crash harness: the checker fails broken stores', () => {
  /** A store that says "no cache" but never flushes: acknowledged writes die in the cache. */
  const lying: CrashTarget = {
    ...rawTarget('writeback'),
    name: 'raw/lies-about-cache',
    open: async (file) => {
      const store = await rawTarget('writeback').open(file);
      return Object.assign(Object.create(store) as BlockStorage, {
        capabilities: { ...store.capabilities, flush: false },
      });
    },
  };
  /** FreeBSD's `disable_flush` anti-pattern: FLUSH answered without flushing. */
  const noopFlush: CrashTarget = {
    ...rawTarget('writeback'),
    name: 'raw/no-op-flush',
    open: async (file) => {
      const store = await rawTarget('writeback').open(file);
      return Object.assign(Object.create(store) as BlockStorage, { flush: async () => undefined });
    },
  };
  for (const target of [lying, noopFlush]) {
    test(`${target.name} is caught`, async () => {
      const scenario: CrashScenario = {
        ops: [{ kind: 'write', sector: 3, sectors: 8 }, { kind: 'flush' }, { kind: 'write', sector: 40, sectors: 8 }],
        cutAt: 1000,
        seed: 7,
      };
      // With the cut after the workload and a seed that drops writes, some run must fail.
      let caught = false;
      for (let seed = 1; seed <= 20 && !caught; seed++) {
        const report = await runCrashScenario(target, { ...scenario, seed });
        caught = report.failures.length > 0;
      }
      assert.ok(caught, `${target.name} was not caught`);
    });
  }
});

describe('crash harness: qcow2', { skip: noQemuImg }, () => {
  const dir = tempDir('crash');
  const templates = new Map<string, Uint8Array>();
  before(() => {
    for (const [name, opts] of [
      ['v3', 'cluster_size=4096'],
      ['v2', 'cluster_size=4096,compat=0.10'],
      ['v3-small-refcount', 'cluster_size=512,refcount_bits=2'],
    ] as const) {
      const path = dir.file(`${name}.qcow2`);
      const r = qemuImg('create', '-q', '-f', 'qcow2', '-o', opts, path, String(SECTORS * 512));
      assert.equal(r.status, 0, r.stderr);
      templates.set(name, new Uint8Array(readFileSync(path)));
    }
  });
  after(() => dir.remove());

  const qcowTarget = (template: string, cache: 'writeback' | 'writethrough'): CrashTarget => ({
    name: `qcow2-${template}/${cache}`,
    sectors: SECTORS,
    initialMedium: async () => templates.get(template) as Uint8Array,
    open: (file) => Qcow2Storage.open(file, { cache }),
    checkMedium: async (medium) => (await checkQcow2(medium)).corruptions,
  });

  for (const [template, cache, runs] of [
    ['v3', 'writeback', 50],
    ['v3', 'writethrough', 30],
    ['v2', 'writeback', 30],
    ['v3-small-refcount', 'writeback', 30],
  ] as const) {
    test(`${template}/${cache}: flushed data survives, metadata stays consistent`, async () => {
      await holds(qcowTarget(template, cache), runs, 60);
    });
  }

  test('after a cut, qemu-img check finds no corruption (leaks allowed: exit 3)', async () => {
    const target: CrashTarget = {
      ...qcowTarget('v3', 'writeback'),
      checkMedium: async (medium) => {
        const path = dir.file('after-cut.qcow2');
        const bytes = new Uint8Array(await medium.size());
        await medium.read(0, bytes);
        writeFileSync(path, bytes);
        const r = qemuImg('check', path);
        return r.status === 0 || r.status === 3 ? [] : [`qemu-img check exit ${r.status}: ${r.stdout}${r.stderr}`];
      },
    };
    await holds(target, 16, 20);
  });

  test('regression: a freed cluster is never unreferenced-on-disk while its count is already zero', async () => {
    // Write, flush, discard the same cluster, flush, reuse: a cut at every device step.
    const ops: CrashOp[] = [
      { kind: 'write', sector: 0, sectors: 8 },
      { kind: 'flush' },
      { kind: 'discard', sector: 0, sectors: 8 },
      { kind: 'flush' },
      { kind: 'write', sector: 100, sectors: 8 },
      { kind: 'flush' },
    ];
    const target = qcowTarget('v3', 'writeback');
    for (let cutAt = 0; cutAt < 14; cutAt++) {
      for (let seed = 1; seed <= 4; seed++) {
        const report = await runCrashScenario(target, { ops, cutAt, seed });
        assert.deepEqual(report.failures, [], `cut ${cutAt} seed ${seed}`);
      }
    }
  });
});
