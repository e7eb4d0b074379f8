import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getoptLong, type LongOption } from './getopt.js';

const LONGS: LongOption[] = [
  { name: 'help', hasArg: false, short: 'h' },
  { name: 'flat', hasArg: false, short: 'f' },
  { name: 'prefix', hasArg: false, short: 'p' },
  { name: 'recurse', hasArg: false, short: 'r' },
  { name: 'number', hasArg: true, short: 'n' },
  { name: 'raw', hasArg: false, short: 'R' },
];
const parse = (args: string[], posix = false) => getoptLong('prog', args, 'hfpn:Rr', LONGS, posix);

test('short options: clusters, attached and detached arguments', () => {
  assert.deepEqual(parse(['-pR', 'k']).items, [{ short: 'p' }, { short: 'R' }]);
  assert.deepEqual(parse(['-n5', 'k']).items, [{ short: 'n', arg: '5' }]);
  assert.deepEqual(parse(['-n', '-5', 'k']).items, [{ short: 'n', arg: '-5' }]);
  assert.deepEqual(parse(['-pn', '7', 'k']), { items: [{ short: 'p' }, { short: 'n', arg: '7' }], operands: ['k'] });
});

test('GNU permutation: options after operands still count; "--" and POSIXLY_CORRECT stop it', () => {
  assert.deepEqual(parse(['a', '-p', 'b']), { items: [{ short: 'p' }], operands: ['a', 'b'] });
  assert.deepEqual(parse(['a', '--', '-p']), { items: [], operands: ['a', '-p'] });
  assert.deepEqual(parse(['a', '-p'], true), { items: [], operands: ['a', '-p'] });
  assert.deepEqual(parse(['-', '-p']), { items: [{ short: 'p' }], operands: ['-'] });
});

test('long options: exact, unique abbreviation, =value, separate value', () => {
  assert.deepEqual(parse(['--prefix']).items, [{ short: 'p' }]);
  assert.deepEqual(parse(['--pre']).items, [{ short: 'p' }]);
  assert.deepEqual(parse(['--num=3']).items, [{ short: 'n', arg: '3' }]);
  assert.deepEqual(parse(['--number', '4']).items, [{ short: 'n', arg: '4' }]);
  assert.deepEqual(parse(['--number=']).items, [{ short: 'n', arg: '' }]);
});

test('diagnostics in glibc wording, in command-line order, and the option skipped', () => {
  const r = parse(['-z', '--bogus=1', '--r', '--prefix=2', '--number', '-p']);
  // "--number" takes "-p" as its argument, as GNU does.
  assert.deepEqual(r.items, [
    { error: "prog: invalid option -- 'z'" },
    { error: "prog: unrecognized option '--bogus=1'" },
    { error: "prog: option '--r' is ambiguous; possibilities: '--recurse' '--raw'" },
    { error: "prog: option '--prefix' doesn't allow an argument" },
    { short: 'n', arg: '-p' },
  ]);
  assert.deepEqual(parse(['-n']).items, [{ error: "prog: option requires an argument -- 'n'" }]);
  assert.deepEqual(parse(['--number']).items, [{ error: "prog: option '--number' requires an argument" }]);
  assert.deepEqual(parse(['--=1']).items, [
    { error: "prog: option '--=1' is ambiguous; possibilities: '--help' '--flat' '--prefix' '--recurse' '--number' '--raw'" },
  ]);
});
