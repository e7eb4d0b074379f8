export * from './layout.js';
export * from './hypercalls.js';
export * from './listener.js';
