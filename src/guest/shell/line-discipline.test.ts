import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineDiscipline, type LineEvent } from './line-discipline.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => Buffer.from(b).toString();

function run(input: string, ld = new LineDiscipline()): { echo: string; events: LineEvent[] } {
  const r = ld.feed(enc(input));
  return { echo: str(r.echo), events: [...r.events] };
}

const line = (text: string): LineEvent => ({ kind: 'line', text });

test('CR, LF and CR LF each end one line; the echo ends lines with CR LF', () => {
  assert.deepEqual(run('ls\r'), { echo: 'ls\r\n', events: [line('ls')] });
  assert.deepEqual(run('ls\n'), { echo: 'ls\r\n', events: [line('ls')] });
  assert.deepEqual(run('a\r\nb\r\n\r\n'), { echo: 'a\r\nb\r\n\r\n', events: [line('a'), line('b'), line('')] });
  // CR LF split across two reads is still one line end.
  const ld = new LineDiscipline();
  assert.deepEqual(run('x\r', ld).events, [line('x')]);
  assert.deepEqual(run('\ny\n', ld).events, [line('y')]);
});

test('backspace and DEL erase one character, a whole UTF-8 sequence, never past the start', () => {
  assert.deepEqual(run('abc\x7f\x7fx\r'), { echo: 'abc\b \b\b \bx\r\n', events: [line('ax')] });
  assert.deepEqual(run('\x08\x08ok\r').events, [line('ok')]);
  assert.equal(run('\x08\x7f').echo, '', 'nothing to erase: no echo');
  assert.deepEqual(run('é€\x7fa\r').events, [line('éa')]);
});

test('Ctrl+U erases the line, Ctrl+W the last word and the spaces after it', () => {
  assert.deepEqual(run('junk here\x15echo\r').events, [line('echo')]);
  assert.deepEqual(run('blk read xvda  \x17sda\r').events, [line('blk read sda')]);
  assert.equal(run('ab\x15').echo, 'ab\b \b\b \b');
});

test('Ctrl+C drops the line and reports an interrupt; Ctrl+D reports EOF on an empty line only', () => {
  const ld = new LineDiscipline();
  assert.deepEqual(run('half a li\x03', ld), { echo: 'half a li^C\r\n', events: [{ kind: 'interrupt' }] });
  assert.equal(ld.pending, '');
  assert.deepEqual(run('\x04').events, [{ kind: 'eof' }]);
  assert.deepEqual(run('x\x04\r').events, [line('x')]);
});

test('escape sequences (arrows, function keys) and other control bytes are dropped; TAB is a space', () => {
  assert.deepEqual(run('a\x1b[A\x1b[1;5Cb\x1bOPc\x01\x02\x07d\te\r'), { echo: 'abcd e\r\n', events: [line('abcd e')] });
});

test('a line holds at most maxLine bytes; the rest is dropped with one bell per line', () => {
  const ld = new LineDiscipline(8);
  const r = run('0123456789abc\r', ld);
  assert.deepEqual(r.events, [line('01234567')]);
  assert.equal(r.echo, '01234567\x07\r\n');
  assert.deepEqual(run('xy\r', ld).events, [line('xy')], 'the next line starts fresh');
});

test('a pasted megabyte without a newline keeps one bounded line', () => {
  const ld = new LineDiscipline();
  const chunk = new Uint8Array(64 * 1024).fill(0x41);
  for (let i = 0; i < 16; i++) {
    const r = ld.feed(chunk);
    assert.ok(r.echo.length <= ld.maxLine + 1);
  }
  assert.equal(ld.pending.length, ld.maxLine);
  assert.deepEqual(run('\r', ld).events, [line('A'.repeat(ld.maxLine))]);
});

test('property: any bytes, in any split, give the same events; the line never exceeds maxLine', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 50 }), (bytes, cut) => {
      const whole = new LineDiscipline(32).feed(bytes).events;
      const split = new LineDiscipline(32);
      const parts = [...split.feed(bytes.subarray(0, cut)).events, ...split.feed(bytes.subarray(cut)).events];
      assert.deepEqual(parts, whole);
      // Every character (a replacement one included) stands for at least one kept byte.
      for (const e of whole) if (e.kind === 'line') assert.ok([...e.text].length <= 32);
      assert.ok([...split.pending].length <= 32);
    }),
  );
});
