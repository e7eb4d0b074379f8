/**
 * `xenpv abi [--json]`: Xen's public ABI as xenpv knows it: every registered struct (size and
 * each field's offset, per ABI) and every constant, under their C names. The same registry is
 * what abi/abi-vs-c.test.ts compares with gcc.
 */
import type { Command } from 'commander';
import { ABIS, allConstants, allStructs, type AbiName, type ConstValue, type StructLayout } from '../../abi/index.js';

export interface AbiJson {
  readonly structs: Record<string, Record<AbiName, StructLayout>>;
  readonly constants: Record<string, ConstValue>;
}

export function abiJson(): AbiJson {
  const structs: Record<string, Record<AbiName, StructLayout>> = {};
  for (const s of allStructs()) {
    structs[s.name] = { x86_64: s.layouts.x86_64, x86_32: s.layouts.x86_32 };
  }
  const constants: Record<string, ConstValue> = {};
  for (const c of allConstants()) constants[c.name] = c.value;
  return { structs, constants };
}

function formatValue(v: ConstValue): string {
  if (typeof v === 'string') return JSON.stringify(v);
  return v >= 16 ? `${v} (0x${v.toString(16)})` : String(v);
}

function structLines(header: string): string[] {
  const out: string[] = [];
  for (const s of allStructs().filter((x) => x.header === header)) {
    const l64 = s.layouts.x86_64;
    const l32 = s.layouts.x86_32;
    out.push(`  ${s.cType.padEnd(44)} ${'x86_64'.padStart(8)} ${'x86_32'.padStart(8)}`);
    out.push(`    ${'sizeof'.padEnd(42)} ${String(l64.size).padStart(8)} ${String(l32.size).padStart(8)}`);
    const fields = [...new Set([...Object.keys(l64.fields), ...Object.keys(l32.fields)])];
    for (const f of fields) {
      const cell = (off: number | undefined): string => (off === undefined ? '-' : String(off)).padStart(8);
      out.push(`    ${f.padEnd(42)} ${cell(l64.fields[f])} ${cell(l32.fields[f])}`);
    }
  }
  return out;
}

function constantLines(header: string): string[] {
  const consts = allConstants().filter((c) => c.header === header);
  const reasons = [...new Set(consts.flatMap((c) => (c.unchecked === undefined ? [] : [c.unchecked])))];
  const lines = consts.map((c) => {
    const mark = c.unchecked === undefined ? '' : `   [not checked: note ${reasons.indexOf(c.unchecked) + 1}]`;
    const abi = c.abi === undefined ? '' : `   [${c.abi} only]`;
    return `  ${c.name.padEnd(44)} ${formatValue(c.value)}${abi}${mark}`;
  });
  return [...lines, ...reasons.map((r, i) => `  note ${i + 1}: ${r}`)];
}

/** The readable listing: one section per header, structs (offsets per ABI) then constants. */
export function abiText(): string {
  const headers = new Set<string>();
  for (const s of allStructs()) headers.add(s.header);
  for (const c of allConstants()) headers.add(c.header);
  const out: string[] = [];
  for (const h of [...headers].sort()) {
    out.push(h, ...structLines(h), ...constantLines(h), '');
  }
  out.push(`${allStructs().length} structs (${ABIS.join(', ')}), ${allConstants().length} constants`);
  return `${out.join('\n')}\n`;
}

export function registerAbi(program: Command): void {
  program
    .command('abi')
    .description("print Xen's public ABI as xenpv knows it: every struct layout and constant")
    .option('--json', 'as one JSON object')
    .action((opts: { json?: boolean }) => {
      process.stdout.write(opts.json === true ? `${JSON.stringify(abiJson(), null, 2)}\n` : abiText());
    });
}
