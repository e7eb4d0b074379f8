/**
 * Nothing lost across backend crashes, randomized (issue 4 "Nothing lost": "the backend killed
 * mid-I/O and restarted: the frontend reconnects and replays what was not acknowledged; no
 * acknowledged write is lost and nothing hangs"; reliability.md R20).
 *
 * Each case runs a workload of writers, each owning a region of the disk and issuing writes
 * (one sector to a region), read-backs, flushes and discards one after another, while blkback
 * is killed and a new one started 1-4 times at random moments: during I/O, during the
 * frontend's reconnect (a kill right after a start), while nothing is in flight. Every
 * generation of the backend offers its own features (queues, ring order, indirect segments,
 * persistent grants, map or copy) and may grow the disk online half-way through its life (the
 * frontend must end with the last size), so replayed requests meet a backend unlike the one
 * they were made for; the frontend uses either ring layout (x86_64, x86_32) and may be
 * untrusted (`trusted = 0`: bounce buffers). Three disks: memory on the promise path (writes
 * and flushes that take a while, so a kill finds them in flight), memory on the synchronous
 * path (storage.syncIo), and a qcow2 image (from qemu-img) that each backend opens anew in
 * writeback mode, so whatever metadata a dead one held only in memory is gone.
 *
 * A killed backend is a dead process: each of its storage writes still in flight either
 * reached the disk or did not (a coin flip at the kill; on qcow2, every call it makes after
 * its death fails), and none lands later, on top of what its successor wrote. The invariants:
 * - every operation completes OKAY (replayed as often as it takes), none hangs;
 * - a read returns what the writer last wrote there (zeros where never written; after a
 *   discard, zeros on memory, zeros or the old bytes on qcow2, which frees whole clusters);
 * - afterwards the disk holds exactly the model: every acknowledged write, nothing else;
 * - nothing escapes into the event loop, and withBlkEnv finds no grant, port, watch or
 *   transaction left.
 *
 * In the suite a few cases per path run; XENPV_FUZZ_RUNS=500 runs a campaign (XENPV_FUZZ_SEED
 * and XENPV_FUZZ_PATH replay a case fast-check reports).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { sleep, xorshiftBelow, XenpvError } from '../../base/index.js';
import { fuzzCampaign, waitUntil } from '../../base/testing.js';
import type { BlkBackOptions } from './back.js';
import type { BlkFrontOptions } from './front-api.js';
import { MemoryImageFile, type ImageFile } from './storage/image-file.js';
import { MemoryStorage } from './storage/memory.js';
import { Qcow2Storage } from './storage/qcow2/qcow2.js';
import { noQemuImg, qemuImg, tempDir } from './storage/test-util.js';
import type { BlockStorage } from './storage/types.js';
import { pattern, withBlkEnv, type BlkEnv } from './test-support.js';

/** Sectors each writer owns: room for writes of up to 256 sectors (indirect, several chunks). */
const REGION = 320;
/** How long the workload may take after the last backend started before it counts as hung. */
const HANG_MS = 15_000;

interface Generation {
  readonly maxQueues: number;
  readonly maxRingPageOrder: number;
  readonly maxIndirectSegments: number;
  readonly persistent: boolean;
  readonly copy: boolean;
  /** Milliseconds this backend lives before it is killed (the last one is never killed). */
  readonly lifeMs: number;
  /** Sectors it grows the disk by, online (blkback's resize), half-way through its life; 0: none. */
  readonly grow: number;
}

interface Case {
  readonly front: Required<Pick<BlkFrontOptions, 'maxQueues' | 'maxRingPageOrder' | 'maxIndirectSegments' | 'persistent' | 'abi'>>;
  /** The vbd's `trusted` key: 0 makes the frontend bounce every buffer through pages of its own. */
  readonly trusted: boolean;
  readonly generations: readonly Generation[];
  readonly writers: number;
  readonly steps: number;
  /** Storage latency: async writes and flushes take 0..delayMs ms. */
  readonly delayMs: number;
  /** The storage has a volatile cache (FLUSH offered, flushes take a while). */
  readonly flush: boolean;
  readonly seed: number;
}

const generation: fc.Arbitrary<Generation> = fc.record({
  maxQueues: fc.integer({ min: 1, max: 4 }),
  maxRingPageOrder: fc.integer({ min: 0, max: 3 }),
  maxIndirectSegments: fc.constantFrom(0, 8, 32, 256),
  persistent: fc.boolean(),
  copy: fc.boolean(),
  // 0: killed right after it starts, while the frontend reconnects to it.
  lifeMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
  grow: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 512 })),
});

const crashCase: fc.Arbitrary<Case> = fc.record({
  front: fc.record({
    maxQueues: fc.integer({ min: 1, max: 4 }),
    maxRingPageOrder: fc.integer({ min: 0, max: 2 }),
    maxIndirectSegments: fc.constantFrom(0, 16, 32, 128),
    persistent: fc.boolean(),
    abi: fc.constantFrom('x86_64' as const, 'x86_32' as const),
  }),
  trusted: fc.boolean(),
  generations: fc.array(generation, { minLength: 2, maxLength: 5 }),
  writers: fc.integer({ min: 2, max: 10 }),
  steps: fc.integer({ min: 4, max: 12 }),
  delayMs: fc.integer({ min: 0, max: 4 }),
  flush: fc.boolean(),
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
});

/**
 * One backend generation's view of the disk, as a process holds it. Async writes and flushes
 * take a while; `crash()` ends the process: each write in flight reached the disk or not (a
 * coin flip), and every call after fails with EIO, so nothing of it lands later.
 */
class ProcessDisk implements BackendProcess {
  readonly storage: BlockStorage;
  private readonly inFlight = new Set<{ apply(): void; fail(): void }>();
  private dead = false;

  constructor(disk: MemoryStorage, c: Case, private readonly rnd: (n: number) => number) {
    const delay = (): Promise<void> => sleep(rnd(c.delayMs + 1));
    const dead = (): XenpvError => new XenpvError('EIO', 'backend process died');
    const write = (sector: number, src: Uint8Array): Promise<void> => {
      if (this.dead) return Promise.reject(dead());
      const copy = src.slice();
      return new Promise<void>((resolve, reject) => {
        const op = {
          apply: () => disk.bytes.set(copy, sector * 512),
          fail: () => reject(dead()),
        };
        this.inFlight.add(op);
        void delay().then(() => {
          if (!this.inFlight.delete(op)) return;
          op.apply();
          resolve();
        });
      });
    };
    const flush = async (): Promise<void> => {
      if (this.dead) throw dead();
      await delay();
      if (this.dead) throw dead();
    };
    // Everything else (reads, discards, syncIo, the geometry) is the disk's own.
    this.storage = Object.assign(Object.create(disk) as BlockStorage, {
      write,
      // On the disk itself (through the wrapper it would replace only the wrapper's view).
      resize: (sectors: number) => disk.resize(sectors),
      ...(c.flush ? { flush, capabilities: { ...disk.capabilities, flush: true } } : {}),
    });
  }

  crash(): void {
    this.dead = true;
    for (const op of this.inFlight) {
      if (this.rnd(2) === 0) op.apply();
      op.fail();
    }
    this.inFlight.clear();
  }
}

/** What one backend process holds of its disk: the storage it opened, and its death. */
interface BackendProcess {
  readonly storage: BlockStorage;
  crash(): void;
}

/**
 * The disk under the backends: each generation opens it anew as a process does (`open`); what
 * the guest sees of it at the end comes from the live one's storage.
 */
interface Medium {
  open(c: Case, rnd: (n: number) => number): Promise<BackendProcess>;
  /** Discarded sectors read as zeros (memory); else as zeros or as before (qcow2: whole clusters only). */
  readonly discardExact: boolean;
}

function memoryMedium(sectors: number, sync: boolean): Medium {
  const disk = new MemoryStorage(sectors, { sync });
  return { open: async (c, rnd) => new ProcessDisk(disk, c, rnd), discardExact: true };
}

/**
 * A qcow2 image in memory, shared by the generations as a file in the page cache is: each opens
 * it with Qcow2Storage (writeback: the file has a volatile cache, flush is offered), through a
 * view that fails every call once its process died, so nothing it held in memory reaches the file
 * after its death.
 */
function qcow2Medium(template: Uint8Array): Medium {
  const shared = new MemoryImageFile(template);
  return {
    discardExact: false,
    open: async () => {
      let dead = false;
      const live = <T>(fn: () => Promise<T>): Promise<T> => (dead ? Promise.reject(new XenpvError('EIO', 'backend process died')) : fn());
      const file: ImageFile = {
        name: 'memory qcow2',
        readOnly: false,
        hasVolatileCache: true,
        size: () => live(() => shared.size()),
        read: (o, d) => live(() => shared.read(o, d)),
        write: (o, b) => live(() => shared.write(o, b)),
        flush: () => live(() => shared.flush()),
        truncate: (n) => live(() => shared.truncate(n)),
        punchHole: (o, n) => live(() => shared.punchHole(o, n)),
        close: async () => undefined,
      };
      const storage = await Qcow2Storage.open(file, { cache: 'writeback' });
      return { storage, crash: () => void (dead = true) };
    },
  };
}

/** A sector a discard left zeros or as it was (qcow2 frees whole clusters only). */
const UNKNOWN = 0xffffffff;

/** The disk as the writers have been told it is: a tag per sector (0 = zeros, UNKNOWN). */
class Model {
  readonly tags: Uint32Array;
  constructor(sectors: number) {
    this.tags = new Uint32Array(sectors);
  }

  /** Sectors past the model's (the disk grew) are zeros: no writer reaches them. */
  bytes(sector: number, count: number): Uint8Array {
    const out = new Uint8Array(count * 512);
    for (let i = 0; i < count; i++) {
      const t = this.tags[sector + i] ?? 0;
      if (t !== 0 && t !== UNKNOWN) out.set(pattern(sector + i, 1, t), i * 512);
    }
    return out;
  }

  /** The first byte of `got` (from `sector`) that differs from the model, or -1; unknown sectors pass. */
  diff(sector: number, got: Uint8Array): number {
    const want = this.bytes(sector, got.length / 512);
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== want[i] && this.tags[sector + Math.floor(i / 512)] !== UNKNOWN) return i;
    }
    return -1;
  }
}

/** The device's discard feature, false while it has never been connected. */
function discardOffered(front: { readonly info: { readonly features: { readonly discard: boolean } } }): boolean {
  try {
    return front.info.features.discard;
  } catch {
    return false;
  }
}

/** What a campaign exercised (printed after it). */
const seen = { cases: 0, kills: 0, resizes: 0, replayed: 0, connects: 0, writes: 0, reads: 0, flushes: 0, discards: 0 };

async function runCase(env: BlkEnv, sync: boolean, medium: (sectors: number) => Medium, c: Case, uncaught: unknown[]): Promise<void> {
  const rnd = xorshiftBelow(c.seed);
  const sectors = c.writers * REGION;
  const disk = medium(sectors);
  const model = new Model(sectors);
  const log: string[] = [];
  const kind = (o: Generation): BlkBackOptions => ({
    maxQueues: o.maxQueues,
    maxRingPageOrder: o.maxRingPageOrder,
    maxIndirectSegments: o.maxIndirectSegments,
    persistent: o.persistent,
    // The copy data path has no synchronous variant.
    dataPath: o.copy && !sync ? 'copy' : 'map',
    log: (m) => log.push(m),
  });
  await env.addVbd({ trusted: c.trusted });
  let proc = await disk.open(c, rnd);
  let back = env.newBack(proc.storage, kind(c.generations[0]!));
  const front = env.newFront({ ...c.front, log: (m) => log.push(`front: ${m}`) });
  await back.start();
  await front.start();
  const why = (): string => `\n  log:\n    ${log.slice(-16).join('\n    ')}`;

  const writer = async (w: number): Promise<void> => {
    const base = w * REGION;
    for (let step = 0; step < c.steps; step++) {
      const what = rnd(20);
      const at = rnd(REGION);
      const count = 1 + rnd(Math.min(REGION - at, what < 3 ? 256 : 24));
      const tag = w * 1000 + step + 1;
      if (what < 11) {
        const data = pattern(base + at, count, tag);
        await front.write(base + at, data);
        model.tags.fill(tag, base + at, base + at + count);
        seen.writes++;
      } else if (what < 16) {
        const buf = new Uint8Array(count * 512);
        await front.read(base + at, buf);
        const d = model.diff(base + at, buf);
        assert.equal(d, -1, `writer ${w} step ${step}: read of sectors ${base + at}+${count} differs at byte ${d}${why()}`);
        seen.reads++;
      } else if (what < 18) {
        await front.flush();
        seen.flushes++;
      } else if (discardOffered(front)) {
        await front.discard(base + at, count);
        model.tags.fill(disk.discardExact ? 0 : UNKNOWN, base + at, base + at + count);
        seen.discards++;
      }
    }
  };
  const work = Promise.all(Array.from({ length: c.writers }, (_, w) => writer(w)));
  let failed: unknown;
  work.catch((err: unknown) => void (failed ??= err));

  // Online resize: the store's `sectors` rewritten with the state, the frontend takes the new size.
  const live = async (g: Generation): Promise<void> => {
    await sleep(g.lifeMs >>> 1);
    if (g.grow > 0 && failed === undefined) {
      await back.resize(proc.storage.sectorCount + g.grow);
      seen.resizes++;
    }
    await sleep(g.lifeMs - (g.lifeMs >>> 1));
  };
  for (let i = 1; i < c.generations.length; i++) {
    await live(c.generations[i - 1]!);
    if (failed !== undefined) break;
    // The process dies at once: its queues go before its storage calls can answer anything.
    const killed = back.kill();
    proc.crash();
    await killed;
    seen.kills++;
    proc = await disk.open(c, rnd);
    back = env.newBack(proc.storage, kind(c.generations[i]!));
    await back.start();
  }

  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the workload hung: ${front.pending} operations pending${why()}`)), HANG_MS);
  });
  try {
    await Promise.race([work, hung]);
  } finally {
    clearTimeout(timer);
  }
  assert.equal(front.pending, 0);
  const last = c.generations.at(-1)!;
  if (last.grow > 0) await live({ ...last, lifeMs: 0 });
  const size = proc.storage.sectorCount;
  await waitUntil(() => front.info.sectors === size, `the frontend to see ${size} sectors (it has ${front.info.sectors})${why()}`, 3000);
  // The whole disk as the guest would read it, through the live backend's storage.
  const all = new Uint8Array(size * 512);
  await proc.storage.read(0, all);
  const d = model.diff(0, all);
  assert.equal(d, -1, `the disk differs from the acknowledged writes at sector ${Math.floor(d / 512)}${why()}`);
  assert.ok(front.connects >= 1 && front.connects <= c.generations.length, `connects ${front.connects} of ${c.generations.length} backends`);
  assert.deepEqual(uncaught, [], 'nothing escaped into the event loop');
  seen.cases++;
  seen.replayed += front.replayed;
  seen.connects += front.connects;
  await front.close(2000);
}

function fuzz(sync: boolean, medium: (sectors: number) => Medium, label = sync ? 'sync' : 'async'): Promise<void> {
  let ran = 0;
  return fuzzCampaign(
    6,
    20,
    (params, uncaught) =>
      fc.assert(
        fc.asyncProperty(crashCase, (c) => {
          ran++;
          return withBlkEnv((env) => runCase(env, sync, medium, c, uncaught));
        }),
        params,
      ),
    (seconds) => {
      console.log(`${label}: ${ran} cases in ${seconds.toFixed(1)} s; passed: ${JSON.stringify(seen)}`);
      for (const k of Object.keys(seen) as (keyof typeof seen)[]) seen[k] = 0;
    },
  );
}

test('crash fuzz: blkback killed and restarted with other features at random moments of a random workload (promise path): every operation completes, no acknowledged write lost', () =>
  fuzz(false, (n) => memoryMedium(n, false)));

test('crash fuzz: the same on the synchronous data path (storage.syncIo)', () => fuzz(true, (n) => memoryMedium(n, true)));

test('crash fuzz: the same on a qcow2 image (writeback, flush offered), each backend opening it anew', { skip: noQemuImg }, () => {
  // A fresh image from qemu-img, large enough for any case's writers and growth.
  const dir = tempDir('xenpv-crash-fuzz-');
  try {
    const path = dir.file('t.qcow2');
    const r = qemuImg('create', '-q', '-f', 'qcow2', path, String(10 * REGION * 512));
    assert.equal(r.status, 0, r.stderr);
    const template = new Uint8Array(readFileSync(path));
    return fuzz(false, () => qcow2Medium(template), 'qcow2');
  } finally {
    dir.remove();
  }
});
