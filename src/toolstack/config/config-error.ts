/**
 * Errors for everything a user writes by hand: xl.cfg files, command-line overrides, disk
 * and vif specs. One class, code `EXLCFG`, whose message always starts with
 * `source:line:col:` so an editor can jump to the spot (xl itself only gives the line).
 */
import { XenpvError } from '../../base/index.js';

/** A place in a source: 1-based line and column (in UTF-16 code units), 0-based offset. */
export interface Position {
  readonly line: number;
  readonly col: number;
  readonly offset: number;
}

/**
 * Where a piece of text came from, so a spec string found inside a config file reports
 * errors at the file's line and column. `col` is the column of the text's first character.
 */
export interface Origin {
  readonly source: string;
  readonly line: number;
  readonly col: number;
}

export const CONFIG_ERROR_CODE = 'EXLCFG';

export class ConfigError extends XenpvError {
  readonly source: string;
  readonly line: number;
  readonly col: number;
  /** The message without the `source:line:col: ` prefix. */
  readonly reason: string;

  constructor(source: string, line: number, col: number, reason: string) {
    super(CONFIG_ERROR_CODE, `${source}:${line}:${col}: ${reason}`, { source, line, col });
    this.name = 'ConfigError';
    this.source = source;
    this.line = line;
    this.col = col;
    this.reason = reason;
  }

  static at(source: string, pos: Position, reason: string): ConfigError {
    return new ConfigError(source, pos.line, pos.col, reason);
  }

  /** An error `offset` characters into text that starts at `origin`. */
  static within(origin: Origin, offset: number, reason: string): ConfigError {
    return new ConfigError(origin.source, origin.line, origin.col + offset, reason);
  }
}

/** A warning: xl prints these and carries on. */
export interface ConfigWarning {
  readonly source: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export function formatWarning(w: ConfigWarning): string {
  return `${w.source}:${w.line}:${w.col}: warning: ${w.message}`;
}

/** The origin used for specs typed on a command line (`xenpv block-attach DOM 'SPEC'`). */
export const COMMAND_LINE: Origin = { source: '<command line>', line: 1, col: 1 };
