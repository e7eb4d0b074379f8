/**
 * Path rules (docs/misc/xenstore.txt): "The permitted character for paths set is ASCII
 * alphanumerics and plus the four punctuation characters -/_@ … Doubled slashes and trailing
 * slashes (except to specify the root) are forbidden. The empty path is also forbidden."
 * A path not starting with `/` is relative to the caller's home, /local/domain/<domid>;
 * `@…` names the special watch nodes.
 */
import { ABS_PATH_MAX } from './ops.js';

export const SPECIAL_INTRODUCE = '@introduceDomain';
export const SPECIAL_RELEASE = '@releaseDomain';

export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/** ASCII alphanumerics and -/_@ only. */
export function validPathChars(path: string): boolean {
  return /^[A-Za-z0-9\-/_@]*$/.test(path);
}

/** Absolute paths are made canonical by prefixing the home of relative ones. */
export function isRelative(path: string): boolean {
  return !path.startsWith('/') && !path.startsWith('@');
}

export function canonicalPath(path: string, homeDomid: number): string {
  return isRelative(path) ? `${domainPath(homeDomid)}/${path}` : path;
}

/**
 * Shape check of a canonical path (no length quota; that is per-domain policy): starts with
 * `/` (or `@` where special names are allowed), no `//`, no trailing `/` except the root,
 * allowed characters only, at most XENSTORE_ABS_PATH_MAX bytes.
 */
export function isValidCanonicalPath(path: string, allowSpecial: boolean): boolean {
  if (!path.startsWith('/') && !(allowSpecial && path.startsWith('@'))) return false;
  if (path.endsWith('/') && path !== '/') return false;
  if (path.includes('//')) return false;
  if (path.length > ABS_PATH_MAX) return false;
  return validPathChars(path);
}

/**
 * The length C xenstored holds against the `path-max` quota: for /local/domain/<id>/rest only
 * `rest` counts, so a guest's relative paths get the full XENSTORE_REL_PATH_MAX (XSA-323).
 */
export function quotaPathLength(path: string): number {
  const m = /^\/local\/domain\/[0-9]{1,5}\//.exec(path);
  return m === null ? path.length : path.length - m[0].length;
}

/** The path as the client gave it: relative again if the watch was registered relative. */
export function relativeTo(path: string, homeDomid: number): string {
  const home = `${domainPath(homeDomid)}/`;
  return path.startsWith(home) ? path.slice(home.length) : path;
}

/** `/a/b/c` → `/a/b`; `/a` → `/`; the root has no parent. */
export function parentPath(path: string): string | undefined {
  if (path === '/' || !path.startsWith('/')) return undefined;
  const i = path.lastIndexOf('/');
  return i === 0 ? '/' : path.slice(0, i);
}

/** Last component of a canonical path (`''` for the root). */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Is `child` equal to `parent` or below it ("a child of itself" counts, xenstore.txt)? */
export function isPathPrefix(parent: string, child: string): boolean {
  if (parent === child) return true;
  if (parent === '/') return child.startsWith('/');
  return child.startsWith(parent) && child.charCodeAt(parent.length) === 0x2f;
}

/** Components between `parent` and `child` (0 when equal); -1 if child is not below parent. */
export function depthBelow(parent: string, child: string): number {
  if (!isPathPrefix(parent, child)) return -1;
  if (parent === child) return 0;
  const rest = parent === '/' ? child.slice(1) : child.slice(parent.length + 1);
  let n = 1;
  for (let i = 0; i < rest.length; i++) if (rest.charCodeAt(i) === 0x2f) n++;
  return n;
}
