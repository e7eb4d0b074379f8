/**
 * Payload strings. Xenstore payloads are "a list of NUL-terminated strings" (xenstore.txt);
 * the bytes are opaque to the protocol (paths are ASCII by rule, tokens may be any non-NUL
 * byte). We carry them as *byte strings*: one JS char per byte (latin1), so decoding and
 * re-encoding is exact for every byte. A caller that wants UTF-8 text converts at its edge.
 */

/** Bytes → byte string (one char per byte). */
export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Byte string → bytes. Chars above 0xff are a caller bug: RangeError (never silently mangled). */
export function latin1Bytes(s: string): Uint8Array {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) throw new RangeError(`not a byte string (char ${i} is U+${s.charCodeAt(i).toString(16)})`);
  }
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** Each string followed by its NUL: the `<foo>|*` form. */
export function strings(list: readonly string[]): Uint8Array {
  let len = 0;
  for (const s of list) len += s.length + 1;
  const out = new Uint8Array(len);
  let off = 0;
  for (const s of list) {
    out.set(latin1Bytes(s), off);
    off += s.length + 1;
  }
  return out;
}

/** `first\0rest` where `rest` is raw bytes with no terminator (WRITE's `<path>|<value|>`). */
export function stringThenBytes(first: string, rest: Uint8Array): Uint8Array {
  const head = latin1Bytes(first);
  const out = new Uint8Array(head.length + 1 + rest.length);
  out.set(head, 0);
  out.set(rest, head.length + 1);
  return out;
}

/**
 * The NUL-terminated strings of a payload, like C xenstored's get_strings(): bytes after
 * the last NUL are not a string and are reported in `trailing` (count), not in `list`.
 */
export function splitStrings(payload: Uint8Array): { list: string[]; trailing: number } {
  const list: string[] = [];
  let off = 0;
  for (;;) {
    const nul = payload.indexOf(0, off);
    if (nul < 0) break;
    list.push(latin1(payload.subarray(off, nul)));
    off = nul + 1;
  }
  return { list, trailing: payload.length - off };
}

/**
 * The single argument of a one-argument request, like C xenstored's onearg(): the payload
 * must be exactly one string and its NUL, else undefined (→ EINVAL).
 */
export function oneArg(payload: Uint8Array): string | undefined {
  const nul = payload.indexOf(0);
  if (nul < 0 || nul !== payload.length - 1) return undefined;
  return latin1(payload.subarray(0, nul));
}
