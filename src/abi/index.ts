/**
 * Xen's public ABI, one module per C header. Importing this module registers every struct and
 * constant (see layout.ts), so `allStructs()`/`allConstants()` are complete after it.
 */
export * from './layout.js';
export * from './io/ring.js';
export * from './io/xs_wire.js';
export * from './grant_table.js';
export * from './event_channel.js';
export * from './xen.js';
export * from './io/xenbus.js';
export * from './io/console.js';
export * from './io/blkif.js';
export * from './io/blkif-codec.js';
export * from './io/protocols.js';
export * from './io/netif.js';
export * from './io/netif-codec.js';
export * from './hvm/ioreq.js';
export * from './hvm/params.js';
export * from './hvm/pvdrivers.js';
export * from './platform.js';
