/**
 * Permission strings: `<c><domid>`, c ∈ {n none, r read, w write, b both} (xenstore.txt
 * GET_PERMS/SET_PERMS). The first entry of a node's list names the owner and gives the access
 * of every domain not listed after it.
 */
export type XsAccess = 'n' | 'r' | 'w' | 'b';

export interface XsPerm {
  readonly domid: number;
  readonly access: XsAccess;
}

export function canRead(a: XsAccess): boolean {
  return a === 'r' || a === 'b';
}

export function canWrite(a: XsAccess): boolean {
  return a === 'w' || a === 'b';
}

/**
 * C xenstore_strings_to_perms parses the domid with strtol(…, 0): decimal, `0x` hex or `0`
 * octal; it must not be empty and nothing may follow. We accept the same forms but refuse
 * signs, blanks, and values above 65535 (a domid is a u16) rather than wrapping them.
 */
function parseStrtol0(s: string): number | undefined {
  let m: RegExpExecArray | null;
  let v: number;
  if ((m = /^0[xX]([0-9a-fA-F]+)$/.exec(s)) !== null) v = parseInt(m[1]!, 16);
  else if (/^0[0-7]*$/.test(s)) v = parseInt(s, 8);
  else if (/^[1-9][0-9]*$/.test(s)) v = parseInt(s, 10);
  else return undefined;
  return Number.isSafeInteger(v) && v <= 0xffff ? v : undefined;
}

export function parsePerm(s: string): XsPerm | undefined {
  const c = s.charAt(0);
  if (c !== 'n' && c !== 'r' && c !== 'w' && c !== 'b') return undefined;
  const domid = parseStrtol0(s.slice(1));
  return domid === undefined ? undefined : { domid, access: c };
}

/** A whole list, or undefined if any entry is malformed or the list is empty. */
export function parsePerms(list: readonly string[]): XsPerm[] | undefined {
  if (list.length === 0) return undefined;
  const out: XsPerm[] = [];
  for (const s of list) {
    const p = parsePerm(s);
    if (p === undefined) return undefined;
    out.push(p);
  }
  return out;
}

export function formatPerm(p: XsPerm): string {
  return `${p.access}${p.domid}`;
}
