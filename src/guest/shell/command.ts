/**
 * What a shell command is: usage lines for `help` and for bad arguments, and `run`, which
 * writes lines through `out` and stops early when `signal` aborts (Ctrl+C).
 */
import type { ShellWorld } from './world.js';

export interface CommandContext {
  /** The words after the command name. */
  readonly args: readonly string[];
  readonly world: ShellWorld;
  /** One output line. */
  out(line: string): void;
  /** Aborted by Ctrl+C. */
  readonly signal: AbortSignal;
}

export interface Command {
  /** Synopsis lines, without the leading `usage: `. */
  readonly usage: readonly string[];
  readonly summary: string;
  run(c: CommandContext): Promise<void>;
}

/** Bad arguments: the shell prints the message and the command's usage lines. */
export class UsageError extends Error {}

/** A command failed; the shell prints `<command>: <message>`. */
export class CommandError extends Error {}

/** An integer argument (decimal or 0x hex) in `min..max`. */
export function intArg(text: string | undefined, what: string, max = Number.MAX_SAFE_INTEGER, min = 0): number {
  if (text === undefined) throw new UsageError(`missing ${what}`);
  const n = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text.slice(2), 16) : /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n > max || n < min) {
    throw new UsageError(`bad ${what} '${text}'${max < Number.MAX_SAFE_INTEGER ? ` (${min}..${max})` : ''}`);
  }
  return n;
}
