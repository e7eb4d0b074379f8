/**
 * Path resolution and permission-checked node lookup, in one place for every operation and
 * for the root node too (XSA-353: "do root handling and the permission check once, in a single
 * function").
 */
import {
  ABS_PATH_MAX,
  domainPath,
  isRelative,
  parentPath,
  quotaPathLength,
  validPathChars,
  XsError,
} from '../protocol/index.js';
import type { OpContext } from './context.js';
import type { Access } from './domains.js';
import type { XsNode } from './tree.js';

export type Need = 'read' | 'write' | 'owner';

/**
 * core.c canonicalize(): allowed characters; `@` names only where special nodes are allowed;
 * relative paths below the caller's home; no trailing or doubled `/`; the `path-max` quota for
 * unprivileged callers (not counting a /local/domain/<id>/ prefix, XSA-323). Invalid → EINVAL.
 */
export function resolvePath(ctx: OpContext, raw: string, allowSpecial: boolean): string {
  if (!validPathChars(raw) || (raw.startsWith('@') && !allowSpecial)) throw new XsError('EINVAL', 'bad path');
  const path = isRelative(raw) ? `${domainPath(ctx.conn.domid)}/${raw}` : raw;
  if (path.endsWith('/') && path !== '/') throw new XsError('EINVAL', 'trailing /');
  if (path.includes('//')) throw new XsError('EINVAL', 'double /');
  if (path.length > ABS_PATH_MAX) throw new XsError('EINVAL', 'path too long');
  if (!ctx.caller.privileged && quotaPathLength(path) > ctx.d.quota(ctx.caller.domid, 'pathMax')) {
    throw new XsError('EINVAL', 'path-max');
  }
  return path;
}

export function accessOf(ctx: OpContext, node: XsNode): Access {
  return ctx.d.domains.accessFor(ctx.caller, node);
}

function grants(a: Access, need: readonly Need[]): boolean {
  return need.every((n) => a[n]);
}

/**
 * The node at `path` if the caller has `need` on it. Otherwise EACCES or ENOENT, decided as
 * core.c errno_from_parents does: "If it's going to fail, however, we don't want the errno to
 * indicate any information about the node" — the nearest existing ancestor must grant `need`
 * for the caller to learn that the node is missing (or denied rather than hidden).
 */
export function getNode(ctx: OpContext, path: string, need: readonly Need[]): XsNode {
  const node = ctx.cs.get(path);
  if (node !== undefined && grants(accessOf(ctx, node), need)) return node;
  const err = node === undefined ? 'ENOENT' : 'EACCES';
  throw new XsError(ancestorGrants(ctx, path, need) ? err : 'EACCES');
}

/** Does the nearest existing ancestor of `path` grant `need`? (Iterative: no recursion on depth.) */
export function ancestorGrants(ctx: OpContext, path: string, need: readonly Need[]): boolean {
  let p = parentOf(path);
  while (p !== undefined) {
    const node = ctx.cs.get(p);
    if (node !== undefined) return grants(accessOf(ctx, node), need);
    p = parentOf(p);
  }
  return false;
}

/** core.c get_parent(): like parentPath, and a special `@name` has the root as its parent. */
export function parentOf(path: string): string | undefined {
  if (!path.startsWith('@')) return parentPath(path);
  const i = path.lastIndexOf('/');
  return i < 0 ? '/' : path.slice(0, i);
}

/** Like getNode, but a missing node is `undefined` (ENOENT would have been the answer). */
export function findNode(ctx: OpContext, path: string, need: readonly Need[]): XsNode | undefined {
  try {
    return getNode(ctx, path, need);
  } catch (e) {
    if (e instanceof XsError && e.errorName === 'ENOENT') return undefined;
    throw e;
  }
}
