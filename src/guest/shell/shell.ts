/**
 * The shell: the line discipline, a queue of typed lines, and one command at a time.
 *
 * Bytes from the console go to `input()`; everything the shell says goes to `write`. Output
 * lines end in CR LF, as a guest tty's ONLCR makes them: the dom0 side shows the console on
 * a raw terminal. Lines typed while a command runs are echoed and queued (type-ahead, at
 * most `maxQueued`; more rings the bell and is dropped). Ctrl+C aborts the running command
 * and drops the queued lines, as a tty flushes its input on SIGINT. Ctrl+D on an empty line
 * does not leave: this shell is the guest's only program (like bash's `ignoreeof`), so it
 * says how to stop the guest instead.
 */
import { COMMANDS } from './commands.js';
import { CommandError, UsageError, type Command } from './command.js';
import { LineDiscipline, type LineEvent } from './line-discipline.js';
import { splitWords } from './parse.js';
import type { ShellWorld } from './world.js';

export interface ShellIo {
  write(data: Uint8Array | string): void;
  /** Resolves once earlier output left (bounded wait); the prompt waits for it. */
  drain?(): Promise<void>;
}

export interface ShellOptions {
  readonly prompt?: string;
  readonly maxLine?: number;
  readonly maxQueued?: number;
  readonly commands?: Readonly<Record<string, Command>>;
}

export const EOF_HINT = 'Use "poweroff" to stop the guest.';

export class Shell {
  readonly prompt: string;
  private readonly ld: LineDiscipline;
  private readonly commands: Readonly<Record<string, Command>>;
  private readonly maxQueued: number;
  private readonly queue: string[] = [];
  private running: AbortController | undefined;
  private pumping: Promise<void> | undefined;

  constructor(private readonly world: ShellWorld, private readonly io: ShellIo, options: ShellOptions = {}) {
    this.prompt = options.prompt ?? `root@${world.hostname}:~# `;
    this.ld = new LineDiscipline(options.maxLine);
    this.commands = options.commands ?? COMMANDS;
    this.maxQueued = options.maxQueued ?? 8;
  }

  /** The first prompt. */
  start(): void {
    this.io.write(this.prompt);
  }

  /** A command runs or lines wait. */
  get busy(): boolean {
    return this.pumping !== undefined;
  }

  /** Resolves when no command runs and no line waits (tests). */
  async idle(): Promise<void> {
    while (this.pumping !== undefined) await this.pumping;
  }

  input(bytes: Uint8Array): void {
    const r = this.ld.feed(bytes);
    if (r.echo.length > 0) this.io.write(r.echo);
    for (const ev of r.events) this.event(ev);
    if (this.queue.length > 0 && this.pumping === undefined) this.pumping = this.pump();
  }

  private event(ev: LineEvent): void {
    const idle = this.pumping === undefined && this.queue.length === 0;
    if (ev.kind === 'line') {
      if (this.queue.length < this.maxQueued) this.queue.push(ev.text);
      else this.io.write('\x07');
    } else if (ev.kind === 'interrupt') {
      this.queue.length = 0;
      this.running?.abort();
      if (idle) this.io.write(this.prompt);
    } else if (idle) {
      this.io.write(`${EOF_HINT}\r\n${this.prompt}`);
    }
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        await this.execute(this.queue.shift()!);
        await this.io.drain?.();
        this.io.write(this.prompt);
      }
    } finally {
      this.pumping = undefined;
    }
  }

  private out(line: string): void {
    this.io.write(`${line}\r\n`);
  }

  /** Run one line; every failure becomes output, never a throw. */
  async execute(line: string): Promise<void> {
    const parsed = splitWords(line);
    if (!parsed.ok) return this.out(`sh: syntax error: ${parsed.error}`);
    const [name, ...args] = parsed.words;
    if (name === undefined) return;
    const cmd = Object.hasOwn(this.commands, name) ? this.commands[name] : undefined;
    if (cmd === undefined) return this.out(`sh: ${name}: command not found`);
    const controller = new AbortController();
    this.running = controller;
    try {
      await cmd.run({ args, world: this.world, out: (l) => this.out(l), signal: controller.signal });
    } catch (err) {
      this.failure(name, cmd, err);
    } finally {
      this.running = undefined;
    }
  }

  private failure(name: string, cmd: Command, err: unknown): void {
    if (err instanceof UsageError) {
      this.out(`${name}: ${err.message}`);
      cmd.usage.forEach((u, i) => this.out(`${i === 0 ? 'usage:' : '      '} ${u}`));
    } else if (err instanceof CommandError || err instanceof Error) {
      this.out(`${name}: ${err.message}`);
    } else {
      this.out(`${name}: ${String(err)}`);
    }
  }
}
