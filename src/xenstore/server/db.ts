/**
 * The store plus its exact accounting: nodes and memory per owning domain, kept in step with
 * every applied change set, and recomputable from the tree (`recompute`) so a test can compare
 * the two after every command (reliability.md R12, C's check_store()).
 */
import type { ChangeSet } from './changeset.js';
import { initialNodes, nodeMemory, NodeStore, ownerOf, type NodePerm, type XsNode } from './tree.js';

export interface Usage {
  nodes: number;
  memory: number;
}

/** One applied write, as the journal records it: the node's final version, or null if deleted. */
export type AppliedWrite = readonly [path: string, node: XsNode | null];

export class Db {
  readonly store = new NodeStore();
  private readonly usage = new Map<number, Usage>();

  /**
   * @param domainLive whether a permission entry for `domid` may be honoured (C
   *   domain_adjust_node_perms: entries for domains that are gone are marked ignored on write)
   */
  constructor(
    private readonly domainLive: (domid: number) => boolean,
    dom0 = 0,
  ) {
    for (const [path, node] of initialNodes(dom0)) this.insert(path, node);
  }

  usageOf(domid: number): Usage {
    return this.usage.get(domid) ?? { nodes: 0, memory: 0 };
  }

  /** Every domain with a non-zero usage. */
  allUsage(): Map<number, Usage> {
    return new Map([...this.usage].map(([d, u]) => [d, { ...u }]));
  }

  /** Empty the store and its accounting (before a restore). */
  clear(): void {
    this.store.clear();
    this.usage.clear();
  }

  /** Load a node as-is (initial tree, restore from disk); accounting follows. */
  insert(path: string, node: XsNode): void {
    const old = this.store.get(path);
    if (old !== undefined) this.charge(path, old, -1);
    this.store.set(path, node);
    this.charge(path, node, +1);
    if (node.generation > this.store.generation) this.store.generation = node.generation;
  }

  /** Apply every write of a change set, each taking a fresh generation. */
  apply(cs: ChangeSet): AppliedWrite[] {
    const done: AppliedWrite[] = [];
    for (const [path, next] of cs.writes) {
      const old = this.store.get(path);
      if (old !== undefined) this.charge(path, old, -1);
      if (next === null) {
        this.store.delete(path);
        done.push([path, null]);
        continue;
      }
      const node: XsNode = { ...next, perms: this.adjustPerms(next.perms), generation: this.store.nextGeneration() };
      this.store.set(path, node);
      this.charge(path, node, +1);
      done.push([path, node]);
    }
    return done;
  }

  /** Replay a journaled write: same as apply, but with the generation it had. */
  replay(path: string, node: XsNode | null): void {
    if (node !== null) {
      this.insert(path, node);
      return;
    }
    const old = this.store.get(path);
    if (old !== undefined) this.charge(path, old, -1);
    this.store.delete(path);
  }

  /** Entries after the first for domains that are gone are kept, flagged ignored (XSA-322/417). */
  private adjustPerms(perms: readonly NodePerm[]): readonly NodePerm[] {
    let changed = false;
    const out = perms.map((p, i) => {
      if (i === 0 || p.ignored === true || this.domainLive(p.domid)) return p;
      changed = true;
      return { ...p, ignored: true };
    });
    return changed ? out : perms;
  }

  private charge(path: string, node: XsNode, sign: 1 | -1): void {
    const owner = ownerOf(node);
    const u = this.usage.get(owner) ?? { nodes: 0, memory: 0 };
    u.nodes += sign;
    u.memory += sign * nodeMemory(path, node);
    if (u.nodes === 0 && u.memory === 0) this.usage.delete(owner);
    else this.usage.set(owner, u);
  }

  /** Usage computed from scratch from the tree: what `usage` must always equal. */
  recompute(): Map<number, Usage> {
    const out = new Map<number, Usage>();
    for (const [path, node] of this.store.entries()) {
      const owner = ownerOf(node);
      const u = out.get(owner) ?? { nodes: 0, memory: 0 };
      u.nodes += 1;
      u.memory += nodeMemory(path, node);
      out.set(owner, u);
    }
    return out;
  }
}
