/**
 * What each xenstore-* mode does (xenstore_client.c `perform`, Xen 4.17), over our client.
 * Messages, their order, and the requests sent follow the C code; WHY-comments mark the quirks
 * kept on purpose.
 */
import { XenpvError, errorCode } from '../../base/index.js';
import type { XsPerm } from '../../xenstore/protocol/index.js';
import type { XsClient, XsTransaction } from '../../xenstore/client/index.js';
import { sanitise, unsanitise } from './escape.js';
import { bytesOf, type ToolRun } from './run.js';

export type Mode = 'chmod' | 'exists' | 'list' | 'ls' | 'read' | 'rm' | 'write' | 'watch';

export interface Flags {
  prefix: boolean;
  tidy: boolean;
  upto: boolean;
  recurse: boolean;
  raw: boolean;
  /** -n: -1 = forever. */
  watchCount: number;
}

export interface Perform {
  readonly run: ToolRun;
  readonly client: XsClient;
  readonly tx: XsTransaction | undefined;
  readonly flags: Flags;
}

/** The value of a request, or the XenpvError it failed with (bugs still throw). */
export async function attempt<T>(p: Promise<T>): Promise<T | XenpvError> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof XenpvError) return err;
    throw err;
  }
}

export async function doRead(c: Perform, keys: readonly string[]): Promise<number> {
  for (const key of keys) {
    const val = await attempt(c.client.read(key, c.tx));
    if (val instanceof XenpvError) {
      c.run.warnx(`couldn't read path ${key}`);
      return 1;
    }
    if (c.flags.prefix) c.run.output(`${key}: `);
    if (c.flags.raw) c.run.outputRaw(val);
    else c.run.output(`${sanitise(val)}\n`);
  }
  return 0;
}

export async function doWrite(c: Perform, pairs: readonly string[]): Promise<number> {
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const key = pairs[i]!;
    const spec = bytesOf(pairs[i + 1]!);
    const value = c.flags.raw ? spec : unsanitise(spec);
    if ((await attempt(c.client.write(key, value, c.tx))) instanceof XenpvError) {
      c.run.warnx(`could not write path ${key}`);
      return 1;
    }
  }
  return 0;
}

export async function doExists(c: Perform, keys: readonly string[]): Promise<number> {
  for (const key of keys) {
    if ((await attempt(c.client.read(key, c.tx))) instanceof XenpvError) return 1;
  }
  return 0;
}

/**
 * `-t`: after removing a node, remove its parent too when that parent now has an empty value
 * and no children, and so on up the tree.
 */
export async function doRm(c: Perform, keys: readonly string[]): Promise<number> {
  for (const key of keys) {
    let path = key;
    for (;;) {
      if ((await attempt(c.client.rm(path, c.tx))) instanceof XenpvError) {
        c.run.warnx(`could not remove path ${path}`);
        return 1;
      }
      if (!c.flags.tidy) break;
      const slash = path.lastIndexOf('/');
      if (slash < 0) break;
      path = path.slice(0, slash); // "/a" tidies "" next, which xenstored refuses: the walk stops
      if (!(await isEmptyLeaf(c, path))) break;
    }
  }
  return 0;
}

async function isEmptyLeaf(c: Perform, path: string): Promise<boolean> {
  const val = await attempt(c.client.read(path, c.tx));
  if (val instanceof XenpvError || val.length !== 0) return false;
  const children = await attempt(c.client.directory(path, c.tx));
  return !(children instanceof XenpvError) && children.length === 0;
}

export async function doList(c: Perform, keys: readonly string[]): Promise<number> {
  for (const key of keys) {
    const list = await attempt(c.client.directory(key, c.tx));
    if (list instanceof XenpvError) {
      c.run.warnx(`could not list path ${key}`);
      return 1;
    }
    for (const name of list) c.run.output(c.flags.prefix ? `${key}/${name}\n` : `${name}\n`);
  }
  return 0;
}

/** chmod's mode words: `<n|r|w|b><domid>`, the domid read with atoi(). */
export function parseModes(run: ToolRun, words: readonly string[]): XsPerm[] {
  return words.map((w) => {
    const c = w.charAt(0);
    if (c !== 'n' && c !== 'r' && c !== 'w' && c !== 'b') {
      // printf("%c") of an empty word's NUL prints that NUL byte.
      run.errx(1, `Invalid permission specification: '${w === '' ? '\0' : c}'`);
    }
    return { access: c, domid: atoi(w.slice(1)) };
  });
}

/** atoi(): optional white space and sign, then decimal digits; int32 wrap-around like the C cast. */
export function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]*)/.exec(s)!;
  let v = 0;
  for (const d of m[2]!) v = (v * 10 + Number(d)) % 2 ** 32;
  return (m[1] === '-' ? -v : v) | 0;
}

/** snprintf(buf, MAX_PATH_LEN = 256, "%s/%s"): the C code cuts child paths at 255 bytes. */
const MAX_PATH_LEN = 256;

export async function doChmod(c: Perform, path: string, perms: readonly XsPerm[], upto: boolean, recurse: boolean): Promise<void> {
  if (path === '') return;
  const set = await attempt(c.client.setPerms(path, perms, c.tx));
  if (set instanceof XenpvError) c.run.err(1, `Error occurred setting permissions on '${path}'`, set.code);
  if (upto) {
    const slash = path.lastIndexOf('/');
    if (slash < 0) c.run.errx(1, `Unable to locate path separator '/' in '${path}'`);
    await doChmod(c, path.slice(0, slash), perms, true, false);
  }
  if (recurse) {
    const children = await attempt(c.client.directory(path, c.tx));
    if (children instanceof XenpvError) return; // silently, as the C code
    for (const name of children) {
      await doChmod(c, `${path}/${name}`.slice(0, MAX_PATH_LEN - 1), perms, false, true);
    }
  }
}

/**
 * Watch every key (token = the key), then print each event's path, `-n` events in all
 * (the initial event of each watch counts).
 */
export async function doWatch(c: Perform, keys: readonly string[]): Promise<number> {
  const watch = c.client.watchAll(keys.map((k) => ({ path: k, token: k })));
  const ok = await attempt(watch.ready);
  if (ok instanceof XenpvError) {
    const failed = typeof ok.context['path'] === 'string' ? ok.context['path'] : keys[0]!;
    c.run.errx(1, `Unable to add watch on ${failed}\n`);
  }
  const max = c.flags.watchCount;
  for (let count = 0; max === -1 || count < max; count++) {
    const next = await attempt(watch.next());
    if (next instanceof XenpvError) {
      // The C loop spins on a dead connection (xs_read_watch keeps failing). Counting down
      // to exit 0 is what it ends with under -n; without -n we stop instead of spinning.
      if (max !== -1) return 0;
      c.run.errx(1, `lost the connection to xenstored (${errorCode(next)})`);
    }
    if (next.done === true) return 0;
    c.run.direct(`${next.value.path}\n`);
    c.run.flush();
  }
  return 0;
}
