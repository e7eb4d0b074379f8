/**
 * The data operations: READ, DIRECTORY, DIRECTORY_PART, GET_PERMS, WRITE, MKDIR, RM, SET_PERMS
 * (docs/misc/xenstore.txt "Database read, write and permissions operations"; core.c).
 */
import { baseName, formatPerm, OK_PAYLOAD, PAYLOAD_MAX, strings, XsError } from '../protocol/index.js';
import { getNode, findNode, parentOf, resolvePath } from './access.js';
import type { ChangeSet } from './changeset.js';
import type { Handler, OpContext, OpReply, RequestOf } from './context.js';
import { DOMID_ANY } from './domains.js';
import { nodeAccSize, walkSubtree, type NodePerm, type XsNode } from './tree.js';
import { XENSTORE_SERVER_FEATURE_DOMID_ANY } from './features.js';

const ok: OpReply = { payload: OK_PAYLOAD };

export const doRead: Handler<RequestOf<'read'>> = (ctx, req) => {
  const node = getNode(ctx, resolvePath(ctx, req.path, false), ['read']);
  return { payload: node.value };
};

export const doDirectory: Handler<RequestOf<'directory'>> = (ctx, req) => {
  const node = getNode(ctx, resolvePath(ctx, req.path, false), ['read']);
  return { payload: strings(node.children) };
};

/**
 * DIRECTORY_PART `<path>|<offset>` → `<gencnt>|<child>|*`: as many whole child names from byte
 * `offset` of the child list as fit, and an extra empty string once the list is complete.
 */
export const doDirectoryPart: Handler<RequestOf<'directoryPart'>> = (ctx, req) => {
  const node = getNode(ctx, resolvePath(ctx, req.path, false), ['read']);
  const gen = `${node.generation}`;
  const all = strings(node.children);
  if (req.offset >= all.length) return { payload: strings([gen, '']) };
  const maxLen = PAYLOAD_MAX - (gen.length + 1) - 1;
  let end = req.offset;
  while (end < all.length) {
    const nul = all.indexOf(0, end);
    if (nul + 1 - req.offset > maxLen) break;
    end = nul + 1;
  }
  const done = end === all.length;
  const head = strings([gen]);
  const out = new Uint8Array(head.length + (end - req.offset) + (done ? 1 : 0));
  out.set(head, 0);
  out.set(all.subarray(req.offset, end), head.length);
  return { payload: out };
};

export const doGetPerms: Handler<RequestOf<'getPerms'>> = (ctx, req) => {
  const node = getNode(ctx, resolvePath(ctx, req.path, true), ['read']);
  return { payload: strings(node.perms.map(formatPerm)) };
};

export const doWrite: Handler<RequestOf<'write'>> = (ctx, req) => {
  const path = resolvePath(ctx, req.path, false);
  const node = findNode(ctx, path, ['write']);
  if (node === undefined) createNode(ctx, path, req.value);
  else putNode(ctx, path, { ...node, value: req.value });
  ctx.cs.queueEvent(path, false);
  return ok;
};

/** "If <path> or any parent already exists, its value is left unchanged." */
export const doMkdir: Handler<RequestOf<'mkdir'>> = (ctx, req) => {
  const path = resolvePath(ctx, req.path, false);
  if (findNode(ctx, path, ['write']) === undefined) {
    createNode(ctx, path, new Uint8Array(0));
    ctx.cs.queueEvent(path, false);
  }
  return ok;
};

/** "It is not an error if <path> does not exist, but it _is_ an error if <path>'s immediate parent does not exist either." */
export const doRm: Handler<RequestOf<'rm'>> = (ctx, req) => {
  const path = resolvePath(ctx, req.path, false);
  const node = findNode(ctx, path, ['write']);
  if (node === undefined) {
    const parent = parentOf(path);
    if (parent === undefined || ctx.cs.get(parent) === undefined) throw new XsError('ENOENT');
    return ok;
  }
  if (path === '/') throw new XsError('EINVAL', 'cannot remove the root');
  removeSubtree(ctx.cs, path);
  return ok;
};

export const doSetPerms: Handler<RequestOf<'setPerms'>> = (ctx, req) => {
  if (!ctx.caller.privileged && req.perms.length > ctx.d.quota(ctx.caller.domid, 'nodePermissions')) {
    throw new XsError('ENOSPC', 'node-permissions');
  }
  const perms = resolvePermRefs(ctx, req.perms);
  if (perms[0]!.ignored === true) throw new XsError('ENOENT', 'owner domain does not exist');
  const path = resolvePath(ctx, req.path, true);
  const node = getNode(ctx, path, ['write', 'owner']);
  // "Unprivileged domains may not change the owner" (XSA-352: no dumping quota on others).
  if (!ctx.caller.privileged && perms[0]!.domid !== node.perms[0]!.domid) throw new XsError('EPERM');
  putNode(ctx, path, { ...node, perms });
  ctx.cs.queueEvent(path, false);
  return ok;
};

/**
 * domain.c domain_alloc_permrefs(): a domain named by an entry gets a record now if it exists,
 * else the entry is kept but ignored; DOMID_ANY needs the writer's DOMID_ANY feature.
 */
function resolvePermRefs(ctx: OpContext, perms: readonly { domid: number; access: NodePerm['access'] }[]): NodePerm[] {
  return perms.map((p) => {
    if (p.domid === DOMID_ANY) {
      const allowed = (ctx.d.featuresOf(ctx.conn) & XENSTORE_SERVER_FEATURE_DOMID_ANY) !== 0;
      return allowed ? { ...p } : { ...p, ignored: true };
    }
    if (ctx.d.domains.get(p.domid) !== undefined || ctx.d.domains.isPrivileged(p.domid)) return { ...p };
    if (!ctx.d.domainExists(p.domid)) return { ...p, ignored: true };
    ctx.d.domains.ensure(p.domid);
    return { ...p };
  });
}

/** Store a node version, holding unprivileged writers to the `node-size` quota. */
export function putNode(ctx: OpContext, path: string, node: XsNode, noQuota = false): void {
  if (!noQuota && !ctx.caller.privileged && nodeAccSize(node) > ctx.d.quota(ctx.caller.domid, 'nodeSize')) {
    throw new XsError('ENOSPC', 'node-size');
  }
  ctx.cs.put(path, node);
}

/**
 * core.c create_node/construct_node: create `path` and its missing parents, each inheriting
 * its parent's permissions ("Inherit permissions, unpriv domains own what they create").
 * Iterative over the missing levels.
 */
export function createNode(ctx: OpContext, path: string, value: Uint8Array): void {
  const missing: string[] = [];
  let parentPath: string | undefined = path;
  let parent: XsNode | undefined;
  while (parent === undefined) {
    missing.push(parentPath!);
    parentPath = parentOf(parentPath!);
    if (parentPath === undefined) throw new XsError('EINVAL');
    parent = ctx.cs.get(parentPath);
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    const p = missing[i]!;
    checkNodeQuota(ctx);
    putNode(ctx, parentPath!, { ...parent!, children: [...parent!.children, baseName(p)] });
    const child: XsNode = { value: i === 0 ? value : new Uint8Array(0), perms: inheritPerms(ctx, parent!), children: [], generation: 0 };
    putNode(ctx, p, child);
    parentPath = p;
    parent = child;
  }
}

function inheritPerms(ctx: OpContext, parent: XsNode): NodePerm[] {
  const perms = parent.perms.map((p) => ({ ...p }));
  if (!ctx.caller.privileged) perms[0] = { domid: ctx.caller.domid, access: perms[0]!.access };
  return perms;
}

function checkNodeQuota(ctx: OpContext): void {
  if (ctx.caller.privileged) return;
  const domid = ctx.caller.domid;
  const owned = ctx.d.db.usageOf(domid).nodes + ctx.cs.nodesDelta(domid);
  if (owned >= ctx.d.quota(domid, 'nodes')) throw new XsError('ENOSPC', 'nodes');
}

/**
 * Remove `path` and everything below it, deepest first; each removed node fires its watches
 * ("exact" for the ones removed because an ancestor was). Removing a child never fails on quota.
 */
export function removeSubtree(cs: ChangeSet, path: string): void {
  const all = [...walkSubtree(cs, path)];
  for (let i = all.length - 1; i >= 0; i--) {
    const p = all[i]![0];
    cs.remove(p);
    cs.queueEvent(p, p !== path);
  }
  const pp = parentOf(path);
  const parent = pp === undefined ? undefined : cs.get(pp);
  if (pp === undefined || parent === undefined) return;
  const name = baseName(path);
  cs.put(pp, { ...parent, children: parent.children.filter((c) => c !== name) });
}
