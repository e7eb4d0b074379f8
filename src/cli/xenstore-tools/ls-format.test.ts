import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLsHead, lsLayout, permsSuffix, type LsEntry } from './ls-format.js';

const pipe = lsLayout(false, undefined); // stdout not a terminal: 80 columns
const flat = lsLayout(true, undefined);
const v = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const entry = (name: string, depth: number, value: string | undefined, fullPath = `/${name}`): LsEntry => ({
  name,
  depth,
  fullPath,
  value: value === undefined ? undefined : v(value),
});

test('layouts: 80 columns on a pipe, columns - 2 on a terminal, unbounded with -f', () => {
  assert.deepEqual(pipe, { maxWidth: 80, desiredWidth: 60, wholePath: false });
  assert.deepEqual(lsLayout(false, 132), { maxWidth: 130, desiredWidth: 60, wholePath: false });
  assert.deepEqual(flat, { maxWidth: 0x3fffffff, desiredWidth: 0, wholePath: true });
});

test('one space of indent per depth, name = "escaped value"', () => {
  assert.equal(formatLsHead(entry('local', 0, ''), pipe, false), 'local = ""');
  assert.equal(formatLsHead(entry('name', 3, 'Domain-0'), pipe, false), '   name = "Domain-0"');
  assert.equal(formatLsHead(entry('x', 1, 'a\tb\\c\x01'), pipe, false), ' x = "a\\tb\\\\c\\001"');
});

test('-p pads with ". " to column 60, then the perms', () => {
  const head = formatLsHead(entry('domain', 1, ''), pipe, true);
  // ' domain = ""' is 12 columns; one space; columns 13..59 alternate '.' (odd) and ' ' (even).
  assert.equal(head, ` domain = "" ${'. '.repeat(23)}.`);
  assert.equal(head.length, 60);
  assert.equal(head + permsSuffix(['n0', 'r1']), ` domain = "" ${'. '.repeat(23)}.  (n0,r1)`);
  // A line already past column 60 gets just the one space.
  const long = formatLsHead(entry('k', 0, 'x'.repeat(60)), pipe, true);
  assert.equal(long, `k = "${'x'.repeat(60)}" `);
});

test('values are cut at the width, judged on the RAW length, cut on the escaped text', () => {
  // 1 + 71 + 8 = 80: fits exactly.
  assert.equal(formatLsHead(entry('k', 0, 'a'.repeat(71)), pipe, false), `k = "${'a'.repeat(71)}"`);
  // One more byte: cut to 80 - 8 - 1 = 71 bytes and closed with \..."
  assert.equal(formatLsHead(entry('k', 0, 'a'.repeat(72)), pipe, false), `k = "${'a'.repeat(71)}\\..."`);
  // 30 raw bytes escape to 120 characters, yet the raw length decides: not cut.
  const wide = formatLsHead(entry('k', 0, '\x01'.repeat(30)), pipe, false);
  assert.equal(wide, `k = "${'\\001'.repeat(30)}"`);
  // A cut value gets no padding even with -p.
  assert.equal(formatLsHead(entry('k', 0, 'b'.repeat(100)), pipe, true), `k = "${'b'.repeat(71)}\\..."`);
});

test('names are cut to maxWidth - 8 - indent', () => {
  const narrow = lsLayout(false, 22); // maxWidth 20
  assert.equal(formatLsHead(entry('abcdefghijklmnopqrstuvwxyz', 2, ''), narrow, false), '  abcdefghij = ""');
});

test('-f: the full path, no indent, never cut; -p perms follow after three spaces', () => {
  const e = entry('name', 3, 'guest1', '/local/domain/1/name');
  assert.equal(formatLsHead(e, flat, true) + permsSuffix(['n0']), '/local/domain/1/name = "guest1"   (n0)');
  const big = 'z'.repeat(3000);
  assert.equal(formatLsHead(entry('k', 5, big, '/a/k'), flat, false), `/a/k = "${big}"`);
});

test('an unreadable value prints "name:" and a newline', () => {
  assert.equal(formatLsHead(entry('secret', 1, undefined), pipe, false), ' secret:\n');
  assert.equal(formatLsHead(entry('secret', 1, undefined), pipe, true), ' secret:\n');
});

test('a terminal narrower than 2 columns gives a negative width: nothing is cut or padded', () => {
  const tiny = lsLayout(false, 0);
  assert.equal(tiny.maxWidth, -2);
  assert.equal(formatLsHead(entry('name', 1, 'v'.repeat(200)), tiny, true), ` name = "${'v'.repeat(200)}" `);
});
