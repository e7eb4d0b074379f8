/**
 * Worker side of grant-race.test.ts: a granting guest thread that keeps ending and
 * re-granting its pages, or a dom0 thread that keeps mapping and unmapping them. Each page
 * carries a token the granter changes only after a successful end of access (the page is
 * then "reused"); a mapper that sees the token change under a live mapping has caught the
 * grant table letting a page be reused while mapped (reliability.md R8).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorCode, type DomId, type Frame, type GrantRef } from '../../base/index.js';
import type { GrantMapping } from '../platform.js';
import { SimPlatform, type PlatformHandle } from './platform.js';

export interface RaceJob {
  readonly role: 'granter' | 'mapper';
  readonly platform: PlatformHandle;
  readonly granter: number;
  readonly grantee: number;
  /** Int32: [0] stop, [1] mappers done, [2] ready, [8 + slot] current ref of the slot or -1. */
  readonly ctl: SharedArrayBuffer;
  readonly slots: number;
  readonly seed: number;
}

const job = workerData as RaceJob;
const ctl = new Int32Array(job.ctl);

export const STOP = 0;
export const MAPPERS_DONE = 1;
export const READY = 2;
export const REFS = 8;

function ready(): void {
  Atomics.add(ctl, READY, 1);
}

let seed = job.seed;
function rand(n: number): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return (seed >>> 8) % n;
}

function token(page: Uint8Array): Int32Array {
  return new Int32Array(page.buffer, page.byteOffset, 1);
}

function granter(p: SimPlatform): Record<string, number> {
  const frames = p.memory.allocPages(job.slots);
  const stats = { ends: 0, refused: 0, finalEndFailures: 0 };
  const grant = (s: number): void => {
    const ref = p.grants.grantAccess(job.grantee as DomId, frames[s]!, s % 3 === 0);
    Atomics.store(ctl, REFS + s, ref);
  };
  for (let s = 0; s < job.slots; s++) grant(s);
  ready();
  while (Atomics.load(ctl, STOP) === 0) {
    const s = rand(job.slots);
    const ref = Atomics.load(ctl, REFS + s);
    if (p.grants.endAccess(ref as GrantRef)) {
      stats.ends++;
      Atomics.store(ctl, REFS + s, -1);
      Atomics.add(token(p.memory.page(frames[s]! as Frame)), 0, 1); // reuse the page
      grant(s);
    } else stats.refused++;
  }
  while (Atomics.load(ctl, MAPPERS_DONE) < 2) Atomics.wait(ctl, MAPPERS_DONE, Atomics.load(ctl, MAPPERS_DONE), 20);
  // Every pin must be gone now: a lost pin would make one of these fail forever.
  for (let s = 0; s < job.slots; s++) {
    if (!p.grants.endAccess(Atomics.load(ctl, REFS + s) as GrantRef)) stats.finalEndFailures++;
  }
  p.memory.freePages(frames);
  return stats;
}

function mapper(p: SimPlatform): Record<string, number> {
  const held: { m: GrantMapping; t: number }[] = [];
  const stats: Record<string, number> = { maps: 0, unmaps: 0, violations: 0, copies: 0 };
  ready();
  const release = (k: number): void => {
    const [h] = held.splice(k, 1);
    if (Atomics.load(token(h!.m.pages[0]!), 0) !== h!.t) stats.violations!++;
    h!.m.dispose();
    stats.unmaps!++;
  };
  while (Atomics.load(ctl, STOP) === 0) {
    if (held.length < 4 && rand(2) === 0) {
      const ref = Atomics.load(ctl, REFS + rand(job.slots));
      if (ref < 0) continue;
      try {
        const m = p.grants.map(job.granter as DomId, [ref as GrantRef], rand(2) === 0);
        held.push({ m, t: Atomics.load(token(m.pages[0]!), 0) });
        stats.maps!++;
      } catch (err) {
        const code = errorCode(err) ?? 'unknown';
        stats[code] = (stats[code] ?? 0) + 1;
      }
    } else if (held.length > 0) release(rand(held.length));
  }
  while (held.length > 0) release(0);
  return stats;
}

const p = SimPlatform.attach(job.platform);
const result = job.role === 'granter' ? granter(p) : mapper(p);
if (job.role === 'mapper') {
  Atomics.add(ctl, MAPPERS_DONE, 1);
  Atomics.notify(ctl, MAPPERS_DONE);
}
p.dispose();
parentPort?.postMessage(result);
