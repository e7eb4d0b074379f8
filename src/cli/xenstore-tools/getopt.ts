/**
 * GNU getopt_long, as far as Xen's xenstore-* tools use it: the same permutation, clustering,
 * abbreviation and diagnostics (glibc 2.36 wording), so that every command line is accepted or
 * refused exactly as by Xen's binary.
 *
 * Like the C caller, this never stops on a bad option: a diagnostic is printed and the option is
 * skipped (xenstore_client.c has no `case '?'`).
 */

export interface LongOption {
  readonly name: string;
  readonly hasArg: boolean;
  readonly short: string;
}

/** An option getopt returned, or a diagnostic it printed, in command-line order. */
export type GetoptItem = { readonly short: string; readonly arg?: string } | { readonly error: string };

export interface GetoptResult {
  /** Options and diagnostics in the order getopt_long produces them. */
  readonly items: GetoptItem[];
  /** The operands, in order, after GNU's permutation. */
  readonly operands: string[];
}

interface Spec {
  readonly shorts: ReadonlyMap<string, boolean>;
  readonly longs: readonly LongOption[];
  /** The name getopt prints in its messages: the argv[0] of the vector it was given. */
  readonly progname: string;
}

/** Parse "hfspturn:R"-style option letters: a letter followed by ':' takes an argument. */
function parseShorts(optstring: string): Map<string, boolean> {
  const m = new Map<string, boolean>();
  for (let i = 0; i < optstring.length; i++) {
    const ch = optstring[i]!;
    const hasArg = optstring[i + 1] === ':';
    m.set(ch, hasArg);
    if (hasArg) i++;
  }
  return m;
}

export function getoptLong(
  progname: string,
  args: readonly string[],
  optstring: string,
  longs: readonly LongOption[],
  posixlyCorrect = false,
): GetoptResult {
  const spec: Spec = { shorts: parseShorts(optstring), longs, progname };
  const res: GetoptResult = { items: [], operands: [] };
  let i = 0;
  while (i < args.length) {
    const a = args[i]!;
    if (a === '--') {
      res.operands.push(...args.slice(i + 1));
      break;
    }
    if (a.length < 2 || a[0] !== '-') {
      if (posixlyCorrect) {
        res.operands.push(...args.slice(i));
        break;
      }
      res.operands.push(a);
      i++;
      continue;
    }
    i = a[1] === '-' ? parseLong(spec, args, i, res) : parseShortCluster(spec, args, i, res);
  }
  return res;
}

/** One `-abc` element (and its argument element, if the last letter takes one). */
function parseShortCluster(spec: Spec, args: readonly string[], i: number, res: GetoptResult): number {
  const a = args[i]!;
  for (let k = 1; k < a.length; k++) {
    const ch = a[k]!;
    const hasArg = spec.shorts.get(ch);
    if (hasArg === undefined || ch === ':') {
      res.items.push({ error: `${spec.progname}: invalid option -- '${ch}'` });
      continue;
    }
    if (!hasArg) {
      res.items.push({ short: ch });
      continue;
    }
    if (k + 1 < a.length) {
      res.items.push({ short: ch, arg: a.slice(k + 1) });
      return i + 1;
    }
    if (i + 1 < args.length) {
      res.items.push({ short: ch, arg: args[i + 1]! });
      return i + 2;
    }
    res.items.push({ error: `${spec.progname}: option requires an argument -- '${ch}'` });
    return i + 1;
  }
  return i + 1;
}

/** One `--name[=value]` element (and its argument element when needed). */
function parseLong(spec: Spec, args: readonly string[], i: number, res: GetoptResult): number {
  const text = args[i]!.slice(2);
  const eq = text.indexOf('=');
  const name = eq < 0 ? text : text.slice(0, eq);
  const found = findLong(spec, name, text, res);
  if (found === undefined) return i + 1;
  if (!found.hasArg) {
    if (eq >= 0) res.items.push({ error: `${spec.progname}: option '--${found.name}' doesn't allow an argument` });
    else res.items.push({ short: found.short });
    return i + 1;
  }
  if (eq >= 0) {
    res.items.push({ short: found.short, arg: text.slice(eq + 1) });
    return i + 1;
  }
  if (i + 1 < args.length) {
    res.items.push({ short: found.short, arg: args[i + 1]! });
    return i + 2;
  }
  res.items.push({ error: `${spec.progname}: option '--${found.name}' requires an argument` });
  return i + 1;
}

/** Exact name first, else the unique option it abbreviates; diagnostics otherwise. */
function findLong(spec: Spec, name: string, text: string, res: GetoptResult): LongOption | undefined {
  const exact = spec.longs.find((o) => o.name === name);
  if (exact !== undefined) return exact;
  // An empty name ("--=x") abbreviates every option, as in glibc.
  const matches = spec.longs.filter((o) => o.name.startsWith(name));
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) {
    res.items.push({ error: `${spec.progname}: unrecognized option '--${text}'` });
    return undefined;
  }
  const list = matches.map((o) => ` '--${o.name}'`).join('');
  res.items.push({ error: `${spec.progname}: option '--${text}' is ambiguous; possibilities:${list}` });
  return undefined;
}
