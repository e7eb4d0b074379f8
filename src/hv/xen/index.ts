/**
 * The `xen` platform: xenpv's devices on a real Xen domain through Linux's /dev/xen/*.
 * `loadXenPlatform()` opens it or says why it cannot (`{ ok: false, reason }`).
 */
export { XenPlatform, loadXenPlatform, xenUnavailableReason, type XenPlatformOptions, type XenPlatformResult } from './platform.js';
export { storeSocketPath, openXenStore } from './store.js';
export { loadNative, type Native, type NativeResult } from './ffi.js';
export { XenHypercalls } from './hypercall.js';
export { openLocalStoreRing, type LocalStoreRing } from './local-store.js';
export type { DomainInfo } from './domaininfo.js';
