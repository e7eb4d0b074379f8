/**
 * `xen/io/console.h`: the PV console page, two byte rings with free-running u32 indices.
 *
 * The guest writes its output into `out` and notifies; the console daemon writes input into
 * `in`. Indices are masked with `MASK_XENCONS_IDX(idx, ring) = idx & (sizeof(ring) - 1)`.
 */
import { defineConstants, defineStruct } from '../layout.js';

const H = 'xen/io/console.h';

/*
 * struct xencons_interface {                  sizeof = 3088, same on every ABI
 *     char in[1024];                @0     console daemon -> guest (keyboard input)
 *     char out[2048];               @1024  guest -> console daemon (output)
 *     XENCONS_RING_IDX in_cons;     @3072  written by the guest
 *     XENCONS_RING_IDX in_prod;     @3076  written by the daemon
 *     XENCONS_RING_IDX out_cons;    @3080  written by the daemon
 *     XENCONS_RING_IDX out_prod;    @3084  written by the guest
 *     uint8_t connection;           @3088  newer Xen only, see XENCONSOLE_* below
 * };
 */
export const XENCONS_INTERFACE = defineStruct(H, 'xencons_interface', {
  size: 3088,
  fields: { in: 0, out: 1024, in_cons: 3072, in_prod: 3076, out_cons: 3080, out_prod: 3084 },
});

/** Byte sizes of the two rings (`sizeof(intf->in)`, `sizeof(intf->out)`). */
export const XENCONS_RING_BYTES = { in: 1024, out: 2048 } as const;

/** `MASK_XENCONS_IDX(idx, ring)` for the `in` ring. */
export function maskXenconsIn(idx: number): number {
  return idx & (XENCONS_RING_BYTES.in - 1);
}

/** `MASK_XENCONS_IDX(idx, ring)` for the `out` ring. */
export function maskXenconsOut(idx: number): number {
  return idx & (XENCONS_RING_BYTES.out - 1);
}

/**
 * The connection flag appended after the indices by newer Xen ("xenconsole: Add connection
 * flag", Aug 2025): the domain builder writes DISCONNECTED, xenconsoled writes CONNECTED once it
 * services the ring, so an early guest can stop waiting on a dead console.
 */
export const XENCONSOLE_CONNECTION = defineConstants(
  H,
  { XENCONSOLE_CONNECTED: 0, XENCONSOLE_DISCONNECTED: 1 },
  { unchecked: 'Xen 4.21 (console.h connection flag, Aug 2025); not in libxen-dev 4.17' },
);
export const { XENCONSOLE_CONNECTED, XENCONSOLE_DISCONNECTED } = XENCONSOLE_CONNECTION;

/** Offset of the newer `connection` byte; it lies beyond 4.17's struct, so it is not registered. */
export const XENCONS_CONNECTION_OFFSET = 3088;
