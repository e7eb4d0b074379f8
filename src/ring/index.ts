export * from './memory.js';
export * from './sring.js';
export * from './front.js';
export * from './back.js';
export * from './byte-ring.js';
export * from './xenstore-page.js';
export * from './console-page.js';
export * from './codec-check.js';
