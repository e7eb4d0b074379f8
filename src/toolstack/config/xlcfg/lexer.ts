/**
 * The xl.cfg lexer, token for token the rules of libxlu's flex scanner (libxlu_cfg_l.l):
 *
 *   [a-z][._0-9a-z]*          IDENT   (lower case only; dots for xl.conf's `vif.default.bridge`)
 *   [0-9][0-9a-fx]*           NUMBER  (kept as text: xl converts with strtol(…, 0) when a key
 *                                      is read, so `0x10` is hex, `010` octal; there are no
 *                                      floats and no signs: `1.5` and `-1` are lexical errors)
 *   '…' or "…"                STRING  (backslash escapes, no raw newline inside)
 *   [ \t]                     skipped
 *   , [ ] = += ;              punctuation
 *   \n  or  #… \n             NEWLINE (a comment ends the line)
 *   anything else             lexical error; `+ - . ( ) :` mean "this looks like Python"
 *
 * Two deliberate differences, both towards accepting what xl meant:
 * - a comment on the last line without a final newline is accepted (flex rejects it);
 * - `\xHH` and `\NNN` (octal) escapes produce the byte they name. libxlu's dequote parses
 *   them but never stores the result (and always rejects `\x`), which is a bug, not a format.
 */
import { ConfigError, type Position } from '../config-error.js';

export type TokenKind =
  | 'ident' | 'number' | 'string'
  | '[' | ']' | ',' | '=' | '+=' | ';'
  | 'newline' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** Source text of the token (for strings: including the quotes). */
  readonly text: string;
  /** Decoded value: the string's contents, the number's digits, the identifier. */
  readonly value: string;
  readonly pos: Position;
}

const PYTHON_CHARS = '+-.():';
const SINGLE: Readonly<Record<string, TokenKind>> = { ',': ',', '[': '[', ']': ']', '=': '=', ';': ';' };
const IDENT_RE = /[a-z][._0-9a-z]*/y;
const NUMBER_RE = /[0-9][0-9a-fx]*/y;

/** C's simple escapes as libxlu's dequote accepts them. */
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"', "'": "'", '\\': '\\',
  a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
};

export class Lexer {
  private offset = 0;
  private line = 1;
  private lineStart = 0;

  constructor(private readonly text: string, private readonly source: string) {}

  /** All tokens, ending with one `eof`. */
  static tokenize(text: string, source: string): Token[] {
    const lexer = new Lexer(text, source);
    const out: Token[] = [];
    for (;;) {
      const t = lexer.next();
      out.push(t);
      if (t.kind === 'eof') return out;
    }
  }

  next(): Token {
    this.skipBlanks();
    const pos = this.pos();
    const c = this.text[this.offset];
    if (c === undefined) return { kind: 'eof', text: '', value: '', pos };
    if (c === '\n') return this.newline(pos, 1);
    if (c === '#') return this.comment(pos);
    if (c === '"' || c === "'") return this.string(pos, c);
    if (c === '+' && this.text[this.offset + 1] === '=') return this.take('+=', 2, pos);
    const single = SINGLE[c];
    if (single !== undefined) return this.take(single, 1, pos);
    const ident = this.match(IDENT_RE);
    if (ident !== undefined) return this.take('ident', ident.length, pos);
    const num = this.match(NUMBER_RE);
    if (num !== undefined) return this.take('number', num.length, pos);
    throw this.lexicalError(pos);
  }

  private pos(): Position {
    return { line: this.line, col: this.offset - this.lineStart + 1, offset: this.offset };
  }

  private skipBlanks(): void {
    while (this.text[this.offset] === ' ' || this.text[this.offset] === '\t') this.offset++;
  }

  private match(re: RegExp): string | undefined {
    re.lastIndex = this.offset;
    const m = re.exec(this.text);
    return m === null ? undefined : m[0];
  }

  private take(kind: TokenKind, length: number, pos: Position): Token {
    const text = this.text.slice(this.offset, this.offset + length);
    this.offset += length;
    return { kind, text, value: text, pos };
  }

  private newline(pos: Position, length: number): Token {
    const text = this.text.slice(this.offset, this.offset + length);
    this.offset += length;
    this.line++;
    this.lineStart = this.offset;
    return { kind: 'newline', text, value: '', pos };
  }

  private comment(pos: Position): Token {
    const end = this.text.indexOf('\n', this.offset);
    if (end < 0) {
      // Accepted although flex would not: see the file comment.
      this.offset = this.text.length;
      return { kind: 'eof', text: '', value: '', pos };
    }
    return this.newline(pos, end + 1 - this.offset);
  }

  private string(pos: Position, quote: string): Token {
    let i = this.offset + 1;
    let value = '';
    for (;;) {
      const c = this.text[i];
      if (c === undefined || c === '\n') {
        throw ConfigError.at(this.source, pos, `unterminated string: no closing ${quote} before the end of the line`);
      }
      if (c === quote) break;
      if (c !== '\\') {
        value += c;
        i++;
        continue;
      }
      const [decoded, used] = this.escape(i, pos);
      value += decoded;
      i += used;
    }
    const text = this.text.slice(this.offset, i + 1);
    this.offset = i + 1;
    return { kind: 'string', text, value, pos };
  }

  /** Decodes the escape whose backslash is at `at`; returns the text and characters used. */
  private escape(at: number, stringPos: Position): [string, number] {
    const errPos: Position = { line: stringPos.line, col: stringPos.col + (at - stringPos.offset), offset: at };
    const nc = this.text[at + 1];
    if (nc === undefined || nc === '\n') {
      throw ConfigError.at(this.source, errPos, 'unterminated string: a backslash cannot continue a line');
    }
    const simple = SIMPLE_ESCAPES[nc];
    if (simple !== undefined) return [simple, 2];
    if (nc === 'x') {
      const hex = /^[0-9a-fA-F]{2}/.exec(this.text.slice(at + 2, at + 4));
      if (hex === null) {
        throw ConfigError.at(this.source, errPos, 'invalid hex escape in quoted string: \\x needs two hex digits');
      }
      return [String.fromCharCode(parseInt(hex[0], 16)), 4];
    }
    if (nc >= '0' && nc <= '7') {
      const oct = /^[0-7]{1,3}/.exec(this.text.slice(at + 1, at + 4)) as RegExpExecArray;
      const code = parseInt(oct[0], 8);
      if (code > 0xff) throw ConfigError.at(this.source, errPos, `octal escape \\${oct[0]} is larger than one byte`);
      return [String.fromCharCode(code), 1 + oct[0].length];
    }
    throw ConfigError.at(this.source, errPos, `invalid character after backslash in quoted string: \\${nc}`);
  }

  /** flex's lexerr state: the offending text runs to the next blank or newline. */
  private lexicalError(pos: Position): ConfigError {
    const rest = this.text.slice(this.offset);
    const word = /^[^ \t\n]*/.exec(rest)?.[0] ?? '';
    const c = rest[0] ?? '';
    let hint = '';
    if (c === '\r') hint = ' (carriage return: the file has DOS line endings, which xl.cfg does not allow)';
    else if (c === '.' && /[0-9]/.test(this.text[this.offset - 1] ?? '')) hint = ' (xl.cfg numbers are integers; quote the value to pass a string)';
    else if (/^[A-Z]/.test(c)) hint = ' (setting names are lower case)';
    else if (PYTHON_CHARS.includes(c)) hint = ' (this looks like Python, which xl.cfg no longer supports)';
    return ConfigError.at(this.source, pos, `lexical error near \`${printable(word)}'${hint}`);
  }
}

function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
