/**
 * Reading typed values out of parsed settings, as xl's `xlu_cfg_get_*` do, but failing with
 * an error that names the key and points at its value (xl warns and ignores the key).
 *
 * A number is any atom that C's `strtol(s, &end, 0)` consumes entirely: decimal, `0x` hex,
 * `0` octal, optional sign and leading blanks; so `memory = "512"` and `memory = 512` agree.
 */
import { ConfigError, type Origin, type Position } from '../config-error.js';
import { atomText, type XlConfig, type XlSetting, type XlValue } from './parser.js';

const STRTOL_FULL = /^[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))$/;

/** `strtol(text, &end, 0)` when it consumes the whole text, else undefined. */
export function parseCLong(text: string): bigint | undefined {
  const m = STRTOL_FULL.exec(text);
  if (m === null) return undefined;
  const [, sign, hex, oct, dec] = m;
  let v: bigint;
  if (hex !== undefined) v = BigInt(`0x${hex}`);
  else if (oct !== undefined) v = BigInt(`0o${oct === '0' ? '0' : oct.slice(1)}`);
  else v = BigInt(dec as string);
  return sign === '-' ? -v : v;
}

export interface ListAtom {
  readonly text: string;
  readonly pos: Position;
  readonly origin: Origin;
}

export class SettingReader {
  constructor(readonly config: XlConfig) {}

  has(key: string): boolean {
    return this.config.settings.has(key);
  }

  setting(key: string): XlSetting | undefined {
    return this.config.settings.get(key);
  }

  error(s: XlSetting, reason: string, pos: Position = s.value.pos): ConfigError {
    return ConfigError.at(s.source, pos, reason);
  }

  /** A single value (string or number) as text. */
  string(key: string): string | undefined {
    const s = this.setting(key);
    if (s === undefined) return undefined;
    if (s.value.kind === 'list') throw this.error(s, `\`${key}' must be a single value, not a list`);
    return atomText(s.value);
  }

  /** An integer in [min, max]. */
  integer(key: string, min: number, max: number): number | undefined {
    const s = this.setting(key);
    if (s === undefined) return undefined;
    if (s.value.kind === 'list') throw this.error(s, `\`${key}' must be a number, not a list`);
    if (s.op === '+=') throw this.error(s, `can't use += with numbers for parameter \`${key}'`);
    const text = atomText(s.value);
    const v = parseCLong(text);
    if (v === undefined) throw this.error(s, `\`${key}' is not a valid number: \`${text}'`);
    if (v < BigInt(min) || v > BigInt(max)) {
      throw this.error(s, `\`${key}' = ${v} is out of range: it must be between ${min} and ${max}`);
    }
    return Number(v);
  }

  /** xl's defbool: a number, true when non-zero. */
  boolean(key: string): boolean | undefined {
    const v = this.integer(key, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    return v === undefined ? undefined : v !== 0;
  }

  /**
   * A list of single values, each with its position and where its text starts (one past
   * the opening quote of a string), so specs inside it report the right column.
   */
  atomList(key: string): ListAtom[] | undefined {
    const s = this.setting(key);
    if (s === undefined) return undefined;
    if (s.value.kind !== 'list') throw this.error(s, `\`${key}' must be a list, like ${key} = [ '...' ]`);
    return s.value.items.map((item: XlValue) => {
      if (item.kind === 'list') throw this.error(s, `items of \`${key}' must be strings, not lists`, item.pos);
      const textCol = item.kind === 'string' ? item.pos.col + 1 : item.pos.col;
      return { text: atomText(item), pos: item.pos, origin: { source: s.source, line: item.pos.line, col: textCol } };
    });
  }

  /** A single value or a list of them (`serial = "pty"` or `serial = [ "pty" ]`). */
  stringOrList(key: string): string[] | undefined {
    const s = this.setting(key);
    if (s === undefined) return undefined;
    if (s.value.kind !== 'list') return [atomText(s.value)];
    return (this.atomList(key) ?? []).map((x) => x.text);
  }
}
