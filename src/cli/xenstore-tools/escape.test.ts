import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sanitise, scanUnsigned, unsanitise } from './escape.js';

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const s = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

test('sanitise: printable bytes pass, \\t \\n \\r \\\\ by letter, < 010 octal, others \\xNN lowercase', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['hello world ~!', 'hello world ~!'],
    ['a\\b', 'a\\\\b'],
    ['\t\n\r', '\\t\\n\\r'],
    ['\x00\x01\x07', '\\000\\001\\007'],
    ['\x08\x0b\x0c\x1f', '\\x08\\x0b\\x0c\\x1f'],
    ['\x7f\x80\xff', '\\x7f\\x80\\xff'],
    ['"quoted"', '"quoted"'],
  ];
  for (const [raw, escaped] of cases) assert.equal(sanitise(b(raw)), escaped, JSON.stringify(raw));
});

test('unsanitise: the escapes xenstore-write understands', () => {
  const cases: [string, string][] = [
    ['plain', 'plain'],
    ['\\t\\n\\r\\\\', '\t\n\r\\'],
    ['\\x41\\x4a', 'AJ'],
    ['\\x4', '\x04'], // one digit is enough for %2x
    ['\\x414', 'A4'], // at most two
    ['\\101\\0', 'A\x00'],
    ['\\1234', 'S4'], // at most three octal digits
    ['\\777', '\xff'], // 511 stored in a char
    ['\\8', '8'], // not octal: the character itself
    ['\\q\\"', 'q"'], // unknown escapes: the character itself
    ['\\xg', 'xg'], // %2x converts nothing: 'x' stays
    ['\\x 41', 'A'], // sscanf skips white space first
    ['\\x-1', '\xff'], // and takes a sign
    ['\\x0x', '\x00'], // "0x" is a prefix inside the width of 2
    ['abc\\', 'abc\x00'], // a lone trailing backslash writes the NUL it found
  ];
  for (const [spec, raw] of cases) assert.equal(s(unsanitise(b(spec))), raw, JSON.stringify(spec));
});

test('scanUnsigned follows sscanf width, prefix and failure rules', () => {
  assert.deepEqual(scanUnsigned(b('ff7'), 0, 2, 16), { value: 0xff, consumed: 2 });
  assert.deepEqual(scanUnsigned(b('  7'), 0, 2, 16), { value: 7, consumed: 3 });
  assert.equal(scanUnsigned(b('zz'), 0, 2, 16), undefined);
  assert.equal(scanUnsigned(b('-'), 0, 2, 16), undefined);
  assert.deepEqual(scanUnsigned(b('0778'), 0, 3, 8), { value: 0o77, consumed: 3 });
});

test('unsanitise(sanitise(v)) is v for every value', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (v) => {
      assert.deepEqual(unsanitise(b(sanitise(v))), v);
    }),
    { numRuns: 500 },
  );
});

test('sanitise output is printable ASCII only', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (v) => {
      assert.match(sanitise(v), /^[\x20-\x7e]*$/);
    }),
  );
});
