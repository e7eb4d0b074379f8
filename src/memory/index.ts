export * from './machine.js';
export * from './lock.js';
export * from './domains.js';
export * from './domain-memory.js';
export * from './view-addresses.js';
