/**
 * Both ends of the PV console page (`xen/io/console.h`):
 *
 * ```c
 * struct xencons_interface {
 *     char in[1024];                       // @0     to the guest (backend writes)
 *     char out[2048];                      // @1024  from the guest (guest writes)
 *     XENCONS_RING_IDX in_cons, in_prod;   // @3072, @3076
 *     XENCONS_RING_IDX out_cons, out_prod; // @3080, @3084
 * };
 * #define MASK_XENCONS_IDX(idx, ring) ((idx) & (sizeof(ring)-1))
 * ```
 * The backend reads `out_prod`/`out_cons` once and ignores the data when
 * `prod - cons > sizeof(out)` (xenconsoled; reliability.md R24): the reader end goes broken.
 */
import { XENCONS_INTERFACE, XENCONS_RING_BYTES } from '../abi/io/console.js';
import { ByteRingReader, ByteRingWriter, type ByteRingLayout, type ByteRingOptions } from './byte-ring.js';
import { toRingMemory, type RingMemoryInput } from './memory.js';

const OFF = XENCONS_INTERFACE.layouts.x86_64.fields;

export const CONSOLE_IN_RING: ByteRingLayout = {
  data: OFF.in,
  size: XENCONS_RING_BYTES.in,
  cons: OFF.in_cons,
  prod: OFF.in_prod,
};
export const CONSOLE_OUT_RING: ByteRingLayout = {
  data: OFF.out,
  size: XENCONS_RING_BYTES.out,
  cons: OFF.out_cons,
  prod: OFF.out_prod,
};

/** The guest's end: writes output, reads input. */
export class ConsoleGuestPage {
  readonly output: ByteRingWriter;
  readonly input: ByteRingReader;

  constructor(page: RingMemoryInput, options: ByteRingOptions = {}) {
    const mem = toRingMemory(page);
    this.output = new ByteRingWriter(mem, CONSOLE_OUT_RING, options);
    this.input = new ByteRingReader(mem, CONSOLE_IN_RING, options);
  }
}

/** The backend's end (xenconsoled's): reads the guest's output, writes its input. */
export class ConsoleBackPage {
  readonly output: ByteRingReader;
  readonly input: ByteRingWriter;

  constructor(page: RingMemoryInput, options: ByteRingOptions = {}) {
    const mem = toRingMemory(page);
    this.output = new ByteRingReader(mem, CONSOLE_OUT_RING, options);
    this.input = new ByteRingWriter(mem, CONSOLE_IN_RING, options);
  }
}
