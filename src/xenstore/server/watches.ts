/**
 * Watch matching and delivery (C watch.c).
 *
 * "When a <path> is modified (including path creation, removal, contents change or permissions
 * change) this generates an event on the changed <path> … The event's path matches the watch's
 * <wpath> if it is a child of <wpath>" (xenstore.txt). A watch with a depth (WATCHDEPTH feature)
 * matches only that many levels below its path. Events go only to connections that can read the
 * node, its old permissions, or its parent (watch_permitted, XSA-115).
 */
import { depthBelow, encodeMessage, encodeWatchEvent, PAYLOAD_MAX } from '../protocol/index.js';
import type { Connection, Watch } from './connection.js';
import type { Caller, Domains } from './domains.js';
import type { NodeReader, XsNode } from './tree.js';

export interface StoreEvent {
  readonly path: string;
  /** Only watches exactly on `path` (a node removed because an ancestor was). */
  readonly exact: boolean;
  /** The node before and after the change (either may be missing). */
  readonly before?: XsNode;
  readonly after?: XsNode;
}

export function watchMatches(w: Watch, ev: StoreEvent): boolean {
  if (ev.exact) return w.path === ev.path;
  const d = depthBelow(w.path, ev.path);
  return d >= 0 && (w.depth === undefined || d <= w.depth);
}

/** May `caller` hear about `ev`? Readable before, after, or through its parent. */
export function watchPermitted(domains: Domains, reader: NodeReader, caller: Caller, ev: StoreEvent, parentPath: string | undefined): boolean {
  if (ev.before !== undefined && domains.accessFor(caller, ev.before).read) return true;
  if (ev.after !== undefined && domains.accessFor(caller, ev.after).read) return true;
  if (parentPath === undefined) return false;
  const parent = reader.get(parentPath);
  return parent !== undefined && domains.accessFor(caller, parent).read;
}

/** The framed WATCH_EVENT for `path` as this watch reports it, or undefined if it would exceed the payload limit (XSA-324: dropped). */
export function eventMessage(w: Watch, path: string): Uint8Array | undefined {
  const reported = path.slice(w.prefixLen);
  if (reported.length + w.token.length + 2 > PAYLOAD_MAX) return undefined;
  const ev = encodeWatchEvent(reported, w.token);
  return encodeMessage({ type: ev.type, reqId: 0, txId: 0, payload: ev.payload });
}

/** Is this one of the special `@…` watch paths (excluded from deduplication, like C)? */
export function isSpecialPath(path: string): boolean {
  return path.startsWith('@');
}

/** Queue the event on every watch of `conn` it matches; returns how many were queued. */
export function deliver(conn: Connection, ev: StoreEvent, deadline: number, match = watchMatches): number {
  let n = 0;
  for (const w of conn.watches.values()) {
    if (!match(w, ev)) continue;
    const msg = eventMessage(w, ev.path);
    if (msg === undefined) continue;
    conn.queueEvent(msg, isSpecialPath(ev.path), deadline);
    n++;
  }
  return n;
}
