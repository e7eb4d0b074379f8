/** The hostile-frontend fuzz's frontend pages, slot encoding, and its oracle of what blkback may answer and touch (hostile-fuzz.test.ts). */
import { BLKIF_REQUEST, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import {
  encodeBlkifDiscardFields,
  encodeBlkifIndirectFields,
  encodeBlkifIndirectGref,
  encodeBlkifRwFields,
  encodeBlkifRwSegment,
  encodeBlkifSegmentFields,
  type BlkifResponse,
} from '../../abi/io/blkif-codec.js';
import type { AbiName } from '../../abi/layout.js';
import type { DomId } from '../../base/index.js';
import { BAD_REFS, CANARY_SECTORS, HUGE, SEGS_PER_PAGE, type Body, type Cat, type Head, type RefPick, type Req, type Setup } from './hostile-fuzz-cases.js';
import { SlotFront } from './slot-front.js';
import { MemoryStorage } from './storage/memory.js';
import type { BlockStorage, SyncBlockIo } from './storage/types.js';

// ---- the frontend's pages ----

/** A page of ours the backend can reach, with what it held before the case (to compare after). */
interface Watched {
  readonly what: string;
  readonly ref: number | undefined;
  readonly bytes: Uint8Array;
  readonly before: Uint8Array;
  /** Granted writable to the backend: a READ may write the sectors a segment names. */
  readonly writable: boolean;
}

export class Pool {
  readonly refs: Record<Cat, number[]> = { rw: [], ro: [], foreign: [], indirect: [], bad: BAD_REFS, stale: [] };
  /** Refs the backend may map, and how. */
  readonly access = new Map<number, 'rw' | 'ro'>();
  /** The segment list of each indirect page, as refs (512 entries). */
  readonly lists = new Map<number, { gref: number; first: number; last: number }[]>();
  readonly watched: Watched[] = [];

  constructor(front: SlotFront, s: Setup, foreign: DomId) {
    let fill = 0x10;
    const watch = (what: string, bytes: Uint8Array, ref: number | undefined, writable: boolean): void => {
      bytes.fill(fill++);
      this.watched.push({ what, ref, bytes, before: bytes.slice(), writable });
    };
    // Every granted page gets an ungranted neighbour in the guest's memory: a view that ran
    // past the end of its page would land in one.
    const decoy = (): void => watch('an ungranted page', front.ungranted(), undefined, false);
    decoy();
    for (let i = 0; i < 4; i++) {
      const p = front.grant(true);
      this.refs.rw.push(p.ref);
      this.access.set(p.ref, 'rw');
      watch(`writable page ref ${p.ref}`, p.bytes, p.ref, true);
      decoy();
    }
    for (let i = 0; i < 2; i++) {
      const p = front.grant(false);
      this.refs.ro.push(p.ref);
      this.access.set(p.ref, 'ro');
      watch(`read-only page ref ${p.ref}`, p.bytes, p.ref, false);
      const f = front.grant(true, foreign);
      this.refs.foreign.push(f.ref);
      watch(`page ref ${f.ref} granted to dom${foreign}`, f.bytes, f.ref, false);
      decoy();
    }
    const stale = front.revoked();
    this.refs.stale.push(stale.ref);
    watch(`page of revoked ref ${stale.ref}`, stale.bytes, undefined, false);
    const pages = s.indirect.map(() => front.grant(false));
    for (const p of pages) {
      this.refs.indirect.push(p.ref);
      this.access.set(p.ref, 'ro');
    }
    s.indirect.forEach((content, n) => {
      const p = pages[n]!;
      const v = new DataView(p.bytes.buffer, p.bytes.byteOffset, 4096);
      const list = Array.from({ length: SEGS_PER_PAGE }, (_, i) => {
        const poison = content.poison?.at === i ? content.poison : undefined;
        const sg = content.segs[i % content.segs.length]!;
        return poison ?? { gref: this.ref(sg.ref), first: sg.first, last: sg.last };
      });
      list.forEach((e, i) => encodeBlkifSegmentFields(v, i * 8, e.gref, e.first, e.last));
      this.lists.set(p.ref, list);
      this.watched.push({ what: `indirect page ref ${p.ref}`, ref: p.ref, bytes: p.bytes, before: p.bytes.slice(), writable: false });
      decoy();
    });
  }

  ref(p: RefPick): number {
    const list = this.refs[p.cat];
    return list[p.i % list.length]!;
  }
}

// ---- slots ----

/** The sectors a request means to move, read the way a frontend means it (0 when not known). */
function spanOf(h: Head, b: Body, pool: Pool): number {
  const sum = (segs: readonly { first: number; last: number }[]): number => segs.reduce((n, g) => n + Math.max(0, g.last - g.first + 1), 0);
  switch (h.kind) {
    case 'rw':
      return sum(b.segs.slice(0, h.nr));
    case 'discard':
      return b.count < 1024n ? Number(b.count) : 0;
    case 'indirect': {
      const list = pool.lists.get(pool.ref(b.pages[0]!));
      return list === undefined ? 0 : sum(Array.from({ length: Math.min(h.nr, 1024) }, (_, i) => list[i % SEGS_PER_PAGE]!));
    }
    case 'unknown':
      return 0;
  }
}

function sectorOf(h: Head, b: Body, s: Setup, pool: Pool): bigint {
  const p = b.sector;
  if (p.base === 'huge') return HUGE[(p.k + 16) % HUGE.length]! + BigInt(p.k);
  let n =
    p.base === 'low'
      ? CANARY_SECTORS + (Math.abs(p.k) % 32)
      : p.base === 'edge'
        ? Math.max(CANARY_SECTORS, s.sectors - spanOf(h, b, pool) + (p.k % 3))
        : Math.max(CANARY_SECTORS, s.sectors + p.k);
  const block = s.blockSize / 512;
  if (p.align) n -= n % block; // stays >= 8: 8 is a multiple of every block
  return BigInt(n);
}

export function encode(r: Req, s: Setup, pool: Pool): Uint8Array {
  const bytes = new Uint8Array(BLKIF_REQUEST.layouts[s.abi].size);
  const v = new DataView(bytes.buffer);
  const { head: h, body: b } = r;
  const sec = sectorOf(h, b, s, pool);
  switch (h.kind) {
    case 'rw':
      encodeBlkifRwFields(v, 0, s.abi, h.op, h.nr, 0, h.id, sec);
      // All 11 segments, whatever nr_segments says: the ones past it are junk to ignore.
      b.segs.forEach((g, i) => encodeBlkifRwSegment(v, 0, s.abi, i, pool.ref(g.ref), g.first, g.last));
      break;
    case 'discard':
      encodeBlkifDiscardFields(v, 0, s.abi, h.flag, 0, h.id, sec, b.count);
      break;
    case 'indirect':
      encodeBlkifIndirectFields(v, 0, s.abi, h.op, h.nr, 0, h.id, sec);
      b.pages.forEach((p, i) => encodeBlkifIndirectGref(v, 0, s.abi, i, pool.ref(p)));
      break;
    case 'unknown': {
      let x = b.noise | 1;
      for (let i = 0; i < bytes.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        bytes[i] = x & 0xff;
      }
      const f = BLKIF_REQUEST.layouts[s.abi].fields;
      v.setUint8(f.operation, h.op);
      v.setBigUint64(f.id, h.id, true);
    }
  }
  return bytes;
}

/**
 * Where a rewrite starts: sector_number is the first field after id on every request layout,
 * and lies past the response (16 bytes on x86_64, 12 on x86_32) that the backend writes over
 * the slot, so a rewrite never eats an answer we have not read yet.
 */
export const rewriteFrom = (abi: AbiName): number => BLKIF_REQUEST.layouts[abi].fields.sector_number;

/** The operation a response to `h` carries (an indirect request is answered with its indirect_op). */
function rspOp(h: Head): number {
  return h.kind === 'discard' ? 5 : h.op;
}

// ---- the oracle: when may a request be answered OKAY? ----

/** Sectors the segments span, or -1 when one leaves its page or names a ref the backend may not use so. */
function dataSectors(segs: readonly { gref: number; first: number; last: number }[], write: boolean, pool: Pool): number {
  let n = 0;
  for (const g of segs) {
    const a = pool.access.get(g.gref);
    if (g.first > g.last || g.last > 7 || a === undefined || (!write && a !== 'rw')) return -1;
    n += g.last - g.first + 1;
  }
  return n;
}

/** False when no correct backend answers this version of a request OKAY (an over-approximation of success). */
function mayBeOkay(h: Head, b: Body, s: Setup, pool: Pool): boolean {
  const start = sectorOf(h, b, s, pool);
  const block = BigInt(s.blockSize / 512);
  const fits = (n: bigint): boolean => start + n <= BigInt(s.sectors);
  const aligned = (n: bigint): boolean => start % block === 0n && n % block === 0n;
  switch (h.kind) {
    case 'unknown':
      return false;
    case 'discard':
      return s.discard && !s.readOnly && fits(b.count);
    case 'rw': {
      const flush = h.op === 2 || h.op === 3;
      if (h.op !== 0 && s.readOnly) return false;
      if (h.nr === 0) return flush;
      if (h.nr > 11) return false;
      const n = dataSectors(b.segs.slice(0, h.nr).map((g) => ({ gref: pool.ref(g.ref), first: g.first, last: g.last })), h.op !== 0, pool);
      return n > 0 && fits(BigInt(n)) && aligned(BigInt(n));
    }
    case 'indirect': {
      if (s.maxIndirect === 0 || (h.op !== 0 && h.op !== 1) || h.nr === 0 || h.nr > s.maxIndirect) return false;
      if (h.op === 1 && s.readOnly) return false;
      const pages = b.pages.slice(0, Math.ceil(h.nr / SEGS_PER_PAGE)).map((p) => pool.ref(p));
      if (pages.some((r) => !pool.access.has(r))) return false;
      const segs = [];
      for (let i = 0; i < h.nr; i++) {
        const list = pool.lists.get(pages[Math.floor(i / SEGS_PER_PAGE)]!);
        // A data page named as a segment list: its bytes change with the I/O, so any answer goes.
        if (list === undefined) return true;
        segs.push(list[i % SEGS_PER_PAGE]!);
      }
      const n = dataSectors(segs, h.op === 1, pool);
      return n > 0 && fits(BigInt(n)) && aligned(BigInt(n));
    }
  }
}

/** One request put on the ring: its fixed head and every body its slot has held. */
export interface Sent {
  /** Its ring index. */
  readonly index: number;
  readonly head: Head;
  readonly bodies: Body[];
  matched: boolean;
}

/**
 * Pair each response with a request put that it can answer: same id, same operation, a status
 * that request may get. OKAY goes only to a request some version of which could succeed;
 * an error prefers one that could not, so a later OKAY still finds its request.
 */
export function matchResponses(rsps: readonly BlkifResponse[], sent: readonly Sent[], s: Setup, pool: Pool): string[] {
  const problems: string[] = [];
  for (const r of rsps) {
    if (r.status !== BLKIF_RSP_OKAY && r.status !== BLKIF_RSP_ERROR && r.status !== BLKIF_RSP_EOPNOTSUPP) problems.push(`response ${r.id}: status ${r.status}`);
    const candidates = sent.filter((x) => !x.matched && x.head.id === r.id && rspOp(x.head) === r.operation);
    const ok = (x: Sent): boolean => x.bodies.some((b) => mayBeOkay(x.head, b, s, pool));
    const allowed = (x: Sent): boolean => (x.head.kind === 'unknown' ? r.status === BLKIF_RSP_EOPNOTSUPP : r.status !== BLKIF_RSP_OKAY || ok(x));
    const fit = candidates.filter(allowed).sort((a, b) => Number(ok(a)) - Number(ok(b)));
    if (fit.length === 0) {
      problems.push(`response {id ${r.id}, op ${r.operation}, status ${r.status}} answers no request put (${candidates.length} with that id and op)`);
      continue;
    }
    fit[0]!.matched = true;
    const h = fit[0]!.head;
    count(`${h.kind}${h.kind === 'rw' || h.kind === 'indirect' ? ` op ${h.op > 6 ? '>6' : h.op}` : ''} -> ${r.status}`);
  }
  return problems;
}

/**
 * Sectors of each writable page that some READ segment named: the only ones a backend may
 * write. `anyOp`: count every request's segments (after a reconnect the backend may read old
 * slots again, whose first bytes now hold responses: a WRITE's slot may read as a READ).
 */
export function mayWrite(sent: readonly Sent[], pool: Pool, anyOp: boolean): Map<number, boolean[]> {
  const marks = new Map<number, boolean[]>();
  const mark = (gref: number, first: number, last: number): void => {
    if (first > last || last > 7) return;
    const m = marks.get(gref) ?? Array<boolean>(8).fill(false);
    for (let i = first; i <= last; i++) m[i] = true;
    marks.set(gref, m);
  };
  for (const x of sent) {
    if (anyOp || (x.head.kind === 'rw' && x.head.op === 0)) for (const b of x.bodies) for (const g of b.segs) mark(pool.ref(g.ref), g.first, g.last);
  }
  // Indirect READs: any entry of any segment list (a data page read as one holds entries
  // copied from these, or zeros). Over-approximate rather than follow which page was named.
  if (anyOp || sent.some((x) => x.head.kind === 'indirect' && x.head.op === 0)) {
    for (const list of pool.lists.values()) for (const e of list) mark(e.gref, e.first, e.last);
  }
  return marks;
}

// ---- storage that watches what it is asked ----

export type Phase = 'canary' | 'fuzz';

/**
 * `disk` with every call checked (inside the disk; never the canary sectors during the fuzz;
 * nothing written on a read-only vbd) and `hooks` run at each call (rewrites timed "during the
 * I/O"). Async calls may first yield (`slow`), widening every window.
 */
export function watchedStorage(disk: MemoryStorage, s: Setup, phase: { now: Phase }, hooks: (() => void)[], violations: string[]): BlockStorage {
  const check = (what: string, sector: number, bytes: number): void => {
    const n = bytes / 512;
    if (!(sector >= 0 && sector + n <= disk.sectorCount)) violations.push(`storage ${what} of ${sector}+${n}: outside the disk`);
    if (phase.now === 'fuzz' && sector < CANARY_SECTORS) violations.push(`storage ${what} of ${sector}+${n}: the canary's sectors`);
    if (what !== 'read' && s.readOnly) violations.push(`storage ${what} of ${sector}+${n} on a read-only vbd`);
    for (const h of hooks.splice(0)) h();
  };
  const pause = (): Promise<void> => (s.slow ? new Promise((r) => setImmediate(r)) : Promise.resolve());
  const len = (bufs: readonly Uint8Array[]): number => bufs.reduce((n, b) => n + b.byteLength, 0);
  const inner = disk.syncIo;
  const syncIo: SyncBlockIo | undefined =
    inner === undefined
      ? undefined
      : {
          readv: (sector, dests) => {
            check('read', sector, len(dests));
            inner.readv(sector, dests);
          },
          writev: (sector, srcs) => {
            check('write', sector, len(srcs));
            inner.writev(sector, srcs);
          },
        };
  return Object.assign(Object.create(disk) as BlockStorage, {
    syncIo,
    read: async (sector: number, dest: Uint8Array) => {
      check('read', sector, dest.byteLength);
      await pause();
      return disk.read(sector, dest);
    },
    write: async (sector: number, src: Uint8Array) => {
      check('write', sector, src.byteLength);
      await pause();
      return disk.write(sector, src);
    },
    discard: async (sector: number, count: number, options?: { secure?: boolean }) => {
      check('discard', sector, count * 512);
      await pause();
      return disk.discard(sector, count, options);
    },
    flush: async () => {
      for (const h of hooks.splice(0)) h();
      await pause();
      return disk.flush();
    },
  });
}

/** What the cases reached (printed after a campaign, so that a run that tried nothing deep shows). */
export const reached = new Map<string, number>();
export const count = (what: string): void => void reached.set(what, (reached.get(what) ?? 0) + 1);
