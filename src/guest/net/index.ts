export * from './addr.js';
export * from './arp.js';
export * from './ipv4.js';
export * from './icmp.js';
export * from './udp.js';
export * from './counters.js';
export * from './stack.js';
