/**
 * `--state FILE`: the tree (values, permissions, generations) and quota settings on disk, so a
 * crash at any moment leaves every acknowledged write recoverable.
 *
 * - FILE holds a snapshot; FILE.journal the writes applied since, one JSON line per change
 *   set. Each journal line is written and fsync'd before the replies of the requests that made
 *   it leave the daemon (Xenstored.afterBatch calls sync() first).
 * - Compaction writes FILE.tmp, fsyncs it, renames it over FILE, fsyncs the directory, then
 *   empties the journal. A crash between the rename and the truncate replays writes the
 *   snapshot already has: every record sets whole nodes, so replaying is idempotent.
 * - A torn last line (crash mid-append, never acknowledged) is dropped on load.
 *
 * Accounting is not stored: it is recomputed from the restored tree, which is what it must
 * equal. Domain lifetimes are not known across a restart: every domain named in a permission
 * entry is taken as existing since generation 0.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, ftruncateSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { XenpvError } from '../../base/index.js';
import type { AppliedWrite } from './db.js';
import type { QuotaTable } from './limits.js';
import type { NodePerm, XsNode } from './tree.js';
import type { Persistence, Xenstored } from './xenstored.js';

type QuotaSnapshot = ReturnType<QuotaTable['snapshot']>;

interface StoredNode {
  v: string;
  p: [number, string, number][];
  c: string[];
  g: number;
}

interface Snapshot {
  version: 1;
  generation: number;
  nodes: [string, StoredNode][];
  quotas?: QuotaSnapshot;
}

type JournalLine = { w: [string, StoredNode | null][]; g: number } | { q: QuotaSnapshot };

function encodeNode(n: XsNode): StoredNode {
  return {
    v: Buffer.from(n.value).toString('base64'),
    p: n.perms.map((p) => [p.domid, p.access, p.ignored === true ? 1 : 0]),
    c: [...n.children],
    g: n.generation,
  };
}

function decodeNode(s: StoredNode): XsNode {
  const perms: NodePerm[] = s.p.map(([domid, access, ignored]) => ({
    domid,
    access: access as NodePerm['access'],
    ...(ignored === 1 ? { ignored: true } : {}),
  }));
  return { value: new Uint8Array(Buffer.from(s.v, 'base64')), perms, children: s.c, generation: s.g };
}

export interface JournalOptions {
  /** Compact when the journal grows past this many bytes. */
  readonly compactBytes?: number;
}

export class JournalPersistence implements Persistence {
  private fd: number;
  private buffered: string[] = [];
  private journalBytes = 0;

  private constructor(
    private readonly file: string,
    private readonly d: Xenstored,
    private readonly compactBytes: number,
  ) {
    this.fd = openSync(`${file}.journal`, 'a');
  }

  /** Restore FILE (+ journal) into `d`, start a fresh journal, and attach to `d`. */
  static open(file: string, d: Xenstored, opts: JournalOptions = {}): JournalPersistence {
    restore(file, d);
    const p = new JournalPersistence(file, d, opts.compactBytes ?? 4 * 1024 * 1024);
    p.compact();
    d.setPersistence(p);
    return p;
  }

  recordWrites(writes: readonly AppliedWrite[], generation: number): void {
    if (writes.length === 0) return;
    const line: JournalLine = { w: writes.map(([p, n]) => [p, n === null ? null : encodeNode(n)]), g: generation };
    this.buffered.push(JSON.stringify(line));
  }

  recordQuotas(snapshot: QuotaSnapshot): void {
    this.buffered.push(JSON.stringify({ q: snapshot } satisfies JournalLine));
  }

  /** Append and fsync everything recorded since the last sync. */
  sync(): void {
    if (this.buffered.length === 0) return;
    const text = this.buffered.join('\n') + '\n';
    this.buffered = [];
    const bytes = Buffer.from(text);
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off);
    fsyncSync(this.fd);
    this.journalBytes += bytes.length;
    if (this.journalBytes > this.compactBytes) this.compact();
  }

  /** Snapshot the whole store to FILE atomically, then empty the journal. */
  compact(): void {
    const snap: Snapshot = {
      version: 1,
      generation: this.d.db.store.generation,
      nodes: [...this.d.db.store.entries()].map(([p, n]) => [p, encodeNode(n)]),
      quotas: this.d.quotas.snapshot(),
    };
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(snap));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    fsyncDir(dirname(this.file));
    ftruncateSync(this.fd, 0);
    fsyncSync(this.fd);
    this.journalBytes = 0;
  }

  close(): void {
    this.sync();
    closeSync(this.fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function restore(file: string, d: Xenstored): void {
  if (existsSync(file)) {
    let snap: Snapshot;
    try {
      snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
    } catch (e) {
      // The snapshot is only ever replaced by rename: a broken one was not written by us.
      throw new XenpvError('EBADSTATE', `${file}: not a xenstored state file (${String(e)})`, { file });
    }
    if (snap.version !== 1) throw new XenpvError('EBADSTATE', `${file}: unknown state version ${String(snap.version)}`, { file });
    d.db.clear();
    for (const [path, n] of snap.nodes) d.db.insert(path, decodeNode(n));
    if (snap.generation > d.db.store.generation) d.db.store.generation = snap.generation;
    if (snap.quotas !== undefined) d.quotas.restore(snap.quotas);
  }
  replayJournal(`${file}.journal`, d);
  for (const [, node] of d.db.store.entries()) {
    for (const p of node.perms) if (!d.domains.isPrivileged(p.domid)) d.domains.ensure(p.domid, 0);
  }
}

function replayJournal(path: string, d: Xenstored): void {
  if (!existsSync(path)) return;
  const text = readFileSync(path, 'utf8');
  let good = 0;
  for (const raw of text.split('\n')) {
    if (raw === '') break;
    let line: JournalLine;
    try {
      line = JSON.parse(raw) as JournalLine;
    } catch {
      break; // a torn tail: the write it held was never acknowledged
    }
    if ('q' in line) d.quotas.restore(line.q);
    else for (const [p, n] of line.w) d.db.replay(p, n === null ? null : decodeNode(n));
    good += Buffer.byteLength(raw) + 1;
  }
  if (good < Buffer.byteLength(text)) writeFileSync(path, Buffer.from(text).subarray(0, good));
}
