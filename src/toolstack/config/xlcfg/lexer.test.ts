import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../config-error.js';
import { Lexer } from './lexer.js';

const kinds = (text: string): string[] => Lexer.tokenize(text, 't.cfg').map((t) => `${t.kind}:${t.value}`);

test('tokens of a typical line, with positions', () => {
  const toks = Lexer.tokenize('memory = 0x200 # half a gig\nvif.default.bridge="xenbr1"', 't.cfg');
  assert.deepEqual(toks.map((t) => [t.kind, t.value, t.pos.line, t.pos.col]), [
    ['ident', 'memory', 1, 1],
    ['=', '=', 1, 8],
    ['number', '0x200', 1, 10],
    ['newline', '', 1, 16],
    ['ident', 'vif.default.bridge', 2, 1],
    ['=', '=', 2, 19],
    ['string', 'xenbr1', 2, 20],
    ['eof', '', 2, 28],
  ]);
});

test('punctuation, += and ;', () => {
  assert.deepEqual(kinds("a+=['x',];b=1"), [
    'ident:a', '+=:+=', '[:[', 'string:x', ',:,', ']:]', ';:;', 'ident:b', '=:=', 'number:1', 'eof:',
  ]);
});

test('a comment on the last line without a newline ends the input', () => {
  assert.deepEqual(kinds('a=1 # done'), ['ident:a', '=:=', 'number:1', 'eof:']);
});

const escapes: [string, string][] = [
  [String.raw`"a\"b"`, 'a"b'],
  [String.raw`'it\'s'`, "it's"],
  [String.raw`"back\\slash"`, 'back\\slash'],
  [String.raw`"\a\b\f\n\r\t\v"`, '\x07\b\f\n\r\t\v'],
  [String.raw`"\x41\x7e"`, 'A~'],
  [String.raw`"\101\0\7"`, 'A\0\x07'],
  [`'double " inside single'`, 'double " inside single'],
  ['"caf\u00e9"', 'caf\u00e9'],
];
for (const [src, want] of escapes) {
  test(`string escapes: ${src}`, () => {
    const [t] = Lexer.tokenize(src, 't.cfg');
    assert.equal(t?.kind, 'string');
    assert.equal(t?.value, want);
  });
}

const errors: [string, string][] = [
  ['name = "abc', "t.cfg:1:8: unterminated string: no closing \" before the end of the line"],
  ["a=1\nb = 'x\ny'", "t.cfg:2:5: unterminated string: no closing ' before the end of the line"],
  ['a = "x\\qy"', 't.cfg:1:7: invalid character after backslash in quoted string: \\q'],
  ['a = "\\x4"', 't.cfg:1:6: invalid hex escape in quoted string: \\x needs two hex digits'],
  ['a = "\\777"', 't.cfg:1:6: octal escape \\777 is larger than one byte'],
  ['memory = 1.5', "t.cfg:1:11: lexical error near `.5' (xl.cfg numbers are integers; quote the value to pass a string)"],
  ['memory = -1', "t.cfg:1:10: lexical error near `-1' (this looks like Python, which xl.cfg no longer supports)"],
  ['x = range(3)', "t.cfg:1:10: lexical error near `(3)' (this looks like Python, which xl.cfg no longer supports)"],
  ['Name = "a"', "t.cfg:1:1: lexical error near `Name' (setting names are lower case)"],
  ['a = 1\r\n', "t.cfg:1:6: lexical error near `\\x0d' (carriage return: the file has DOS line endings, which xl.cfg does not allow)"],
  ['a = @', "t.cfg:1:5: lexical error near `@'"],
];
for (const [src, message] of errors) {
  test(`lexical error: ${JSON.stringify(src)}`, () => {
    assert.throws(() => Lexer.tokenize(src, 't.cfg'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'EXLCFG');
      assert.equal(err.message, message);
      return true;
    });
  });
}
