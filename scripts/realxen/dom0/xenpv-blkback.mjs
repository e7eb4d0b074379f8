// Runs in the test dom0 on real Xen: xenpv's blkback on the `xen` platform serving one disk
// to a domU. The vbd frontend and backend directories are written by xenpv's toolstack code
// (plugDisk → addDevice, libxl's keys and permissions), then BlkBack follows the frontend.
//   node xenpv-blkback.mjs --domid N --disk 'format=raw,vdev=xvda,access=rw,target=/path.img'
// Prints XENPV-BLKBACK READY once the backend is InitWait, STATS on SIGTERM, then exits.
// --sync 1: the storage opened as a disk thread opens it (toolstack/domain/disk-worker.ts), so
// READ/WRITE move straight between the image and the frontend's gntdev-mapped pages by
// io_uring / Linux AIO (devices/blk/back-sync.ts); this process serves one disk, as a disk
// thread does, so blocking its event loop for a transfer is what that thread does too.
import { parseArgs } from 'node:util';
import { loadXenPlatform } from '../dist/hv/xen/index.js';
import { XsClient } from '../dist/xenstore/client/index.js';
import { parseDiskSpec, vdevToDevid } from '../dist/toolstack/config/index.js';
import { plugDisk, unplug } from '../dist/toolstack/domain/devices.js';
import { BlkBack } from '../dist/devices/blk/index.js';
import { openStorage } from '../dist/devices/blk/storage/open.js';
import { addDevice, backendPath } from '../dist/xenbus/index.js';

const { values } = parseArgs({
  options: { domid: { type: 'string' }, disk: { type: 'string' }, 'data-path': { type: 'string' }, persistent: { type: 'string' }, 'max-indirect': { type: 'string' }, sync: { type: 'string' } },
});
const domid = Number(values.domid);
const spec = parseDiskSpec(values.disk ?? '');
const devid = vdevToDevid(spec.vdev);

const r = await loadXenPlatform({ onError: (err, port) => console.log(`XENPV-BLKBACK handler error port ${port}: ${err}`) });
if (!r.ok) {
  console.log(`XENPV-BLKBACK FATAL xen platform unavailable: ${r.reason}`);
  process.exit(2);
}
const platform = r.platform;
const store = new XsClient(await platform.openStore());
// plugDisk needs the platform and the store of Dom0Services; it never touches the bridges.
const services = { platform, store, bridges: undefined };
let disk;
try {
  disk = values['data-path'] === undefined && values.persistent === undefined && values['max-indirect'] === undefined && values.sync === undefined
    ? await plugDisk(services, domid, devid, spec, spec.target)
    : await plugWithOptions();
} catch (err) {
  console.log(`XENPV-BLKBACK FATAL plug: ${err.code ?? ''} ${err.message}`);
  process.exit(3);
}
console.log(`XENPV-BLKBACK READY platform=${platform.describe()} backend=${disk.back.backPath} storage=${disk.storage.description} data-path=${disk.storage.syncIo?.engine ?? 'asynchronous'}`);

/**
 * plugDisk with BlkBack options it does not take: the same directories through the same
 * toolstack helper (addDevice, libxl's keys and permissions), then BlkBack with the options.
 */
async function plugWithOptions() {
  const sync = values.sync === '1';
  const storage = await openStorage({ format: spec.format, target: spec.target, readOnly: !spec.readwrite, sync });
  if (sync && storage.syncIo === undefined) throw new Error(`--sync 1: ${storage.description} offers no synchronous data path`);
  const dev = { frontClass: 'vbd', backClass: 'vbd', frontDomid: domid, backDomid: 0, devid };
  await addDevice(store, dev, {
    frontKeys: { 'virtual-device': devid, 'device-type': spec.devtype, trusted: 1 },
    backKeys: { params: spec.target, script: 'block', type: 'phy', mode: spec.readwrite ? 'w' : 'r', 'device-type': spec.devtype,
      removable: 0, bootable: 1, dev: spec.vdev, 'discard-enable': 1, specification: 'xen' },
  });
  const options = { dataPath: values['data-path'] ?? 'map', persistent: values.persistent !== '0', maxIndirectSegments: Number(values['max-indirect'] ?? 256) };
  console.log(`XENPV-BLKBACK options ${JSON.stringify(options)}`);
  const back = new BlkBack(platform, store, storage, backendPath(dev), options);
  await back.start();
  return { kind: 'vbd', dev, spec, target: spec.target, back, storage };
}

const timer = setInterval(() => {
  const i = disk.back.info();
  console.log(`XENPV-BLKBACK tick connected=${i.connected} queues=${i.queues} ring-pages=${i.ringPages} persistent=${i.persistent}/${i.persistentGrants} in-flight=${i.inFlight}`);
}, 5000);

async function stop() {
  clearInterval(timer);
  const i = disk.back.info();
  const c = Object.entries(i.counters).map(([op, k]) => `${op}=${k.requests}/${k.bytes}B/${k.errors}err`).join(' ');
  console.log(`XENPV-BLKBACK STATS protocol=${i.protocol} queues=${i.queues} ring-pages=${i.ringPages} persistent=${i.persistent} ${c}`);
  // The domain is gone by now: unplug without waiting for a frontend, remove the directories.
  await unplug(services, disk, true).catch((err) => console.log(`XENPV-BLKBACK unplug: ${err.message}`));
  store.close();
  await platform.close();
  console.log('XENPV-BLKBACK STOPPED');
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
