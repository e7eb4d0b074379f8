/**
 * The node database: a flat map from canonical path to an immutable node record (C xenstored's
 * hashtable of nodes), plus the global generation counter that transactions and domain
 * lifetimes are compared against (transaction.c "Some notes regarding detection and handling
 * of transaction conflicts").
 *
 * Nodes are immutable: a change stores a new record, so an overlay (transaction, or the
 * scratch change set of a single request) can hold its own versions without copying the tree.
 */
import { SPECIAL_INTRODUCE, SPECIAL_RELEASE, type XsAccess } from '../protocol/index.js';

/** One permission entry. `ignored` is C's XS_PERM_IGNORE: the domain it names has gone. */
export interface NodePerm {
  readonly domid: number;
  readonly access: XsAccess;
  readonly ignored?: boolean;
}

export interface XsNode {
  readonly value: Uint8Array;
  /** First entry: owner + default access for everyone else; never empty. */
  readonly perms: readonly NodePerm[];
  /** Child names in creation order (DIRECTORY returns them in this order, like C). */
  readonly children: readonly string[];
  /** Generation of the last write of this node (global, unique, increasing). */
  readonly generation: number;
}

/** sizeof(struct node_hdr) and sizeof(struct xs_permissions) in C xenstored: its accounting units. */
const NODE_HDR_SIZE = 16;
const PERM_SIZE = 8;

export function childListLength(children: readonly string[]): number {
  let n = 0;
  for (const c of children) n += c.length + 1;
  return n;
}

/** What the `node-size` quota measures (core.c calc_node_acc_size): header, perms, value, children. */
export function nodeAccSize(node: XsNode): number {
  return NODE_HDR_SIZE + PERM_SIZE * node.perms.length + node.value.length + childListLength(node.children);
}

/** What a node costs its owner's `memory` quota: its size plus its name (core.c db_write). */
export function nodeMemory(path: string, node: XsNode): number {
  return nodeAccSize(node) + path.length;
}

export function ownerOf(node: XsNode): number {
  return node.perms[0]!.domid;
}

/** Read access to nodes: the global store or an overlay over it. */
export interface NodeReader {
  get(path: string): XsNode | undefined;
}

export class NodeStore implements NodeReader {
  private readonly nodes = new Map<string, XsNode>();
  /** The global generation count: every write takes ++generation. */
  generation = 0;

  get(path: string): XsNode | undefined {
    return this.nodes.get(path);
  }

  has(path: string): boolean {
    return this.nodes.has(path);
  }

  get size(): number {
    return this.nodes.size;
  }

  entries(): IterableIterator<[string, XsNode]> {
    return this.nodes.entries();
  }

  /** Raw put; accounting is the caller's (Accounting.apply). */
  set(path: string, node: XsNode): void {
    this.nodes.set(path, node);
  }

  delete(path: string): void {
    this.nodes.delete(path);
  }

  nextGeneration(): number {
    return ++this.generation;
  }

  clear(): void {
    this.nodes.clear();
  }
}

/**
 * The nodes every store starts with (core.c setup_structure): `/`, `/tool`, `/tool/xenstored`
 * and the two special watch nodes, all owned by dom0 with no access for others.
 */
export function initialNodes(dom0: number): [string, XsNode][] {
  const perms: NodePerm[] = [{ domid: dom0, access: 'n' }];
  const mk = (children: string[]): XsNode => ({ value: new Uint8Array(0), perms, children, generation: 0 });
  return [
    ['/', mk(['tool'])],
    ['/tool', mk(['xenstored'])],
    ['/tool/xenstored', mk([])],
    [SPECIAL_RELEASE, mk([])],
    [SPECIAL_INTRODUCE, mk([])],
  ];
}

/** Iterative pre-order walk of the subtree at `root` (no recursion over guest-controlled depth). */
export function* walkSubtree(reader: NodeReader, root: string): Generator<[string, XsNode]> {
  const stack = [root];
  while (stack.length > 0) {
    const path = stack.pop()!;
    const node = reader.get(path);
    if (node === undefined) continue;
    yield [path, node];
    for (let i = node.children.length - 1; i >= 0; i--) stack.push(childPath(path, node.children[i]!));
  }
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}
