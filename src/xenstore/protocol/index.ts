/**
 * The xenstore wire protocol without I/O (STYLE.md habit 5): bytes in, typed values out, and
 * back. Used by the daemon (`../server/`) and the client (`../client/`).
 */
export * from './ops.js';
export * from './header.js';
export * from './parser.js';
export * from './strings.js';
export * from './errors.js';
export * from './perms.js';
export * from './paths.js';
export * from './requests.js';
export * from './replies.js';
