/**
 * The C compiler is the oracle: every struct size, field offset and constant registered under
 * abi/ is compared with what gcc computes from Debian's libxen-dev headers (/usr/include/xen),
 * for x86_64 (-m64) and x86_32 (-m32). Any difference fails, listing all of them.
 *
 * How: a generated C file puts each value in a `long long` array in its own ELF section; gcc
 * compiles it to an object (-ffreestanding -c: no 32-bit libc needed), objcopy dumps the section,
 * and we read the numbers back. Strings (string macros, GNTTABOP_error_msgs) travel the same way
 * as fixed 128-byte slots. Codec samples (abi-vs-c.samples.ts) are C objects gcc initialises,
 * compared byte for byte with our encoders. `xsd_errors[]` only exists when <errno.h> is
 * included, so its check is a small hosted x86_64 program that prints the table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ABIS, allConstants, allStructs, type AbiName } from './index.js';
import { GNTTABOP_error_msgs } from './grant_table.js';
import { xsd_errors } from './io/xs_wire.js';
import { PVDRIVERS_PRODUCT_LIST } from './hvm/pvdrivers.js';
import { CODEC_SAMPLES } from './abi-vs-c.samples.js';
import { allSrings, ringSize } from './io/ring.js';

interface NumCheck {
  readonly label: string;
  readonly expr: string;
  readonly ours: number;
}
interface StrTable {
  readonly label: string;
  /** A C initializer for `char [][128]`: a brace list or a macro expanding to one. */
  readonly init: string;
  readonly ours: readonly string[];
}

const SLOT = 128;

/** Defining __XEN_TOOLS__ selects the latest interface version and exposes tools-only parts. */
const PRELUDE = [
  '#define __XEN_TOOLS__ 1',
  '#include <stdint.h>',
  '#include <stddef.h>',
  '#include <xen/xen.h>',
  '#include <xen/hvm/pvdrivers.h>',
  '#define XENPV_PRODUCT(name, id) name ":" #id,',
];

function headers(): string[] {
  const hs = new Set<string>();
  for (const s of allStructs()) hs.add(s.header);
  for (const c of allConstants()) if (c.unchecked === undefined) hs.add(c.header);
  return [...hs].sort().map((h) => `#include <${h}>`);
}

function numChecks(abi: AbiName): NumCheck[] {
  const out: NumCheck[] = [];
  for (const s of allStructs()) {
    const l = s.layouts[abi];
    out.push({ label: `sizeof(${s.cType})`, expr: `sizeof(${s.cType})`, ours: l.size });
    for (const [field, off] of Object.entries(l.fields)) {
      out.push({ label: `offsetof(${s.cType}, ${field})`, expr: `offsetof(${s.cType}, ${field})`, ours: off });
    }
  }
  for (const c of allConstants()) {
    if (c.unchecked !== undefined || typeof c.value !== 'number') continue;
    if (c.abi !== undefined && c.abi !== abi) continue;
    out.push({ label: c.name, expr: c.name, ours: c.value });
  }
  out.push({ label: 'GNTTABOP_error_msgs count', expr: `sizeof(xenpv_t0) / ${SLOT}`, ours: GNTTABOP_error_msgs.length });
  for (const r of allSrings()) {
    for (const pages of [1, 2, 4, 8, 16]) {
      const expr = `__CONST_RING_SIZE(${r.name}, ${pages * 4096})`;
      out.push({ label: expr, expr, ours: ringSize(pages * 4096, r.entry[abi].size) });
    }
  }
  return out;
}

function strTables(abi: AbiName): StrTable[] {
  const strs = allConstants().filter(
    (c) => c.unchecked === undefined && typeof c.value === 'string' && (c.abi === undefined || c.abi === abi),
  );
  const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;
  return [
    { label: 'GNTTABOP_error_msgs', init: 'GNTTABOP_error_msgs', ours: GNTTABOP_error_msgs },
    {
      label: `string macros (${strs.map((c) => c.name).join(', ')})`,
      init: `{ ${strs.map((c) => c.name).join(', ')} }`,
      ours: strs.map((c) => String(c.value)),
    },
    {
      label: 'PVDRIVERS_PRODUCT_LIST',
      init: '{ PVDRIVERS_PRODUCT_LIST(XENPV_PRODUCT) }',
      ours: PVDRIVERS_PRODUCT_LIST.map((p) => `${p.name}:${hex4(p.id)}`),
    },
  ];
}

function cSource(abi: AbiName): string {
  const lines = [...PRELUDE, ...headers(), ''];
  strTables(abi).forEach((t, i) => {
    lines.push(`__attribute__((used, section("xvt${i}"))) const char xenpv_t${i}[][${SLOT}] = ${t.init};`);
  });
  CODEC_SAMPLES.forEach((c, i) => {
    lines.push(`__attribute__((used, section("xvs${i}"))) const ${c.cType} xenpv_s${i} = ${c.init};`);
  });
  lines.push('__attribute__((used, section("xvnum"))) const long long xenpv_num[] = {');
  for (const c of numChecks(abi)) lines.push(`  (long long)(${c.expr}),`);
  lines.push('};', '');
  return lines.join('\n');
}

function section(dir: string, obj: string, name: string): Buffer {
  const out = join(dir, `${name}.bin`);
  execFileSync('objcopy', ['-O', 'binary', `--only-section=${name}`, obj, out]);
  return readFileSync(out);
}

function slots(buf: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at + SLOT <= buf.length; at += SLOT) {
    const end = buf.indexOf(0, at);
    out.push(buf.toString('latin1', at, end < 0 || end > at + SLOT ? at + SLOT : end));
  }
  return out;
}

/** Compile for one ABI and return every difference, as readable lines. */
function compareAbi(abi: AbiName, dir: string): string[] {
  const src = join(dir, `abi-${abi}.c`);
  const obj = join(dir, `abi-${abi}.o`);
  writeFileSync(src, cSource(abi));
  const m = abi === 'x86_64' ? '-m64' : '-m32';
  execFileSync('gcc', [m, '-ffreestanding', '-std=gnu11', '-c', src, '-o', obj], { stdio: ['ignore', 'pipe', 'pipe'] });
  const diffs: string[] = [];
  const nums = section(dir, obj, 'xvnum');
  numChecks(abi).forEach((c, i) => {
    const theirs = nums.readBigInt64LE(i * 8);
    // A u64 constant above 2^63 (HVM_PARAM_CALLBACK_IRQ_TYPE_MASK) reads back negative.
    const same = Number(theirs) === c.ours || BigInt.asUintN(64, theirs) === BigInt(c.ours);
    if (!same) diffs.push(`${abi} ${c.label}: ours ${c.ours}, C ${theirs}`);
  });
  CODEC_SAMPLES.forEach((c, i) => {
    const theirs = section(dir, obj, `xvs${i}`);
    const ours = Buffer.from(c.encode(abi));
    if (!theirs.equals(ours)) {
      diffs.push(`${abi} codec ${c.label}: ours ${ours.toString('hex')}, C ${theirs.toString('hex')}`);
    }
  });
  strTables(abi).forEach((t, i) => {
    const theirs = slots(section(dir, obj, `xvt${i}`));
    for (let k = 0; k < Math.max(theirs.length, t.ours.length); k++) {
      if (theirs[k] !== t.ours[k]) {
        diffs.push(`${abi} ${t.label}[${k}]: ours ${JSON.stringify(t.ours[k])}, C ${JSON.stringify(theirs[k])}`);
      }
    }
  });
  return diffs;
}

/** xsd_errors[] needs <errno.h>: a hosted x86_64 program prints it, one `errnum errstring` a line. */
function compareXsdErrors(dir: string): string[] {
  const src = join(dir, 'xsd.c');
  const exe = join(dir, 'xsd');
  writeFileSync(
    src,
    [
      '#include <errno.h>',
      '#include <stdio.h>',
      '#include <stdint.h>',
      '#include <xen/io/xs_wire.h>',
      'int main(void) {',
      '  for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)',
      '    printf("%d %s\\n", xsd_errors[i].errnum, xsd_errors[i].errstring);',
      '  return 0;',
      '}',
      '',
    ].join('\n'),
  );
  execFileSync('gcc', ['-m64', src, '-o', exe], { stdio: ['ignore', 'pipe', 'pipe'] });
  const theirs = execFileSync(exe, { encoding: 'utf8' }).trim().split('\n');
  const ours = xsd_errors.map((e) => `${e.errnum} ${e.errstring}`);
  const diffs: string[] = [];
  for (let i = 0; i < Math.max(theirs.length, ours.length); i++) {
    if (theirs[i] !== ours[i]) diffs.push(`xsd_errors[${i}]: ours ${ours[i] ?? '(none)'}, C ${theirs[i] ?? '(none)'}`);
  }
  return diffs;
}

function withTmp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-abi-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function compilerError(err: unknown): never {
  const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
  assert.fail(`gcc failed (is libxen-dev installed?):\n${stderr.slice(0, 4000)}`);
}

for (const abi of ABIS) {
  test(`abi: every size, offset and constant matches gcc on ${abi}`, () => {
    const diffs = withTmp((dir) => {
      try {
        return compareAbi(abi, dir);
      } catch (err) {
        compilerError(err);
      }
    });
    assert.deepEqual(diffs, [], `differences from libxen-dev on ${abi}:\n${diffs.join('\n')}`);
  });
}

test('abi: xsd_errors matches the header, in order, errnum and name', () => {
  const diffs = withTmp((dir) => {
    try {
      return compareXsdErrors(dir);
    } catch (err) {
      compilerError(err);
    }
  });
  assert.deepEqual(diffs, []);
});

test('abi: constants the 4.17 headers lack are listed with their reason', (t) => {
  const skipped = allConstants().filter((c) => c.unchecked !== undefined);
  for (const c of skipped) t.diagnostic(`not checked: ${c.name} = ${String(c.value)}: ${c.unchecked}`);
  // Every skip must say why; an empty reason would be a silent skip.
  for (const c of skipped) assert.ok((c.unchecked ?? '').length > 10, `${c.name} is skipped without a reason`);
  assert.ok(skipped.some((c) => c.name === 'XS_GET_QUOTA'), 'XS_GET_QUOTA (Xen 4.21) is registered and skipped');
});

test('abi: the check covers what it claims (counts)', () => {
  const n = numChecks('x86_64').length;
  assert.ok(allStructs().length >= 10 && n > 200, `only ${allStructs().length} structs / ${n} checks registered`);
});
