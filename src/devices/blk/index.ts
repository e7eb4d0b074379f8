/**
 * The PV block device's public API, for the toolstack (backends), the guest kernel and guest
 * programs (frontends), `builtin:fio`, `xenpv block-list` and `xenpv bench block`.
 *
 * Backend (dom0), one per disk:
 *   const back = new BlkBack(platform, xs, storage, '/local/domain/0/backend/vbd/<fe>/<devid>', options);
 *   await back.start();        // probe, InitWait, then follows the frontend on its own
 *   back.info();               // BlkBackInfo for block-list: state, geometry, negotiated features, counters
 *   await back.resize(n);      // online resize (storage must support it)
 *   await back.shutdown();     // graceful; back.destroy() when the directory is gone
 *
 * Or let xenbus's BackendWatcher create them as the toolstack adds devices (hot-plug):
 *   new BackendWatcher(xs, blkBackendDriver(platform, openStorageFor, options, onDevice), { backDomid: 0, backClass: 'vbd' })
 *
 * Frontend (guest), one per vbd (or FrontendWatcher + blkFrontendDriver):
 *   const disk = new BlkFront(platform, xs, '/local/domain/<fe>/device/vbd/<devid>', options);
 *   await disk.start();                      // resolves when Connected
 *   await disk.read(sector, u8OrBlkBuffer);  // sector in 512-byte units, whole logical blocks
 *   await disk.write(sector, u8OrBlkBuffer); // resolves when acknowledged
 *   disk.submit('read', sector, buf, done, tag); // io_submit-style: done(tag, err) later, no promise
 *   await disk.flush();                      // every write acknowledged before it is durable
 *   await disk.discard(sector, count, { secure });
 *   disk.info;                               // sectors, sectorSize, readOnly, features
 *   disk.counters;                           // per op: requests, bytes, errors, timeNs
 *   const b = disk.allocBuffer(bytes);       // guest pages: zero-copy with a trusted backend
 *   const k = disk.allocBuffer(bytes, { persistent: true }); // reused for many requests: its
 *                                            // pages stay granted (feature-persistent), <= MAX_KEPT_BYTES
 *   await disk.close();                      // guest-side unplug
 * Many operations may be in flight at once (queue depth = ring slots over all queues; more
 * wait inside the frontend). Errors are XenpvError with code EIO (backend error or hostile
 * backend), EOPNOTSUPP, EROFS, ERANGE, EINVAL, ENODEV (device removed), ENOMEM, EBUSY.
 */
export { BlkBack, blkBackendDriver, type BlkBackInfo, type BlkBackOptions, type ServedQueue } from './back.js';
// A queue served in a thread of its own (toolstack/domain/ring-worker.ts).
export { BackQueue, type QueueHost, type QueueSetup } from './back-queue.js';
export type { RequestContext } from './request.js';
export { BlkFront, blkFrontendDriver } from './front.js';
export type { IoDone } from './front-op.js';
export type { BlkFeatures, BlkFrontOptions, BlkFrontState, BlkInfo } from './front-api.js';
export { BlkBuffer } from './blk-buffer.js';
export { newBlkCounters, snapshotCounters, type BlkCounters, type BlkOpCounter, type OpKind } from './counters.js';
export { BACK_LIMITS, BLK_KEYS, FRONT_DEFAULTS, MAX_KEPT_BYTES } from './protocol.js';
