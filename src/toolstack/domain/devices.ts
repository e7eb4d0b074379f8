/**
 * A domain's PV devices as libxl plugs them (libxl_disk.c, libxl_nic.c; protocols.md §2.2):
 * both directories written in one transaction with libxl's keys and permissions
 * (xenbus `addDevice`), then the backend started in dom0 on its storage or bridge. Unplug is
 * libxl's: online=0 + Closing, wait for the backend's Closed (the guest's frontend takes it
 * there), remove the directories, stop the backend and close its storage.
 */
import { XenpvError, type DomId } from '../../base/index.js';
import { BlkBack } from '../../devices/blk/index.js';
import { openStorage } from '../../devices/blk/storage/open.js';
import type { BlockStorage } from '../../devices/blk/storage/types.js';
import { ThreadedDiskBackend, type BackendThreads, type DiskBackend } from './disk-thread.js';
import { NetBack } from '../../devices/net/back.js';
import type { BridgeSet } from '../../devices/net/bridge/index.js';
import type { SimPlatform } from '../../hv/sim/platform.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { addDevice, backendPath, removeDevice, type DeviceId } from '../../xenbus/index.js';
import { devidToVdev, type DiskSpec, type ResolvedVif, vifRateXenstoreValue } from '../config/index.js';

export interface DiskDevice {
  readonly kind: 'vbd';
  readonly dev: DeviceId;
  readonly spec: DiskSpec;
  readonly target: string;
  /** BlkBack on the host thread, or in a dom0 worker of its own (disk-thread.ts). */
  readonly back: DiskBackend;
  /** Its size; closed by stopBackend (the worker closes its own). */
  readonly storage: DiskStorageView;
}

export interface DiskStorageView {
  readonly sectorCount: number;
  close(): Promise<void>;
}

export interface NicDevice {
  readonly kind: 'vif';
  readonly dev: DeviceId;
  readonly vif: ResolvedVif;
  readonly name: string;
  readonly back: NetBack;
}

export interface Dom0Services {
  readonly platform: SimPlatform;
  readonly store: XsClient;
  readonly bridges: BridgeSet;
  /** Run each disk's backend in a dom0 worker thread of its own (DESIGN.md §3); absent: on this thread. */
  readonly threads?: BackendThreads;
}

/** How long unplug waits for the backend to close (libxl: LIBXL_DESTROY_TIMEOUT, 10 s). */
export const UNPLUG_TIMEOUT_MS = 10_000;

function devId(cls: 'vbd' | 'vif', domid: DomId, devid: number): DeviceId {
  return { frontClass: cls, backClass: cls, frontDomid: domid, backDomid: 0 as DomId, devid };
}

/**
 * Open the disk's image (a missing or unreadable image fails here, before anything is
 * written), write both directories and start BlkBack.
 */
export async function plugDisk(s: Dom0Services, domid: DomId, devid: number, spec: DiskSpec, target: string): Promise<DiskDevice> {
  if (spec.format !== 'raw' && spec.format !== 'qcow2') {
    throw new XenpvError('EOPNOTSUPP', `disk ${spec.vdev}: format ${spec.format} is not supported (raw, qcow2)`);
  }
  const dev = devId('vbd', domid, devid);
  const storageSpec = { format: spec.format, target, readOnly: !spec.readwrite } as const;
  if (s.threads !== undefined) {
    const back = await ThreadedDiskBackend.spawn(s.threads, backendPath(dev), storageSpec);
    const storage: DiskStorageView = { get sectorCount() { return back.sectorCount; }, close: () => Promise.resolve() };
    try {
      await writeDiskDirs(s, dev, devid, spec, target);
    } catch (err) {
      await back.destroy();
      await removeDevice(s.store, dev, { timeoutMs: 0, force: true }).catch(() => undefined);
      throw err;
    }
    back.start();
    return { kind: 'vbd', dev, spec, target, back, storage };
  }
  const storage = await openStorage(storageSpec);
  try {
    await writeDiskDirs(s, dev, devid, spec, target);
    const back = new BlkBack(s.platform, s.store, storage, backendPath(dev));
    await back.start();
    return { kind: 'vbd', dev, spec, target, back, storage };
  } catch (err) {
    await storage.close().catch(() => undefined);
    await removeDevice(s.store, dev, { timeoutMs: 0, force: true }).catch(() => undefined);
    throw err;
  }
}

/** Both directories, with libxl's keys (a failure leaves nothing behind). */
async function writeDiskDirs(s: Dom0Services, dev: DeviceId, devid: number, spec: DiskSpec, target: string): Promise<void> {
  await addDevice(s.store, dev, {
    frontKeys: { 'virtual-device': devid, 'device-type': spec.devtype, trusted: spec.trusted ?? true ? 1 : 0 },
    backKeys: {
      params: target,
      script: 'block',
      type: 'phy',
      mode: spec.readwrite ? 'w' : 'r',
      'device-type': spec.devtype,
      removable: spec.removable ? 1 : 0,
      bootable: 1,
      dev: devidToVdev(devid) ?? spec.vdev,
      'discard-enable': spec.discard ?? true ? 1 : 0,
      specification: 'xen',
    },
  });
}

export async function plugNic(s: Dom0Services, domid: DomId, vif: ResolvedVif): Promise<NicDevice> {
  const dev = devId('vif', domid, vif.devid);
  const name = vif.vifname ?? `vif${domid}.${vif.devid}`;
  const rate: Record<string, string> = vif.rate === undefined ? {} : { rate: vifRateXenstoreValue(vif.rate) };
  await addDevice(s.store, dev, {
    frontKeys: { mac: vif.mac, handle: vif.devid, mtu: vif.mtu, trusted: vif.trusted ? 1 : 0 },
    backKeys: {
      mac: vif.mac, bridge: vif.bridge, handle: vif.devid, mtu: vif.mtu, type: 'vif',
      script: vif.script, vifname: name, 'hotplug-status': 'connected', ...rate,
    },
  });
  try {
    const back = new NetBack({ platform: s.platform, store: s.store, bridge: s.bridges.get(vif.bridge), backendPath: backendPath(dev) });
    await back.start();
    return { kind: 'vif', dev, vif, name, back };
  } catch (err) {
    await removeDevice(s.store, dev, { timeoutMs: 0, force: true }).catch(() => undefined);
    throw err;
  }
}

/** Graceful unplug (block-detach, network-detach). `force`: do not wait for the guest. */
export async function unplug(s: Dom0Services, d: DiskDevice | NicDevice, force = false): Promise<{ timedOut: boolean }> {
  const r = await removeDevice(s.store, d.dev, { timeoutMs: force ? 0 : UNPLUG_TIMEOUT_MS, force });
  await stopBackend(d);
  return r;
}

/** Stop the backend and release its storage, without touching the store. */
export async function stopBackend(d: DiskDevice | NicDevice): Promise<void> {
  if (d.kind === 'vbd') {
    await d.back.destroy().catch(() => undefined);
    await d.storage.close().catch(() => undefined);
  } else {
    await d.back.dispose().catch(() => undefined);
  }
}
