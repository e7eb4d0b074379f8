/**
 * The demo's step line. On a terminal: one line rewritten in place ("[3/14] disk through PV:
 * sequential read 1 MiB"), with the seconds elapsed; in a pipe or a file: one plain line per
 * step, no control characters. Written to stderr, so stdout carries only the table (or JSON).
 */
export interface ProgressSink {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export class Progress {
  private done = 0;
  private readonly t0 = performance.now();
  private live = false;

  constructor(
    private readonly total: number,
    private readonly out: ProgressSink | undefined,
  ) {}

  step(what: string): void {
    this.done = Math.min(this.done + 1, this.total);
    if (this.out === undefined) return;
    const secs = ((performance.now() - this.t0) / 1000).toFixed(0);
    const line = `[${this.done}/${this.total}] ${what} (${secs} s)`;
    if (this.out.isTTY === true) {
      this.out.write(`\r\x1b[K${line}`);
      this.live = true;
    } else {
      this.out.write(`${line}\n`);
    }
  }

  /** Clear the terminal line (nothing to do in a pipe). */
  end(): void {
    if (this.live) this.out?.write('\r\x1b[K');
    this.live = false;
  }
}
