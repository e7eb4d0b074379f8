/**
 * Crash harness for the durability contract (types.ts; reliability.md §4 and R18).
 *
 * A scenario is a sequence of writes, discards, reads and flushes run against a store whose
 * file is a `VolatileCacheFile` over a memory medium, with a power cut armed at a chosen
 * device operation (so it may land inside a store's multi-step update). After the cut the
 * medium keeps what was flushed plus a random, sector-torn subset of the rest; the store is
 * reopened on it and every sector is checked against a model:
 *
 * - each sector has the history of versions written to it (version 0 = initial zeroes);
 * - its *floor* is the newest version it must at least hold: the last version acknowledged
 *   before a flush that completed (store with a cache), or the last acknowledged version
 *   (store without one: "durable before write resolves");
 * - after the cut, the sector must hold exactly one of the versions from its floor onwards
 *   (a later, unacknowledged one may have reached the medium; an older one may not).
 * Reads during the run must return the newest acknowledged version. Every written sector is
 * self-describing (version id, sector number, filler derived from both) so a torn or
 * misplaced sector is recognised.
 */
import type { ImageFile } from './image-file.js';
import { MemoryImageFile } from './image-file.js';
import { type BlockStorage, SECTOR_SIZE } from './types.js';
import { VolatileCacheFile, seededRng } from './volatile-cache.js';

export type CrashOp =
  | { readonly kind: 'write'; readonly sector: number; readonly sectors: number }
  | { readonly kind: 'discard'; readonly sector: number; readonly sectors: number }
  | { readonly kind: 'read'; readonly sector: number; readonly sectors: number }
  | { readonly kind: 'flush' };

export interface CrashScenario {
  readonly ops: readonly CrashOp[];
  /** The power cut fires when this device operation (counted after open) starts. */
  readonly cutAt: number;
  /** Seeds the choice of what unflushed data survives. */
  readonly seed: number;
}

export interface CrashTarget {
  readonly name: string;
  /** Disk size the target's stores present. */
  readonly sectors: number;
  /** Initial contents of the stable medium (an empty image of `sectors`). */
  initialMedium(): Promise<Uint8Array>;
  open(file: ImageFile): Promise<BlockStorage>;
  /** Extra checks on the medium after the cut (e.g. qcow2 metadata consistency); returns problems. */
  checkMedium?(medium: ImageFile): Promise<string[]>;
}

export interface CrashReport {
  readonly failures: string[];
  readonly opsCompleted: number;
  readonly cutFired: boolean;
}

const ZERO_VERSION = 0;

class Model {
  /** Per sector: versions in issue order; index 0 is the initial zero. */
  private readonly history = new Map<number, number[]>();
  private readonly floor = new Map<number, number>();
  private readonly acked = new Map<number, number>();

  issue(sector: number, version: number): void {
    const h = this.history.get(sector) ?? [ZERO_VERSION];
    h.push(version);
    this.history.set(sector, h);
  }

  ack(sector: number, durable: boolean): void {
    const idx = (this.history.get(sector)?.length ?? 1) - 1;
    this.acked.set(sector, idx);
    if (durable) this.floor.set(sector, idx);
  }

  /** Snapshot of acknowledged indexes when a flush is issued. */
  ackedNow(): Map<number, number> {
    return new Map(this.acked);
  }

  flushed(snapshot: Map<number, number>): void {
    for (const [s, idx] of snapshot) this.floor.set(s, Math.max(this.floor.get(s) ?? 0, idx));
  }

  latestAcked(sector: number): number {
    const h = this.history.get(sector);
    return h === undefined ? ZERO_VERSION : (h[this.acked.get(sector) ?? 0] as number);
  }

  allowed(sector: number): number[] {
    const h = this.history.get(sector) ?? [ZERO_VERSION];
    return h.slice(this.floor.get(sector) ?? 0);
  }

  sectors(): number[] {
    return [...this.history.keys()];
  }
}

/** The content of `sector` at `version`: self-describing, so any misplaced or torn sector is caught. */
export function sectorPattern(version: number, sector: number): Uint8Array {
  const out = new Uint8Array(SECTOR_SIZE);
  if (version === ZERO_VERSION) return out;
  const view = new DataView(out.buffer);
  view.setUint32(0, version);
  view.setUint32(4, sector);
  let x = (version * 2654435761) ^ (sector * 40503) ^ 0x5bd1e995;
  for (let i = 8; i < SECTOR_SIZE; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view.setUint32(i, x >>> 0);
  }
  return out;
}

function versionOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(0);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export async function runCrashScenario(target: CrashTarget, scenario: CrashScenario): Promise<CrashReport> {
  const medium = new MemoryImageFile(await target.initialMedium());
  const cache = new VolatileCacheFile(medium, seededRng(scenario.seed));
  const store = await target.open(cache);
  cache.armCut(scenario.cutAt);
  const model = new Model();
  const failures: string[] = [];
  const durableOnAck = !store.capabilities.flush;
  const canDiscard = store.capabilities.discard.supported && store.capabilities.discard.discardZeroes;
  let nextVersion = 1;
  let done = 0;
  for (const op of scenario.ops) {
    if (op.kind === 'discard' && !canDiscard) continue;
    try {
      await runOp(op, store, model, durableOnAck, () => nextVersion++, failures);
    } catch {
      if (!cache.isDead) throw new Error(`${target.name}: op ${done} (${op.kind}) failed without a power cut`);
      break;
    }
    done++;
  }
  const cutFired = cache.isDead;
  await cache.powerCut();
  failures.push(...(await verifyAfterCut(target, medium, model)));
  return { failures, opsCompleted: done, cutFired };
}

async function runOp(
  op: CrashOp,
  store: BlockStorage,
  model: Model,
  durableOnAck: boolean,
  newVersion: () => number,
  failures: string[],
): Promise<void> {
  if (op.kind === 'flush') {
    const snapshot = model.ackedNow();
    await store.flush();
    model.flushed(snapshot);
    return;
  }
  const sectors = range(op.sector, op.sectors);
  if (op.kind === 'read') {
    const buf = new Uint8Array(op.sectors * SECTOR_SIZE);
    await store.read(op.sector, buf);
    for (const [i, s] of sectors.entries()) {
      const want = sectorPattern(model.latestAcked(s), s);
      if (!sameBytes(buf.subarray(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE), want)) {
        failures.push(`read of sector ${s} before the cut: expected version ${model.latestAcked(s)}`);
      }
    }
    return;
  }
  const version = op.kind === 'write' ? newVersion() : ZERO_VERSION;
  for (const s of sectors) model.issue(s, version);
  if (op.kind === 'write') {
    const buf = new Uint8Array(op.sectors * SECTOR_SIZE);
    for (const [i, s] of sectors.entries()) buf.set(sectorPattern(version, s), i * SECTOR_SIZE);
    await store.write(op.sector, buf);
  } else {
    await store.discard(op.sector, op.sectors);
  }
  for (const s of sectors) model.ack(s, durableOnAck);
}

async function verifyAfterCut(target: CrashTarget, medium: MemoryImageFile, model: Model): Promise<string[]> {
  const failures: string[] = [];
  if (target.checkMedium !== undefined) failures.push(...(await target.checkMedium(medium)));
  let store: BlockStorage;
  try {
    store = await target.open(medium);
  } catch (err) {
    return [...failures, `reopen after the cut failed: ${String(err)}`];
  }
  try {
    const buf = new Uint8Array(SECTOR_SIZE);
    for (const s of model.sectors().sort((a, b) => a - b)) {
      await store.read(s, buf);
      const v = versionOf(buf);
      const allowed = model.allowed(s);
      if (!sameBytes(buf, sectorPattern(v, s)) || (v === ZERO_VERSION && !buf.every((b) => b === 0))) {
        failures.push(`sector ${s}: content is no version written to it (torn or misplaced)`);
      } else if (!allowed.includes(v)) {
        failures.push(`sector ${s}: holds version ${v}, allowed ${JSON.stringify(allowed)}`);
      }
    }
  } finally {
    await store.close();
  }
  return failures;
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}
