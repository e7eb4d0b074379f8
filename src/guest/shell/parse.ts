/**
 * Splitting a command line into words, with the quoting of a POSIX shell's simple commands
 * (sh(1p) 2.2): `'...'` keeps everything literally, `"..."` keeps everything but `\"` and
 * `\\`, and a backslash outside quotes escapes the next character. No variables, globs,
 * pipes or redirections: this shell runs one built-in command per line. `#` at the start
 * of a word begins a comment.
 */

export type ParseResult =
  | { readonly ok: true; readonly words: readonly string[] }
  | { readonly ok: false; readonly error: string };

interface Scan {
  readonly words: string[];
  word: string | undefined;
}

export function splitWords(line: string): ParseResult {
  const s: Scan = { words: [], word: undefined };
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      endWord(s);
      i++;
    } else if (c === '#' && s.word === undefined) {
      break;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return { ok: false, error: 'unterminated quoted string' };
      s.word = (s.word ?? '') + line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      const r = doubleQuoted(line, i + 1);
      if (r === undefined) return { ok: false, error: 'unterminated quoted string' };
      s.word = (s.word ?? '') + r.text;
      i = r.next;
    } else if (c === '\\') {
      // A trailing backslash would continue the line in sh; here it stands for itself.
      s.word = (s.word ?? '') + (line[i + 1] ?? '\\');
      i += 2;
    } else {
      s.word = (s.word ?? '') + c;
      i++;
    }
  }
  endWord(s);
  return { ok: true, words: s.words };
}

function endWord(s: Scan): void {
  if (s.word !== undefined) s.words.push(s.word);
  s.word = undefined;
}

function doubleQuoted(line: string, from: number): { text: string; next: number } | undefined {
  let text = '';
  for (let i = from; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') return { text, next: i + 1 };
    if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) text += line[++i];
    else text += c;
  }
  return undefined;
}
