/**
 * A change set: the writes of one request, or of one transaction, held apart from the global
 * store until they are applied all at once. Every request runs against one, so a request that
 * fails half-way leaves the store and its accounting exactly as they were (XSA-415/421: "a
 * failure inside a transaction fails the transaction", "commit is all-or-nothing").
 *
 * For transactions it also records the generation of every node at its first access (-1 for
 * "did not exist"); commit fails with EAGAIN if any of them changed (transaction.c notes).
 */
import { XsError } from '../protocol/index.js';
import { nodeMemory, ownerOf, type NodeReader, type NodeStore, type XsNode } from './tree.js';

export const ABSENT = -1;

/** A watch event queued by a request or transaction, fired when its writes are applied. */
export interface QueuedEvent {
  /** Recursive removal below the modified node: only watches exactly on it fire (core.c delnode_sub). */
  exact: boolean;
}

/** A saved state of a change set: a failed request inside a transaction rolls back to it. */
export interface Checkpoint {
  readonly writes: Map<string, XsNode | null>;
  readonly events: Map<string, QueuedEvent>;
  readonly nodeDelta: Map<number, number>;
  readonly memoryDelta: Map<number, number>;
  readonly created: boolean;
}

export class ChangeSet implements NodeReader {
  writes = new Map<string, XsNode | null>();
  readonly accessed = new Map<string, number>();
  events = new Map<string, QueuedEvent>();
  /** Per-domain change of owned nodes and memory that applying the writes would cause. */
  nodeDelta = new Map<number, number>();
  memoryDelta = new Map<number, number>();
  /** Set when a write inside a transaction failed: commit then answers with the failure. */
  failed = false;
  /** At least one node was created (commit re-checks the node quota then, like C). */
  created = false;

  /**
   * @param trackAccess record first-access generations (transactions only)
   * @param accessLimit the `transaction-nodes` quota, or Infinity
   */
  constructor(
    readonly base: NodeStore,
    readonly trackAccess: boolean,
    private readonly accessLimit = Infinity,
  ) {}

  get(path: string): XsNode | undefined {
    const w = this.writes.get(path);
    if (w !== undefined) return w ?? undefined;
    const node = this.base.get(path);
    if (this.trackAccess) this.noteAccess(path, node);
    return node;
  }

  private noteAccess(path: string, node: XsNode | undefined): void {
    if (this.accessed.has(path)) return;
    if (this.accessed.size + 1 > this.accessLimit) {
      this.failed = true;
      throw new XsError('ENOSPC', 'transaction-nodes quota');
    }
    this.accessed.set(path, node === undefined ? ABSENT : node.generation);
  }

  /** Store a new version of `path` (its generation is provisional until applied). */
  put(path: string, node: XsNode): void {
    const old = this.get(path);
    if (old === undefined) this.created = true;
    this.account(path, old, -1);
    const stored: XsNode = { ...node, generation: this.base.generation + 1 };
    this.writes.set(path, stored);
    this.account(path, stored, +1);
  }

  remove(path: string): void {
    const old = this.get(path);
    if (old === undefined) return;
    this.account(path, old, -1);
    this.writes.set(path, null);
  }

  private account(path: string, node: XsNode | undefined, sign: 1 | -1): void {
    if (node === undefined) return;
    const owner = ownerOf(node);
    this.nodeDelta.set(owner, (this.nodeDelta.get(owner) ?? 0) + sign);
    this.memoryDelta.set(owner, (this.memoryDelta.get(owner) ?? 0) + sign * nodeMemory(path, node));
  }

  queueEvent(path: string, exact: boolean): void {
    const prior = this.events.get(path);
    if (prior === undefined) this.events.set(path, { exact });
    else if (!exact) prior.exact = false; // "A non-exact event is replacing an exact one"
  }

  checkpoint(): Checkpoint {
    return {
      writes: new Map(this.writes),
      events: new Map([...this.events].map(([k, v]) => [k, { ...v }])),
      nodeDelta: new Map(this.nodeDelta),
      memoryDelta: new Map(this.memoryDelta),
      created: this.created,
    };
  }

  /** Undo every write since `c`; accesses stay recorded (they still decide conflicts, as in C). */
  rollback(c: Checkpoint): void {
    this.writes = c.writes;
    this.events = c.events;
    this.nodeDelta = c.nodeDelta;
    this.memoryDelta = c.memoryDelta;
    this.created = c.created;
  }

  nodesDelta(domid: number): number {
    return this.nodeDelta.get(domid) ?? 0;
  }

  memDelta(domid: number): number {
    return this.memoryDelta.get(domid) ?? 0;
  }

  /** The first access generation of every node this transaction touched that has changed since. */
  conflicts(): string[] {
    const out: string[] = [];
    for (const [path, gen] of this.accessed) {
      const now = this.base.get(path);
      if ((now === undefined ? ABSENT : now.generation) !== gen) out.push(path);
    }
    return out;
  }
}
