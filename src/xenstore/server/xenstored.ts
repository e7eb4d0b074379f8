/**
 * The daemon core (C core.c + domain.c): connections in, requests dispatched through the
 * `do<Op>` table, change sets applied with exact accounting, watch events out.
 *
 * Transport-independent: a transport attaches a connection, feeds it bytes (`input`), and
 * writes what the connection hands it. A client that sends garbage or oversized frames is
 * marked bad and closed; nothing it sends can throw out of here (reliability.md R11).
 */
import { DOM0 } from '../../base/index.js';
import {
  encodeErrorPayload,
  encodeMessage,
  decodeRequest,
  opName,
  PAYLOAD_MAX,
  XsError,
  XsOp,
  type XsErrorName,
  type XsMessage,
} from '../protocol/index.js';
import { parentOf } from './access.js';
import { ChangeSet } from './changeset.js';
import { Connection, type Transport, type Watch } from './connection.js';
import type { OpContext } from './context.js';
import { Db, type AppliedWrite } from './db.js';
import { lookupOp } from './dispatch.js';
import { Domains, type Caller } from './domains.js';
import { SERVER_FEATURES } from './features.js';
import { DEFAULT_LIMITS, QUOTA_NAMES, QuotaTable, type Limits, type QuotaKey } from './limits.js';
import { domainShutdown, fireSpecial, introduceDomain, releaseDomain } from './lifecycle.js';
import type { RingMapper } from './ring.js';
import type { StoreEvent } from './watches.js';
import { deliver, watchPermitted } from './watches.js';

/** Where applied writes go to survive a crash (persist.ts); `sync` runs before replies leave. */
export interface Persistence {
  recordWrites(writes: readonly AppliedWrite[], generation: number): void;
  recordQuotas(snapshot: ReturnType<QuotaTable['snapshot']>): void;
  sync(): void;
  close(): void;
}

export interface XenstoredOptions {
  readonly limits?: Limits;
  /** Privileged domains besides dom0 (C --priv-domid). */
  readonly privDomids?: readonly number[];
  /** Does a domain exist (in the hypervisor)? SET_PERMS naming a missing one marks the entry ignored. Default: yes. */
  readonly domainExists?: (domid: number) => boolean;
  /** Maps a guest's ring page and binds its port on INTRODUCE; without it, INTRODUCE only records the domain. */
  readonly ringMapper?: RingMapper;
  readonly persistence?: Persistence;
  readonly now?: () => number;
  readonly log?: (msg: string) => void;
}

export class Xenstored {
  readonly limits: Limits;
  readonly quotas: QuotaTable;
  readonly domains: Domains;
  readonly db: Db;
  readonly connections = new Set<Connection>();
  readonly stats = { badConnections: 0, softMemoryWarnings: 0, requests: 0, internalErrors: 0 };
  private readonly watchUse = new Map<number, { count: number; memory: number }>();
  private readonly dirty = new Set<Connection>();
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly now: () => number;
  private persistence: Persistence | undefined;

  constructor(readonly options: XenstoredOptions = {}) {
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.quotas = new QuotaTable(this.limits);
    this.now = options.now ?? Date.now;
    const priv = new Set([DOM0 as number, ...(options.privDomids ?? [])]);
    this.domains = new Domains(() => this.db.store.generation, SERVER_FEATURES, priv);
    this.db = new Db((domid) => this.domains.isLive(domid));
    this.persistence = options.persistence;
    this.timer = setInterval(() => this.expireEvents(), 1000);
    this.timer.unref();
  }

  /** Attach persistence after a restore has replayed into `db` (persist.ts). */
  setPersistence(p: Persistence): void {
    this.persistence = p;
  }

  log(msg: string): void {
    this.options.log?.(msg);
  }

  quota(domid: number, key: QuotaKey): number {
    return this.quotas.get(domid, key);
  }

  setQuota(domid: number | undefined, key: QuotaKey, value: number): void {
    this.quotas.set(domid, key, value);
    this.persistence?.recordQuotas(this.quotas.snapshot());
  }

  quotaReport(): [string, number][] {
    return Object.entries(QUOTA_NAMES).map(([name, key]) => [name, this.quotas.getGlobal(key)]);
  }

  domainExists(domid: number): boolean {
    return this.options.domainExists?.(domid) ?? true;
  }

  callerOf(conn: Connection): Caller {
    const rec = this.domains.get(conn.domid);
    return {
      domid: conn.domid,
      privileged: this.domains.isPrivileged(conn.domid),
      ...(rec?.target === undefined ? {} : { target: rec.target }),
    };
  }

  /** Features available to a connection: the socket gets all; a domain what SET_FEATURE left it. */
  featuresOf(conn: Connection): number {
    if (conn.transport.kind !== 'ring') return SERVER_FEATURES;
    return this.domains.get(conn.domid)?.features ?? SERVER_FEATURES;
  }

  eventDeadline(caller: Caller): number {
    return caller.privileged ? 0 : this.now() + this.limits.watchEventTimeoutMs;
  }

  // ---- accounting -------------------------------------------------------------------------

  watchUsage(domid: number): { count: number; memory: number } {
    return this.watchUse.get(domid) ?? { count: 0, memory: 0 };
  }

  /** A domain's memory: its nodes and its watches (transactions are bounded by transaction-nodes). */
  memoryOf(domid: number): number {
    return this.db.usageOf(domid).memory + this.watchUsage(domid).memory;
  }

  transactionCount(domid: number): number {
    let n = 0;
    for (const c of this.connections) if (c.domid === domid) n += c.transactions.size;
    return n;
  }

  private chargeWatch(domid: number, w: Watch, sign: 1 | -1): void {
    const u = this.watchUse.get(domid) ?? { count: 0, memory: 0 };
    u.count += sign;
    u.memory += sign * (w.path.length + w.token.length);
    if (u.count === 0) this.watchUse.delete(domid);
    else this.watchUse.set(domid, u);
  }

  addWatch(conn: Connection, key: string, w: Watch): void {
    conn.watches.set(key, w);
    this.chargeWatch(conn.domid, w, +1);
  }

  removeWatch(conn: Connection, key: string): boolean {
    const w = conn.watches.get(key);
    if (w === undefined) return false;
    conn.watches.delete(key);
    this.chargeWatch(conn.domid, w, -1);
    return true;
  }

  dropWatchesAndTransactions(conn: Connection): void {
    for (const key of [...conn.watches.keys()]) this.removeWatch(conn, key);
    for (const tx of conn.transactions.values()) tx.release();
    conn.transactions.clear();
  }

  /** Differences between the incremental counters and a recount from the tree and watches. */
  checkAccounting(): string[] {
    const problems: string[] = [];
    const have = this.db.allUsage();
    const want = this.db.recompute();
    for (const d of new Set([...have.keys(), ...want.keys()])) {
      const h = have.get(d) ?? { nodes: 0, memory: 0 };
      const w = want.get(d) ?? { nodes: 0, memory: 0 };
      if (h.nodes !== w.nodes || h.memory !== w.memory) problems.push(`d${d}: counted ${JSON.stringify(h)}, tree ${JSON.stringify(w)}`);
    }
    const watches = new Map<number, { count: number; memory: number }>();
    for (const c of this.connections) {
      for (const w of c.watches.values()) {
        const u = watches.get(c.domid) ?? { count: 0, memory: 0 };
        u.count++;
        u.memory += w.path.length + w.token.length;
        watches.set(c.domid, u);
      }
    }
    for (const d of new Set([...watches.keys(), ...this.watchUse.keys()])) {
      const h = this.watchUsage(d);
      const w = watches.get(d) ?? { count: 0, memory: 0 };
      if (h.count !== w.count || h.memory !== w.memory) problems.push(`d${d} watches: counted ${JSON.stringify(h)}, actual ${JSON.stringify(w)}`);
    }
    return problems;
  }

  // ---- connections ------------------------------------------------------------------------

  attach(transport: Transport, domid: number): Connection {
    const conn = new Connection(transport, domid, {
      replies: () => (this.domains.isPrivileged(domid) ? this.limits.replyQueue : Math.min(this.limits.replyQueue, this.quota(domid, 'outstanding'))),
      events: this.limits.watchEventQueue,
    });
    this.connections.add(conn);
    return conn;
  }

  /** Bytes from a transport. Frames are parsed and processed; a framing error marks the client bad. */
  input(conn: Connection, chunk: Uint8Array): void {
    if (conn.bad || conn.closed) return;
    const r = conn.parser.push(chunk);
    for (const msg of r.messages) {
      if (conn.closed) break;
      try {
        this.process(conn, msg);
      } catch (e) {
        // A bug, not a client error: keep the daemon and every other client alive, cut off the
        // one whose request hit it, and leave a trace (tests assert internalErrors stays 0).
        this.stats.internalErrors++;
        this.log(`internal error on connection #${conn.id} (d${conn.domid}): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        this.markBad(conn, 'comm');
      }
    }
    if (r.error !== undefined && !conn.closed) {
      this.log(`connection #${conn.id} (d${conn.domid}): ${r.error.message}`);
      this.markBad(conn, 'proto');
    }
    this.afterBatch();
  }

  /** The transport can take more output. */
  writable(conn: Connection): void {
    conn.flush(this.now());
  }

  /** The peer went away (socket closed). */
  transportClosed(conn: Connection): void {
    this.dropWatchesAndTransactions(conn);
    conn.close();
    this.connections.delete(conn);
    this.dirty.delete(conn);
  }

  /**
   * Ignore a misbehaving client (C ignore_connection): its watches and transactions go, its
   * transport is closed with the reason, and — for a guest — its domain record stays until the
   * domain really dies (XSA-325: no early @releaseDomain).
   */
  markBad(conn: Connection, reason: 'proto' | 'ringidx' | 'comm'): void {
    if (conn.bad) return;
    conn.bad = true;
    this.stats.badConnections++;
    this.dropWatchesAndTransactions(conn);
    conn.close(reason);
    this.connections.delete(conn);
    this.dirty.delete(conn);
  }

  /** Ring reconnect (xenstore-ring.txt): drop in-flight requests, watches and transactions. */
  resetConnection(conn: Connection): void {
    this.dropWatchesAndTransactions(conn);
    conn.clearOutput();
    conn.parser.reset();
  }

  /** Persist, then let replies out: nothing is acknowledged before it is on disk. */
  afterBatch(): void {
    this.persistence?.sync();
    const now = this.now();
    for (const c of this.dirty) c.flush(now);
    this.dirty.clear();
  }

  private expireEvents(): void {
    const now = this.now();
    for (const c of this.connections) if (c.queuedEvents > 0) c.flush(now);
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of [...this.connections]) this.transportClosed(c);
    this.persistence?.close();
  }

  // ---- requests ---------------------------------------------------------------------------

  process(conn: Connection, msg: XsMessage): void {
    this.stats.requests++;
    conn.stats.requests++;
    const name = opName(msg.type);
    const entry = lookupOp(name);
    if (name === undefined || entry === undefined) return this.sendError(conn, msg, 'ENOSYS');
    const caller = this.callerOf(conn);
    if (entry.priv && !caller.privileged) return this.sendError(conn, msg, 'EACCES');
    const tx = entry.notid || msg.txId === 0 ? undefined : conn.transactions.get(msg.txId);
    if (!entry.notid && msg.txId !== 0 && tx === undefined) return this.sendError(conn, msg, 'ENOENT');
    const dec = decodeRequest(name, msg.payload);
    if (!dec.ok) return this.sendError(conn, msg, dec.error);
    const cs = tx?.cs ?? new ChangeSet(this.db.store, false);
    const mark = tx === undefined ? undefined : cs.checkpoint();
    const ctx: OpContext = { d: this, conn, caller, tx, txId: msg.txId, cs };
    try {
      const reply = entry.handler(ctx, dec.req);
      if (tx === undefined) this.commitRequest(caller, cs);
      else this.checkMemory(caller, cs.memDelta(caller.domid) - (mark!.memoryDelta.get(caller.domid) ?? 0), cs.memDelta(caller.domid));
      this.sendReply(conn, msg, reply.payload);
      reply.after?.();
      if (entry.writes && tx === undefined && cs.writes.size > 0) this.debitWrite(conn, caller);
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
      if (mark !== undefined) cs.rollback(mark);
      this.sendError(conn, msg, e.errorName);
    }
  }

  private sendReply(conn: Connection, msg: XsMessage, payload: Uint8Array): void {
    // XSA-72: "A reply must fit the payload limit. Send an E2BIG error instead."
    if (payload.length > PAYLOAD_MAX) return this.sendError(conn, msg, 'E2BIG');
    conn.queueReply(encodeMessage({ type: msg.type, reqId: msg.reqId, txId: msg.txId, payload }));
    this.dirty.add(conn);
  }

  private sendError(conn: Connection, msg: XsMessage, name: XsErrorName): void {
    conn.queueReply(encodeMessage({ type: XsOp.error, reqId: msg.reqId, txId: msg.txId, payload: encodeErrorPayload(name) }));
    this.dirty.add(conn);
  }

  /** ENOSPC if an op grew an unprivileged domain's memory past its quota. */
  private checkMemory(caller: Caller, opDelta: number, totalDelta: number): void {
    if (caller.privileged || opDelta <= 0) return;
    const total = this.memoryOf(caller.domid) + totalDelta;
    if (total > this.quota(caller.domid, 'memory')) throw new XsError('ENOSPC', 'memory');
    if (total > this.quota(caller.domid, 'softMemory')) this.stats.softMemoryWarnings++;
  }

  private commitRequest(caller: Caller, cs: ChangeSet): void {
    if (cs.writes.size === 0) return;
    this.checkMemory(caller, cs.memDelta(caller.domid), cs.memDelta(caller.domid));
    this.applyChanges(cs);
  }

  /** TRANSACTION_END T: fail → ENOMEM (as C), quota → ENOSPC, conflict → EAGAIN, else apply all. */
  commitTransaction(conn: Connection, caller: Caller, cs: ChangeSet): void {
    if (cs.failed) throw new XsError('ENOMEM', 'transaction failed earlier');
    if (!caller.privileged) {
      const nodes = this.db.usageOf(caller.domid).nodes + cs.nodesDelta(caller.domid);
      if (cs.created && cs.nodesDelta(caller.domid) > 0 && nodes > this.quota(caller.domid, 'nodes')) throw new XsError('ENOSPC', 'nodes');
      this.checkMemory(caller, cs.memDelta(caller.domid), cs.memDelta(caller.domid));
    }
    if (cs.conflicts().length > 0) throw new XsError('EAGAIN');
    this.applyChanges(cs);
    if (cs.writes.size > 0) this.debitWrite(conn, caller);
  }

  /** Apply a change set to the store, journal it, and fire its watch events. */
  applyChanges(cs: ChangeSet): void {
    const before = new Map([...cs.events.keys()].map((p) => [p, this.db.store.get(p)] as const));
    const applied = this.db.apply(cs);
    this.persistence?.recordWrites(applied, this.db.store.generation);
    for (const [path, q] of cs.events) {
      const b = before.get(path);
      const a = this.db.store.get(path);
      this.fire({ path, exact: q.exact, ...(b === undefined ? {} : { before: b }), ...(a === undefined ? {} : { after: a }) });
    }
  }

  /** Queue `ev` for every connection with a matching watch that may read the node. */
  fire(ev: StoreEvent): void {
    const parent = parentOf(ev.path);
    for (const conn of this.connections) {
      if (conn.watches.size === 0 || conn.bad) continue;
      const caller = this.callerOf(conn);
      if (!watchPermitted(this.domains, this.db.store, caller, ev, parent)) continue;
      if (deliver(conn, ev, this.eventDeadline(caller)) > 0) this.dirty.add(conn);
    }
  }

  fireSpecial(name: string, domid: number): void {
    fireSpecial(this, name, domid);
  }

  /** Mark a connection as having output to flush after this batch. */
  markDirty(conn: Connection): void {
    this.dirty.add(conn);
  }

  // ---- write rate limit -------------------------------------------------------------------

  /** XSA-206: a token bucket per unprivileged domain; its input pauses while the credit is negative. */
  private debitWrite(conn: Connection, caller: Caller): void {
    if (caller.privileged) return;
    const rec = this.domains.ensure(caller.domid);
    const now = this.now();
    const rate = this.limits.writeRate;
    rec.wrlCredit = Math.min(this.limits.writeBurst, rec.wrlCredit + ((now - rec.wrlStamp) * rate) / 1000);
    if (rec.wrlStamp === 0) rec.wrlCredit = this.limits.writeBurst;
    rec.wrlStamp = now;
    rec.wrlCredit -= 1;
    if (rec.wrlCredit >= 0) return;
    conn.setPaused('rate', true);
    const waitMs = Math.ceil((-rec.wrlCredit * 1000) / rate);
    setTimeout(() => conn.setPaused('rate', false), waitMs).unref();
  }

  // ---- domains (lifecycle.ts) -------------------------------------------------------------

  introduceDomain(domid: number, gfn: number, port: number): void {
    introduceDomain(this, domid, gfn, port);
  }

  releaseDomain(domid: number): void {
    releaseDomain(this, domid);
  }

  /** The domain shut down or crashed: fire @releaseDomain (once until RESUME). */
  domainShutdown(domid: number): void {
    domainShutdown(this, domid);
  }
}
