/**
 * Value escaping of Xen's xenstore-* tools (xenstore_client.c `sanitise_value` /
 * `unsanitise_value`, Xen 4.17), byte for byte.
 *
 * Output side (read, ls): printable ASCII 0x20..0x7e other than `\` passes through; `\t \n \r \\`
 * get their letter; bytes below 010 are `\` + three octal digits; every other byte is `\x` + two
 * lowercase hex digits.
 *
 * Input side (write): the reverse, with the quirks of the C code kept, because scripts written
 * against Xen's tool depend on them: `\x` and `\NNN` are read with sscanf("%2x") / ("%3o"), an
 * unknown escape yields the escaped character itself, and a trailing lone `\` yields a NUL byte.
 *
 * Strings here are "byte strings": one char per byte (latin1), so lengths and precisions count
 * bytes as printf does.
 */

/** sanitise_value(): the escaped form of a raw value, as a byte string (pure ASCII). */
export function sanitise(value: Uint8Array): string {
  let out = '';
  for (const c of value) {
    if (c >= 0x20 && c <= 0x7e && c !== 0x5c) {
      out += String.fromCharCode(c);
      continue;
    }
    switch (c) {
      case 0x09:
        out += '\\t';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      default:
        out += c < 0o10 ? `\\${c.toString(8).padStart(3, '0')}` : `\\x${c.toString(16).padStart(2, '0')}`;
    }
  }
  return out;
}

const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

function digitValue(c: number, base: number): number {
  let v = -1;
  if (c >= 0x30 && c <= 0x39) v = c - 0x30;
  else if (c >= 0x61 && c <= 0x66) v = c - 0x61 + 10;
  else if (c >= 0x41 && c <= 0x46) v = c - 0x41 + 10;
  return v >= 0 && v < base ? v : -1;
}

/**
 * sscanf(in + at, "%<width>x" or "%<width>o" "%n"): glibc skips leading white space (not counted
 * in the width), takes an optional sign and, for hex, a `0x` prefix, all inside the width.
 * Returns the value and the bytes consumed, or undefined when no number was converted.
 */
export function scanUnsigned(
  input: Uint8Array,
  at: number,
  width: number,
  base: 8 | 16,
): { value: number; consumed: number } | undefined {
  let i = at;
  while (i < input.length && isSpace(input[i]!)) i++;
  let left = width;
  let negative = false;
  if (left > 0 && (input[i] === 0x2b || input[i] === 0x2d)) {
    negative = input[i] === 0x2d;
    i++;
    left--;
  }
  let value = 0;
  let digits = 0;
  if (base === 16 && left > 0 && input[i] === 0x30) {
    // "0" is a digit on its own; "0x" is a prefix when the width leaves room for it.
    i++;
    left--;
    digits++;
    if (left > 0 && (input[i] === 0x78 || input[i] === 0x58)) {
      i++;
      left--;
    }
  }
  while (left > 0 && i < input.length) {
    const d = digitValue(input[i]!, base);
    if (d < 0) break;
    value = value * base + d;
    digits++;
    i++;
    left--;
  }
  if (digits === 0) return undefined;
  return { value: negative ? -value >>> 0 : value >>> 0, consumed: i - at };
}

/** unsanitise_value(): the bytes `xenstore-write` sends for an escaped argument. */
export function unsanitise(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  // The C loop stops at the argument's terminating NUL; argv strings never contain one.
  let i = 0;
  while (i < input.length) {
    let c = input[i++]!;
    if (c === 0x5c) {
      c = i < input.length ? input[i++]! : 0;
      c = unescapeOne(input, c, i, (n) => (i += n));
    }
    out.push(c & 0xff);
  }
  return Uint8Array.from(out);
}

/** The byte for the escape `\<c>`, `c` already consumed; `advance` moves past extra input. */
function unescapeOne(input: Uint8Array, c: number, at: number, advance: (n: number) => void): number {
  switch (c) {
    case 0x74: // t
      return 0x09;
    case 0x6e: // n
      return 0x0a;
    case 0x72: // r
      return 0x0d;
    case 0x5c:
      return 0x5c;
    case 0x78: {
      // x: "%2x"; when nothing converts, c keeps 'x' and no input is consumed.
      const r = scanUnsigned(input, at, 2, 16);
      if (r === undefined) return c;
      advance(r.consumed);
      return r.value;
    }
    case 0: // a trailing lone backslash: the C code writes the NUL it found
      return 0;
    default:
      if (c >= 0x30 && c <= 0x37) {
        // The digit itself starts the "%3o" conversion, which therefore always succeeds.
        const r = scanUnsigned(input, at - 1, 3, 8)!;
        advance(r.consumed - 1);
        return r.value;
      }
      return c;
  }
}
