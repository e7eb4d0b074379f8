/**
 * Test data: the tree both tools run against, and the command lines they are compared on.
 * Each case starts from a fresh copy of TREE, so commands that change the store are compared
 * by their output AND by the tree they leave.
 */
import type { XsPerm } from '../../xenstore/protocol/index.js';

export interface Node {
  readonly path: string;
  /** Raw value (byte string); undefined = MKDIR. */
  readonly value?: string;
  readonly perms?: readonly XsPerm[];
}

const perms = (...list: string[]): XsPerm[] =>
  list.map((p) => ({ access: p[0] as XsPerm['access'], domid: Number(p.slice(1)) }));

const LONG_NAME = `node-with-a-name-longer-than-the-line-${'n'.repeat(60)}`;

export const TREE: readonly Node[] = [
  { path: '/t/a', value: 'hello' },
  { path: '/t/b/c', value: 'x\ty' },
  { path: '/t/special', value: '\x00\x01\x07\x08\t\n\r\x1b\\"\x7f\x80\xe9\xff end' },
  { path: '/t/long', value: `${'L'.repeat(150)}!` },
  // 1 (indent) + 7 + 64 + 8 = 80: exactly fits; one byte more is cut.
  { path: '/t/exact71', value: 'e'.repeat(64) },
  { path: '/t/exact72', value: 'e'.repeat(65) },
  // 40 raw bytes escape to 160 columns; xenstore-ls judges the raw length and does not cut.
  { path: '/t/wide', value: '\x01'.repeat(40) },
  { path: `/t/${LONG_NAME}`, value: 'v' },
  { path: '/t/deep/1/2/3/4/leaf', value: 'deep value' },
  { path: '/t/perm', value: 'p', perms: perms('n0', 'r1', 'w2', 'b3') },
  { path: '/t/owned', value: 'o', perms: perms('r5', 'n6') },
  { path: '/t/empty-dir' },
  { path: '/t/x/y/z', value: '' },
  { path: '/t/x/keep', value: 'k' },
  { path: '/t/q/r/s', value: '' },
];

/** [argv0, ...args] command lines compared on stdout, stderr, exit code and the tree after. */
export const CASES: readonly (readonly string[])[] = [
  // read
  ['xenstore-read', '/t/a'],
  ['xenstore-read', '/t/a', '/t/b/c'],
  ['xenstore-read', '-p', '/t/a', '/t/special'],
  ['xenstore-read', '-R', '/t/special'],
  ['xenstore-read', '-p', '-R', '/t/a', '/t/b/c'],
  ['xenstore-read', '/t/missing'],
  ['xenstore-read', '/t/a', '/t/missing', '/t/b/c'],
  ['xenstore-read', 't/relative'],
  ['xenstore-read', '/t/b'],
  ['xenstore', 'read', '/t/long'],
  // write
  ['xenstore-write', '/t/new', 'v'],
  ['xenstore-write', '/t/n1', '1', '/t/n2/deep', '2'],
  ['xenstore-write', '/t/esc', '\\x41\\t\\101\\\\z\\q\\x4g\\0'],
  ['xenstore-write', '/t/trailing', 'abc\\'],
  ['xenstore-write', '-R', '/t/raw', 'a\\tb\\x41'],
  ['xenstore-write', '/t/a', ''],
  ['xenstore-write', '//bad', 'v'],
  ['xenstore-write', '/t/ok', '1', '/bad/', '2'],
  ['xenstore', 'write', '/t/b/c', 'replaced'],
  // rm
  ['xenstore-rm', '/t/a'],
  ['xenstore-rm', '/t/a', '/t/b'],
  ['xenstore-rm', '-t', '/t/x/y/z'],
  ['xenstore-rm', '-t', '/t/q/r/s'],
  ['xenstore-rm', '-t', '/t/deep/1/2/3/4/leaf'],
  ['xenstore-rm', '/t/nope'],
  ['xenstore-rm', '/t/nope/deeper'],
  // exists
  ['xenstore-exists', '/t/a'],
  ['xenstore-exists', '/t/missing'],
  ['xenstore-exists', '/t/a', '/t/b', '/t/deep/1'],
  ['xenstore-exists', '/t/a', '/t/missing'],
  // list
  ['xenstore-list', '/t'],
  ['xenstore-list', '-p', '/t/b'],
  ['xenstore-list', '-p', '/'],
  ['xenstore-list', '/t/missing'],
  ['xenstore-list', '/t/a', '/t/b'],
  ['xenstore-list', '/t/empty-dir'],
  // ls
  ['xenstore-ls', '/t'],
  ['xenstore-ls', '-p', '/t'],
  ['xenstore-ls', '-f', '/t'],
  ['xenstore-ls', '-f', '-p', '/t'],
  ['xenstore-ls'],
  ['xenstore-ls', '-p'],
  ['xenstore-ls', '/t/missing'],
  ['xenstore-ls', '/t/b', '/t/deep'],
  ['xenstore-ls', '/t/a'],
  ['xenstore', 'ls', '-p', '/t/deep'],
  // chmod
  ['xenstore-chmod', '/t/a', 'n0', 'r1'],
  ['xenstore-chmod', '-r', '/t/deep', 'b5'],
  ['xenstore-chmod', '-u', '/t/deep/1/2', 'r2'],
  ['xenstore-chmod', '-u', '-r', '/t/b', 'w7', 'r8'],
  ['xenstore-chmod', '/t/a', 'x1'],
  ['xenstore-chmod', '/t/a', 'rfoo', 'b-3'],
  ['xenstore-chmod', '/t/a'],
  ['xenstore-chmod', '/t/missing', 'n0'],
  ['xenstore-chmod', '-u', 't/relative', 'n0'],
  ['xenstore-chmod', '-r', '/', 'n0'],
  // watch (no writes happen meanwhile: the initial events only)
  ['xenstore-watch', '-n', '1', '/t/a'],
  ['xenstore-watch', '-n', '0', '/t/a'],
  ['xenstore-watch', '-n', '2', '/t/a', '/t/b'],
  ['xenstore-watch', '-n', '1', '@introduceDomain'],
];
