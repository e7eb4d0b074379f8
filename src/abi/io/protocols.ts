/**
 * `xen/io/protocols.h`: values of a frontend's `protocol` xenstore key, which tells the backend
 * which struct layouts the ring uses (blkif differs between x86_32 and x86_64).
 */
import { defineConstants, type AbiName } from '../layout.js';

const H = 'xen/io/protocols.h';

export const XEN_IO_PROTO = defineConstants(H, {
  XEN_IO_PROTO_ABI_X86_32: 'x86_32-abi',
  XEN_IO_PROTO_ABI_X86_64: 'x86_64-abi',
  XEN_IO_PROTO_ABI_ARM: 'arm-abi',
});
export const { XEN_IO_PROTO_ABI_X86_32, XEN_IO_PROTO_ABI_X86_64, XEN_IO_PROTO_ABI_ARM } = XEN_IO_PROTO;

/** The native ABI depends on the compiler's target; xenpv is x86_64. */
export const { XEN_IO_PROTO_ABI_NATIVE } = defineConstants(
  H,
  { XEN_IO_PROTO_ABI_NATIVE: 'x86_64-abi' },
  { abi: 'x86_64' },
);

/**
 * The ABI a frontend's `protocol` key selects. An absent key means the backend's native ABI
 * (x86_64 here). Anything else, including `arm-abi`, is `undefined`: the backend must refuse to
 * connect rather than guess a layout.
 */
export function abiFromProtocol(value: string | undefined): AbiName | undefined {
  if (value === undefined || value === XEN_IO_PROTO_ABI_X86_64) return 'x86_64';
  if (value === XEN_IO_PROTO_ABI_X86_32) return 'x86_32';
  return undefined;
}
