/**
 * The house pattern for Xen's public ABI (STYLE.md habit 1, aesthetics.md §3.3).
 *
 * Each file under abi/ mirrors one C header: it quotes the C struct above its layout, gives
 * every field's byte offset per ABI, and spells every constant as its C macro. Layouts and
 * constants register here, so `xenpv abi --json` can print them all and a test can compare
 * each one against the C compiler's answer for Debian's libxen-dev headers.
 *
 * Field names are C member designators as `offsetof()` takes them: `"operation"`,
 * `"u.rw.sector_number"`, `"seg"` (arrays by their first element).
 */
export type AbiName = 'x86_64' | 'x86_32';
export const ABIS: readonly AbiName[] = ['x86_64', 'x86_32'];

export interface StructLayout {
  readonly size: number;
  readonly fields: Readonly<Record<string, number>>;
}

export interface StructDef {
  /** The C name as `sizeof()` takes it: `struct blkif_request` is registered as `blkif_request`. */
  readonly name: string;
  /** The C type expression, when it is not `struct <name>` (e.g. a typedef such as `ioreq_t`). */
  readonly cType: string;
  /** The header that declares it, relative to /usr/include (e.g. `xen/io/blkif.h`). */
  readonly header: string;
  readonly layouts: Readonly<Record<AbiName, StructLayout>>;
}

export type ConstValue = number | string;

export interface ConstDef {
  readonly name: string;
  readonly value: ConstValue;
  readonly header: string;
  /** Set when the value holds for this ABI only (it depends on e.g. `sizeof(xen_ulong_t)`). */
  readonly abi?: AbiName;
  /**
   * Set when the C compiler cannot check the constant against Debian's libxen-dev 4.17 headers,
   * saying why (e.g. which newer Xen defines it). The C comparison lists these and skips them.
   */
  readonly unchecked?: string;
}

export interface ConstOptions {
  readonly abi?: AbiName;
  readonly unchecked?: string;
}

const structs = new Map<string, StructDef>();
const constants = new Map<string, ConstDef>();

/**
 * Register a struct. Give `x86_32` only where the layout differs; otherwise the x86_64 layout
 * stands for both.
 */
export function defineStruct<const L64 extends StructLayout, const L32 extends StructLayout = L64>(
  header: string,
  name: string,
  x86_64: L64,
  x86_32?: L32,
  cType = `struct ${name}`,
): StructDef & { readonly layouts: { readonly x86_64: L64; readonly x86_32: L32 } } {
  if (structs.has(name)) throw new Error(`abi: struct ${name} defined twice`);
  const layouts = { x86_64, x86_32: (x86_32 ?? x86_64) as L32 };
  const def = { name, cType, header, layouts };
  structs.set(name, def);
  return def;
}

/** Register constants under their C macro names; returns the same object, `as const` kept. */
export function defineConstants<const T extends Record<string, ConstValue>>(
  header: string,
  values: T,
  options: ConstOptions = {},
): T {
  for (const [name, value] of Object.entries(values)) {
    const prior = constants.get(name);
    if (prior !== undefined && prior.value !== value) {
      throw new Error(`abi: constant ${name} defined twice with different values`);
    }
    constants.set(name, { name, value, header, ...options });
  }
  return values;
}

export function allStructs(): StructDef[] {
  return [...structs.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function allConstants(): ConstDef[] {
  return [...constants.values()].sort((a, b) => a.name.localeCompare(b.name));
}
