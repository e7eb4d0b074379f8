import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError } from '../config-error.js';
import { applyXlOverrides, parseXlConfig, type XlConfig, type XlValue } from './parser.js';
import { printXlConfig, printXlValue } from './printer.js';

/** Values without positions, for comparing. */
type Plain = string | { n: string } | Plain[];
function plain(v: XlValue): Plain {
  if (v.kind === 'string') return v.value;
  if (v.kind === 'number') return { n: v.text };
  return v.items.map(plain);
}
function settings(cfg: XlConfig): Record<string, Plain> {
  return Object.fromEntries([...cfg.settings.values()].map((s) => [s.key, plain(s.value)]));
}
const parse = (text: string): Record<string, Plain> => settings(parseXlConfig(text, 't.cfg'));

const valid: [string, string, Record<string, Plain>][] = [
  ['empty file', '', {}],
  ['blank lines and comments', '\n# hello\n\n   # indented\n', {}],
  ['last line without newline', 'name = "a"', { name: 'a' }],
  ['; separates settings', 'a = 1; b = 2;c="x"', { a: { n: '1' }, b: { n: '2' }, c: 'x' }],
  ['hex and octal kept as written', 'm = 0x1f\no = 017', { m: { n: '0x1f' }, o: { n: '017' } }],
  ['single-quoted strings', "kernel = 'builtin:fio'", { kernel: 'builtin:fio' }],
  ['empty list', 'vif = [ ]', { vif: [] }],
  ['list with an empty string', "vif = [ '' ]", { vif: [''] }],
  ['trailing comma', 'disk = [ "a", "b", ]', { disk: ['a', 'b'] }],
  ['list over lines with comments', 'disk = [\n  "a", # first\n\n  "b"\n  ,\n  "c"\n]\nname="x"', { disk: ['a', 'b', 'c'], name: 'x' }],
  ['nested lists (vnuma)', 'vnuma = [ [ "pnode=0", "size=512" ], [ "pnode=1" ] ]', { vnuma: [['pnode=0', 'size=512'], ['pnode=1']] }],
  ['dotted keys (xl.conf)', 'vif.default.bridge = "xenbr1"', { 'vif.default.bridge': 'xenbr1' }],
  ['a later value wins', 'memory = 128\nmemory = 256', { memory: { n: '256' } }],
  ['+= appends to a list', 'disk = [ "a" ]\ndisk += [ "b", "c" ]', { disk: ['a', 'b', 'c'] }],
  ['+= concatenates strings', 'extra = "a=1"\nextra += " b=2"', { extra: 'a=1 b=2' }],
  ['+= without an earlier value assigns', 'disk += [ "a" ]', { disk: ['a'] }],
];
for (const [what, text, want] of valid) {
  test(`parses: ${what}`, () => assert.deepEqual(parse(text), want));
}

test('positions of keys and values', () => {
  const cfg = parseXlConfig('\n  memory = 512\ndisk = [\n "a" ]', 'g.cfg');
  const memory = cfg.settings.get('memory');
  assert.deepEqual([memory?.keyPos.line, memory?.keyPos.col, memory?.value.pos.line, memory?.value.pos.col], [2, 3, 2, 12]);
  const disk = cfg.settings.get('disk');
  assert.equal(disk?.value.kind, 'list');
  if (disk?.value.kind === 'list') assert.deepEqual([disk.value.items[0]?.pos.line, disk.value.items[0]?.pos.col], [4, 2]);
});

test('settings keep the order of their first definition', () => {
  const cfg = parseXlConfig('b=1\na=2\nb=3', 't.cfg');
  assert.deepEqual([...cfg.settings.keys()], ['b', 'a']);
  assert.equal(cfg.settings.get('b')?.value.kind === 'number' && cfg.settings.get('b')?.value.pos.line, 3);
});

const invalid: [string, string][] = [
  ['memory 512', "t.cfg:1:8: expecting `=' after `memory', found number `512'"],
  ['memory =\nvcpus = 1', "t.cfg:1:9: missing value for `memory'"],
  ['name = guest', "t.cfg:1:8: unexpected identifier `guest' as the value of `name'; strings must be quoted"],
  ['a = 1 b = 2', "t.cfg:1:7: unexpected identifier `b' after the value of `a'; expecting a newline or `;'"],
  ['= 1', "t.cfg:1:1: unexpected `='; expecting a setting name"],
  ['"a" = 1', 't.cfg:1:1: unexpected string "a"; expecting a setting name'],
  ['disk = [ "a",\n  "b"\nname = "x"', "t.cfg:3:1: unexpected identifier `name' in the list opened at 1:8; expecting `,' or `]'"],
  ['disk = [ "a", "b"', "t.cfg:1:8: unclosed list: this `[' has no matching `]' before the end of the input"],
  ['disk = [ "a" "b" ]', "t.cfg:1:14: unexpected string \"b\" in the list opened at 1:8; expecting `,' or `]'"],
  ['disk = [ , ]', "t.cfg:1:10: unexpected `,' in the list opened at 1:8; expecting a value"],
  ['disk = [ "a" ]\ndisk += "b"', 't.cfg:2:9: can\'t add [list] to "string" or vice versa'],
  ['x = ' + '['.repeat(40) + ']'.repeat(40), "t.cfg:1:" + (4 + 33) + ': lists nested more than 32 deep'],
];
for (const [text, message] of invalid) {
  test(`error: ${JSON.stringify(text).slice(0, 60)}`, () => {
    assert.throws(() => parseXlConfig(text, 't.cfg'), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.code, 'EXLCFG');
      assert.equal(err.message, message);
      return true;
    });
  });
}

test('command-line overrides use the same grammar and win', () => {
  const cfg = parseXlConfig('memory = 128\nvcpus = 1\ndisk = [ "a" ]\n', 'g.cfg');
  applyXlOverrides(cfg, ['memory=512', 'disk += [ "b" ]; vcpus = 2', 'name="x"']);
  assert.deepEqual(settings(cfg), { memory: { n: '512' }, vcpus: { n: '2' }, disk: ['a', 'b'], name: 'x' });
  assert.equal(cfg.settings.get('memory')?.source, '<command line argument 1>');
  assert.equal(cfg.settings.get('vcpus')?.source, '<command line argument 2>');
});

test('an override error names the argument and column', () => {
  const cfg = parseXlConfig('', 'g.cfg');
  assert.throws(() => applyXlOverrides(cfg, ['memory=512', 'name=guest']),
    { message: "<command line argument 2>:1:6: unexpected identifier `guest' as the value of `name'; strings must be quoted" });
});

// Property: printing any value and parsing it back gives the same value.
const atom = fc.oneof(
  fc.string({ unit: 'grapheme-ascii' }).map((s) => s as Plain),
  fc.string({ unit: 'binary' }).map((s) => s as Plain),
  fc.stringMatching(/^[0-9][0-9a-fx]{0,8}$/).map((n) => ({ n }) as Plain),
);
const { value: plainValue } = fc.letrec<{ value: Plain }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, atom, fc.array(tie('value'), { maxLength: 4 })),
}));

function toXl(p: Plain): XlValue {
  const pos = { line: 0, col: 0, offset: 0 };
  if (typeof p === 'string') return { kind: 'string', value: p, pos };
  if (Array.isArray(p)) return { kind: 'list', items: p.map(toXl), pos };
  return { kind: 'number', text: p.n, pos };
}

test('property: print then parse gives the same value', () => {
  fc.assert(fc.property(plainValue, (v) => {
    const text = `key = ${printXlValue(toXl(v))}\n`;
    assert.deepEqual(parse(text), { key: v });
  }), { numRuns: 300 });
});

test('property: a whole printed configuration parses back to the same settings', () => {
  const key = fc.stringMatching(/^[a-z][._0-9a-z]{0,10}$/);
  fc.assert(fc.property(fc.dictionary(key, plainValue, { maxKeys: 6 }), (dict) => {
    const cfg = parseXlConfig(Object.entries(dict).map(([k, v]) => `${k} = ${printXlValue(toXl(v))}`).join('\n'), 'p.cfg');
    assert.deepEqual(parse(printXlConfig(cfg)), settings(cfg));
    assert.deepEqual(settings(cfg), Object.fromEntries(Object.entries(dict)));
  }), { numRuns: 150 });
});
