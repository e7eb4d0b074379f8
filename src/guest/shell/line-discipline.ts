/**
 * The shell's line discipline: what Linux's n_tty does in canonical mode with ECHO, for a
 * console the dom0 side puts in raw mode (`xenpv console`, like `xl console`, sends every
 * key as typed). Sans-IO: `feed(bytes)` returns what to echo and the events it completed.
 *
 * Keys:
 *   printable bytes (UTF-8 included)   appended and echoed; TAB is a space
 *   CR, LF, CR LF                      end the line (a raw terminal sends CR; a pipe sends LF)
 *   BS (^H), DEL (0x7f)                erase one character (a whole UTF-8 sequence)
 *   ^U                                 erase the line;  ^W erases the last word
 *   ^C                                 echo `^C`, drop the line, report an interrupt
 *   ^D                                 on an empty line, report end-of-file; else ignored
 *   ESC [ ... final, ESC O x           dropped (arrow and function keys: no history here)
 *   other control bytes                dropped
 *
 * Bounded: a line holds at most `maxLine` bytes (n_tty's buffer is 4095); what comes beyond
 * is dropped and rings the bell once per line, so a pasted megabyte costs no memory.
 */

export type LineEvent =
  | { readonly kind: 'line'; readonly text: string }
  | { readonly kind: 'interrupt' }
  | { readonly kind: 'eof' };

export interface FeedResult {
  /** Bytes to write back to the terminal. */
  readonly echo: Uint8Array;
  readonly events: readonly LineEvent[];
}

/** n_tty's line buffer holds 4095 characters and the newline. */
export const DEFAULT_MAX_LINE = 4095;

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const BS = 0x08;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const CTRL_U = 0x15;
const CTRL_W = 0x17;
const ESC = 0x1b;
const SPACE = 0x20;
const DEL = 0x7f;
const BEL = 0x07;

type EscState = 'none' | 'esc' | 'csi' | 'ss3';

const decoder = new TextDecoder('utf-8', { fatal: false });
const ERASE = [BS, SPACE, BS];

export class LineDiscipline {
  private readonly buf: Uint8Array;
  private length = 0;
  private lastWasCr = false;
  private esc: EscState = 'none';
  private rang = false;
  private echo: number[] = [];
  private events: LineEvent[] = [];

  constructor(readonly maxLine = DEFAULT_MAX_LINE) {
    this.buf = new Uint8Array(maxLine);
  }

  /** The line typed so far (not yet ended). */
  get pending(): string {
    return decoder.decode(this.buf.subarray(0, this.length));
  }

  feed(bytes: Uint8Array): FeedResult {
    this.echo = [];
    this.events = [];
    for (const b of bytes) this.byte(b);
    return { echo: Uint8Array.from(this.echo), events: this.events };
  }

  private byte(b: number): void {
    const crlf = this.lastWasCr && b === LF;
    this.lastWasCr = b === CR;
    if (this.esc !== 'none') return this.escape(b);
    if (crlf) return; // the LF of CR LF: the CR already ended the line
    switch (b) {
      case CR:
      case LF: return this.endLine();
      case CTRL_C: return this.interrupt();
      case CTRL_D: return this.ctrlD();
      case BS:
      case DEL: return void this.eraseChar();
      case CTRL_U: return this.eraseWhile(() => true);
      case CTRL_W: return this.eraseWord();
      case ESC: this.esc = 'esc'; return;
      case TAB: return this.append(SPACE);
      default:
        if (b >= SPACE) this.append(b);
    }
  }

  /** ECMA-48: CSI parameters and intermediates run to a final byte in 0x40..0x7e. */
  private escape(b: number): void {
    if (this.esc === 'esc') this.esc = b === 0x5b ? 'csi' : b === 0x4f ? 'ss3' : 'none';
    else if (this.esc === 'ss3') this.esc = 'none';
    else if (b >= 0x40 && b <= 0x7e) this.esc = 'none';
  }

  private append(b: number): void {
    if (this.length >= this.maxLine) {
      if (!this.rang) this.echo.push(BEL);
      this.rang = true;
      return;
    }
    this.buf[this.length++] = b;
    this.echo.push(b);
  }

  private endLine(): void {
    const text = decoder.decode(this.buf.subarray(0, this.length));
    this.reset();
    this.echo.push(CR, LF);
    this.events.push({ kind: 'line', text });
  }

  private interrupt(): void {
    this.reset();
    this.echo.push(0x5e, 0x43, CR, LF); // "^C"
    this.events.push({ kind: 'interrupt' });
  }

  private ctrlD(): void {
    if (this.length === 0) this.events.push({ kind: 'eof' });
  }

  private reset(): void {
    this.length = 0;
    this.rang = false;
  }

  /** Erase one character: the bytes of one UTF-8 sequence (continuations are 10xxxxxx). */
  private eraseChar(): boolean {
    if (this.length === 0) return false;
    while (this.length > 1 && (this.buf[this.length - 1]! & 0xc0) === 0x80) this.length--;
    this.length--;
    this.rang = false;
    this.echo.push(...ERASE);
    return true;
  }

  private eraseWhile(more: (last: number) => boolean): void {
    while (this.length > 0 && more(this.buf[this.length - 1]!) && this.eraseChar());
  }

  /** n_tty's WERASE: trailing spaces, then the word before them. */
  private eraseWord(): void {
    this.eraseWhile((c) => c === SPACE);
    this.eraseWhile((c) => c !== SPACE);
  }
}
