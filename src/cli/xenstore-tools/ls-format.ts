/**
 * One line of `xenstore-ls` output, exactly as xenstore_client.c `do_ls` prints it (Xen 4.17).
 *
 *   <indent><name> = "<escaped value>"[ . . . .  (perms)]
 *
 * - Indent: one space per depth; with `-f` the full path instead (and no indent).
 * - The name is cut to `maxWidth - 8 - indent` bytes (8 = strlen(` = "..."`)).
 * - When `maxWidth < linewid + rawValueLength + 8`, the escaped value is cut to
 *   `maxWidth - 8 - linewid` bytes and closed with `\..."` (the test uses the RAW length, the cut
 *   counts ESCAPED bytes: kept as the C code does it).
 * - With `-p`: after an uncut value, one space, then ". " padding up to column
 *   `min(desiredWidth, maxWidth)`, then `  (perm,perm,...)`. After a cut value, only the perms.
 * - A value that cannot be read prints `:` and a newline, and the perms (if any) follow on the
 *   next line: that is what the C code's `printf(":\n")` does.
 *
 * maxWidth is 80 when stdout is not a terminal, the terminal's columns - 2 when it is, and
 * INT_MAX/2 with `-f` (which also sets desiredWidth to 0). Byte strings throughout (latin1).
 */
import { sanitise } from './escape.js';

/** strlen(TAG) with TAG = ` = "..."`. */
const TAG_LEN = 8;
const INT_MAX_HALF = 0x3fffffff;

export interface LsLayout {
  readonly maxWidth: number;
  readonly desiredWidth: number;
  readonly wholePath: boolean;
}

/** The layout main() sets up: `-f`, else the terminal width when stdout is a TTY, else 80. */
export function lsLayout(flat: boolean, ttyColumns: number | undefined): LsLayout {
  if (flat) return { maxWidth: INT_MAX_HALF, desiredWidth: 0, wholePath: true };
  return { maxWidth: ttyColumns === undefined ? 80 : ttyColumns - 2, desiredWidth: 60, wholePath: false };
}

export interface LsEntry {
  /** The child's name (byte string). */
  readonly name: string;
  /** Its full path, as printed with `-f` (byte string). */
  readonly fullPath: string;
  readonly depth: number;
  /** The raw value, or undefined when reading it failed. */
  readonly value: Uint8Array | undefined;
}

/** printf("%.*s", precision, s): a negative precision means "no limit". */
function precise(s: string, precision: number): string {
  return precision >= 0 ? s.slice(0, precision) : s;
}

/**
 * The stdout bytes for one entry, up to (not including) the perms and the final newline.
 * Returns the text; the caller appends `permsSuffix(...)` when `-p` and then "\n".
 */
export function formatLsHead(e: LsEntry, layout: LsLayout, showPerms: boolean): string {
  let out = '';
  let linewid = 0;
  if (layout.wholePath) {
    out += e.fullPath; // fputs: the width counter is not advanced
  } else {
    out += ' '.repeat(Math.max(0, e.depth));
    linewid = Math.max(0, e.depth);
    const name = precise(e.name, layout.maxWidth - TAG_LEN - linewid);
    out += name;
    linewid += name.length;
  }
  if (e.value === undefined) return `${out}:\n`;
  const escaped = sanitise(e.value);
  // size_t comparison in C: a negative maxWidth converts to a huge value and never cuts.
  if (layout.maxWidth >= 0 && layout.maxWidth < linewid + e.value.length + TAG_LEN) {
    return `${out} = "${precise(escaped, layout.maxWidth - TAG_LEN - linewid)}\\..."`;
  }
  const shown = ` = "${escaped}"`;
  out += shown;
  linewid += shown.length;
  if (showPerms) {
    out += ' ';
    const stop = Math.min(layout.desiredWidth, layout.maxWidth);
    for (linewid++; linewid < stop; linewid++) out += linewid & 1 ? '.' : ' ';
  }
  return out;
}

/** `  (n0,r1)`: what follows the head when `-p` and the perms could be read. */
export function permsSuffix(perms: readonly string[]): string {
  return `  (${perms.join(',')})`;
}
