/**
 * A console log file (xenconsoled --log=guest: `<dir>/guest-<name>.log`, opened for append),
 * optionally with a `[YYYY-MM-DD HH:MM:SS] ` prefix at the start of each line
 * (--timestamp=guest), and the carriage returns after a newline dropped in that mode, as
 * xenconsoled does so that timestamps line up.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

function stamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `[${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}] `;
}

export class LogFile {
  private readonly stream: WriteStream;
  private atLineStart = true;
  private failed = false;

  constructor(
    readonly path: string,
    private readonly timestamps: boolean,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.stream = createWriteStream(path, { flags: 'a', mode: 0o644 });
    // A full disk or a removed directory must not take the daemon down: stop logging.
    this.stream.on('error', () => {
      this.failed = true;
    });
  }

  write(bytes: Uint8Array): void {
    if (this.failed || bytes.length === 0) return;
    this.stream.write(this.timestamps ? this.stampLines(bytes) : Buffer.from(bytes));
  }

  private stampLines(bytes: Uint8Array): Buffer {
    const ts = Buffer.from(stamp(this.clock()));
    const parts: Buffer[] = [];
    let i = 0;
    while (i < bytes.length) {
      if (this.atLineStart) {
        // Skip the \r that follows a \n, then stamp the line.
        while (i < bytes.length && bytes[i] === 0x0d) i++;
        if (i === bytes.length) break;
        parts.push(ts);
        this.atLineStart = false;
      }
      const nl = bytes.indexOf(0x0a, i);
      const end = nl < 0 ? bytes.length : nl + 1;
      parts.push(Buffer.from(bytes.subarray(i, end)));
      if (nl >= 0) this.atLineStart = true;
      i = end;
    }
    return Buffer.concat(parts);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.stream.closed) return resolve();
      this.stream.end(() => resolve());
      this.stream.once('error', () => resolve());
    });
  }
}
