/**
 * The xl.cfg grammar (libxlu_cfg_y.y), as recursive descent:
 *
 *   file       := stmt* [assignment]            (the last line needs no newline)
 *   stmt       := assignment endstmt | endstmt
 *   endstmt    := NEWLINE | ';'
 *   assignment := IDENT '=' value | IDENT '+=' value
 *   value      := atom | '[' nl* valuelist ']'
 *   atom       := STRING | NUMBER
 *   valuelist  := ε | values | values ',' nl*   (a trailing comma is allowed)
 *   values     := value nl* (',' nl* value nl*)*
 *
 * Lists may span lines (newlines and comments are allowed after `[`, after each item and
 * after each comma) and may nest (`vnuma`). Settings are stored as libxlu stores them:
 * a key set twice keeps the later value (no warning, as xl); `KEY += VALUE` appends to an
 * earlier list or concatenates to an earlier string (libxlu_cfg.c xlu__cfg_concat_vals),
 * and is a plain assignment when there is no earlier value.
 */
import { ConfigError, type Position } from '../config-error.js';
import { Lexer, type Token } from './lexer.js';

export interface XlString { readonly kind: 'string'; readonly value: string; readonly pos: Position }
/** A number as written (`512`, `0x200`); xl converts it only when a key is read as a number. */
export interface XlNumber { readonly kind: 'number'; readonly text: string; readonly pos: Position }
export interface XlList { readonly kind: 'list'; readonly items: readonly XlValue[]; readonly pos: Position }
export type XlValue = XlString | XlNumber | XlList;

export interface XlSetting {
  readonly key: string;
  readonly keyPos: Position;
  /** The source (file name or command-line argument) of the latest definition. */
  readonly source: string;
  /** `+=` if the latest definition appended: xl then refuses to read the key as a number. */
  readonly op: '=' | '+=';
  readonly value: XlValue;
}

export interface XlConfig {
  /** The main source, for messages about keys that are absent. */
  readonly source: string;
  /** In order of first definition; each holds its latest value. */
  readonly settings: Map<string, XlSetting>;
}

/** Lists nest (vnuma uses two levels); the bound only stops a hostile file exhausting the stack. */
export const MAX_LIST_DEPTH = 32;

export function parseXlConfig(text: string, source: string): XlConfig {
  const config: XlConfig = { source, settings: new Map() };
  addXlText(config, text, source);
  return config;
}

/**
 * Applies `key=value` arguments from a command line (`xl create guest.cfg 'memory=512'`).
 * xl appends them to the file's text, so they use the same grammar and later-wins rule;
 * each is parsed on its own here so an error names the argument rather than a line past
 * the end of the file.
 */
export function applyXlOverrides(config: XlConfig, overrides: readonly string[]): void {
  overrides.forEach((text, i) => addXlText(config, text, `<command line argument ${i + 1}>`));
}

function addXlText(config: XlConfig, text: string, source: string): void {
  const parser = new Parser(Lexer.tokenize(text, source), source);
  for (const s of parser.file()) store(config, s);
}

function store(config: XlConfig, s: XlSetting): void {
  const prev = config.settings.get(s.key);
  if (s.op === '+=' && prev !== undefined) {
    config.settings.set(s.key, { ...s, value: concat(prev.value, s.value, s.source) });
  } else {
    config.settings.set(s.key, s);
  }
}

function concat(prev: XlValue, add: XlValue, source: string): XlValue {
  if ((prev.kind === 'list') !== (add.kind === 'list')) {
    throw ConfigError.at(source, add.pos, `can't add [list] to "string" or vice versa`);
  }
  if (prev.kind === 'list' && add.kind === 'list') {
    return { kind: 'list', items: [...prev.items, ...add.items], pos: add.pos };
  }
  return { kind: 'string', value: atomText(prev) + atomText(add), pos: add.pos };
}

/** The text of an atom as xl sees it: numbers are strings until read as numbers. */
export function atomText(v: XlString | XlNumber | XlValue): string {
  if (v.kind === 'string') return v.value;
  if (v.kind === 'number') return v.text;
  throw new TypeError('atomText of a list');
}

class Parser {
  private i = 0;

  constructor(private readonly tokens: readonly Token[], private readonly source: string) {}

  file(): XlSetting[] {
    const out: XlSetting[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === 'eof') return out;
      if (t.kind === 'newline' || t.kind === ';') {
        this.i++;
        continue;
      }
      if (t.kind !== 'ident') throw this.error(t, `unexpected ${describe(t)}; expecting a setting name`);
      const s = this.assignment();
      out.push(s);
      this.endStatement(s.key);
    }
  }

  private peek(): Token {
    return this.tokens[this.i] as Token;
  }

  private advance(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }

  private error(t: Token, reason: string): ConfigError {
    return ConfigError.at(this.source, t.pos, reason);
  }

  private assignment(): XlSetting {
    const name = this.advance();
    const op = this.advance();
    if (op.kind !== '=' && op.kind !== '+=') {
      throw this.error(op, `expecting \`=' after \`${name.value}', found ${describe(op)}`);
    }
    const value = this.value(name.value, 0);
    return { key: name.value, keyPos: name.pos, source: this.source, op: op.kind, value };
  }

  private endStatement(key: string): void {
    const t = this.peek();
    if (t.kind === 'eof') return;
    if (t.kind === 'newline' || t.kind === ';') {
      this.i++;
      return;
    }
    throw this.error(t, `unexpected ${describe(t)} after the value of \`${key}'; expecting a newline or \`;'`);
  }

  private value(key: string, depth: number): XlValue {
    const t = this.advance();
    switch (t.kind) {
      case 'string': return { kind: 'string', value: t.value, pos: t.pos };
      case 'number': return { kind: 'number', text: t.text, pos: t.pos };
      case '[': return this.list(key, t, depth + 1);
      case 'ident':
        throw this.error(t, `unexpected identifier \`${t.value}' as the value of \`${key}'; strings must be quoted`);
      case 'newline': case 'eof':
        throw this.error(t, `missing value for \`${key}'`);
      default:
        throw this.error(t, `unexpected ${describe(t)}; expecting a value for \`${key}'`);
    }
  }

  private list(key: string, open: Token, depth: number): XlList {
    if (depth > MAX_LIST_DEPTH) throw this.error(open, `lists nested more than ${MAX_LIST_DEPTH} deep`);
    const items: XlValue[] = [];
    this.skipNewlines();
    if (this.peek().kind === ']') {
      this.i++;
      return { kind: 'list', items, pos: open.pos };
    }
    for (;;) {
      items.push(this.listItem(key, open, depth));
      this.skipNewlines();
      const t = this.advance();
      if (t.kind === ']') return { kind: 'list', items, pos: open.pos };
      if (t.kind !== ',') throw this.unclosed(t, open);
      this.skipNewlines();
      if (this.peek().kind === ']') {
        this.i++;
        return { kind: 'list', items, pos: open.pos };
      }
    }
  }

  private listItem(key: string, open: Token, depth: number): XlValue {
    const t = this.peek();
    if (t.kind === 'eof' || t.kind === ',' || t.kind === ';' || t.kind === '=' || t.kind === '+=') {
      throw this.unclosed(t, open, t.kind === ',' ? 'a value' : undefined);
    }
    return this.value(key, depth);
  }

  private unclosed(t: Token, open: Token, expecting = "`,' or `]'"): ConfigError {
    const at = `${open.pos.line}:${open.pos.col}`;
    if (t.kind === 'eof') {
      return this.error(open, `unclosed list: this \`[' has no matching \`]' before the end of the input`);
    }
    return this.error(t, `unexpected ${describe(t)} in the list opened at ${at}; expecting ${expecting}`);
  }

  private skipNewlines(): void {
    while (this.peek().kind === 'newline') this.i++;
  }
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'ident': return `identifier \`${t.value}'`;
    case 'number': return `number \`${t.text}'`;
    case 'string': return `string ${t.text}`;
    case 'newline': return 'end of line';
    case 'eof': return 'end of input';
    default: return `\`${t.kind}'`;
  }
}
