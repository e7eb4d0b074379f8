/**
 * The tools' output and exit discipline, as in xenstore_client.c:
 *
 * - `output()` text is buffered and written only when the command ends normally (after its
 *   transaction committed; an EAGAIN retry starts the buffer again).
 * - `direct()` text is what the C code `printf`s to stdout straight away (ls, watch).
 * - `warnx`/`warn`/`errx`/`err` are err(3): `<short progname>: <message>[: <strerror>]` on
 *   stderr; errx/err end the command with that exit code (buffered output is dropped, direct
 *   output was already written, as stdio flushes it on exit).
 *
 * Everything is byte strings (one char per byte).
 */
import { strerror } from './strerror.js';

export interface ToolIo {
  stdout(bytes: Uint8Array): void;
  stderr(bytes: Uint8Array): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The terminal's width when stdout is a terminal (TIOCGWINSZ), else undefined. */
  readonly ttyColumns?: number;
}

/** Thrown to end the command with `code` (exit(3) in the C code). */
export class ToolExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'ToolExit';
  }
}

/** Byte string → bytes. */
export function bytesOf(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** A command-line argument as the bytes the C program would see (UTF-8), as a byte string. */
export function argBytes(arg: string): string {
  return Buffer.from(arg, 'utf8').toString('latin1');
}

/** stdio's buffer size for a pipe: direct output is written in chunks of about this much. */
const STDIO_BUFFER = 4096;

export class ToolRun {
  private buffered: (string | Uint8Array)[] = [];
  private direct_ = '';

  constructor(
    readonly io: ToolIo,
    /** program_invocation_short_name: the prefix of every diagnostic. */
    readonly prog: string,
  ) {}

  output(s: string): void {
    this.buffered.push(s);
  }

  outputRaw(b: Uint8Array): void {
    this.buffered.push(b);
  }

  /** output_pos = 0 before an EAGAIN retry. */
  resetOutput(): void {
    this.buffered = [];
  }

  /** fwrite(output_buf): at the normal end of the command. */
  writeOutput(): void {
    for (const part of this.buffered) this.io.stdout(typeof part === 'string' ? bytesOf(part) : part);
    this.buffered = [];
  }

  direct(s: string): void {
    this.direct_ += s;
    if (this.direct_.length >= STDIO_BUFFER) this.flush();
  }

  /** fflush(stdout). */
  flush(): void {
    if (this.direct_ === '') return;
    this.io.stdout(bytesOf(this.direct_));
    this.direct_ = '';
  }

  warnx(msg: string): void {
    this.io.stderr(bytesOf(`${this.prog}: ${msg}\n`));
  }

  warn(msg: string, code: string | undefined): void {
    this.io.stderr(bytesOf(`${this.prog}: ${msg}: ${strerror(code)}\n`));
  }

  errx(exitCode: number, msg: string): never {
    this.warnx(msg);
    throw new ToolExit(exitCode);
  }

  err(exitCode: number, msg: string, code: string | undefined): never {
    this.warn(msg, code);
    throw new ToolExit(exitCode);
  }
}
