export * from './layout.js';
export * from './pin.js';
export * from './maptrack.js';
export * from './ops.js';
export * from './types.js';
