export * from './mac.js';
export * from './checksum.js';
export * from './fdb.js';
export * from './port.js';
export * from './bridge.js';
export * from './pcap.js';
export * from './slab.js';
