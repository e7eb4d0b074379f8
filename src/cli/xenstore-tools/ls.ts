/**
 * `xenstore-ls`: the tree below a path, depth first, one line per node (ls-format.ts), outside
 * any transaction, as xenstore_client.c `do_ls` walks it. Iterative (an explicit stack), so a
 * deep tree cannot exhaust the JS stack.
 */
import { XenpvError } from '../../base/index.js';
import { formatPerm } from '../../xenstore/protocol/index.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { formatLsHead, permsSuffix, type LsLayout } from './ls-format.js';
import { attempt } from './modes.js';
import type { ToolRun } from './run.js';

/** STRING_MAX = XENSTORE_ABS_PATH_MAX + 1024: the C buffer a child's full path is built in. */
const STRING_MAX = 3072 + 1024;

interface Frame {
  readonly path: string;
  readonly depth: number;
  readonly names: readonly string[];
  next: number;
}

export async function doLs(run: ToolRun, client: XsClient, root: string, layout: LsLayout, showPerms: boolean): Promise<void> {
  const top = await attempt(client.directory(root));
  if (top instanceof XenpvError) run.err(1, `xs_directory (${root})`, top.code);
  const stack: Frame[] = [{ path: root, depth: 0, names: top, next: 0 }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    const name = f.names[f.next++];
    if (name === undefined) {
      stack.pop();
      continue;
    }
    const full = await printEntry(run, client, f, name, layout, showPerms);
    const children = await attempt(client.directory(full));
    if (children instanceof XenpvError) {
      // "If a node disappears while recursing, silently move on" (ENOENT, EACCES only).
      if (children.code === 'ENOENT' || children.code === 'EACCES') continue;
      run.err(1, `xs_directory (${full})`, children.code);
    }
    stack.push({ path: full, depth: f.depth + 1, names: children, next: 0 });
  }
}

async function printEntry(run: ToolRun, client: XsClient, f: Frame, name: string, layout: LsLayout, showPerms: boolean): Promise<string> {
  const joined = `${f.path}${f.path.endsWith('/') ? '' : '/'}${name}`;
  // snprintf into STRING_MAX bytes: a longer path is cut, and not read ("truncated and thus invalid").
  const full = joined.slice(0, STRING_MAX - 1);
  const val = joined.length < STRING_MAX ? await attempt(client.read(full)) : undefined;
  const value = val instanceof XenpvError ? undefined : val;
  run.direct(formatLsHead({ name, fullPath: full, depth: f.depth, value }, layout, showPerms));
  if (showPerms) {
    const perms = await attempt(client.getPerms(full));
    if (perms instanceof XenpvError) {
      run.flush(); // keep the line and its warning together when both go to a terminal
      run.warn(`\ncould not access permissions for ${name}`, perms.code);
    } else {
      run.direct(permsSuffix(perms.map(formatPerm)));
    }
  }
  run.direct('\n');
  return full;
}
