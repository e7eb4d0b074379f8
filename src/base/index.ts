export * from './errors.js';
export * from './ids.js';
export * from './u32.js';
export * from './bounded-queue.js';
export * from './dispose.js';
export * from './wait.js';
export * from './leaks.js';
export * from './xorshift.js';
