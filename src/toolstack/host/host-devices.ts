/**
 * The host's device operations on a running domain: xl block-attach/-detach/-list,
 * network-attach/-detach/-list, and the per-device counters behind domstats and top.
 */
import { XenpvError } from '../../base/index.js';
import { parseXenbusState } from '../../abi/io/xenbus.js';
import { errorCode } from '../../base/index.js';
import { backendPath, frontendPath } from '../../xenbus/index.js';
import { diskVdev, parseDiskSpec, parseVifSpec, resolveVif, vdevToDevid, COMMAND_LINE } from '../config/index.js';
import { diskTarget, type Domain } from '../domain/domain.js';
import { plugDisk, plugNic, unplug, type DiskDevice, type NicDevice } from '../domain/devices.js';
import type { Host } from './host.js';

export interface BlockRow {
  readonly vdev: number;
  readonly be: number;
  readonly handle: number;
  readonly state: number;
  readonly evtch: number;
  readonly ringRef: number;
  readonly bePath: string;
}

export interface NicRow {
  readonly idx: number;
  readonly be: number;
  readonly mac: string;
  readonly handle: number;
  readonly state: number;
  readonly evtch: number;
  readonly txRef: number;
  readonly rxRef: number;
  readonly bePath: string;
}

export class HostDevices {
  constructor(private readonly host: Host) {}

  private async num(path: string, dflt = -1): Promise<number> {
    try {
      const v = Number(await this.host.store.readString(path));
      return Number.isInteger(v) ? v : dflt;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return dflt;
      throw err;
    }
  }

  /** `baseDir`: where a relative target is found (the caller's working directory). */
  async blockAttach(ref: string | number, spec: string | readonly string[], baseDir = process.cwd()): Promise<number> {
    const d = this.host.lookup(ref);
    const disk = parseDiskSpec(spec, COMMAND_LINE);
    const devid = diskVdev(disk, COMMAND_LINE).devid;
    if (d.disks.has(devid)) throw new XenpvError('EEXIST', `domain ${d.config.name} already has a disk ${disk.vdev}`);
    d.disks.set(devid, await plugDisk(this.host.env, d.domid, devid, disk, diskTarget(baseDir, disk.target)));
    return devid;
  }

  async blockDetach(ref: string | number, vdev: string, force = false): Promise<{ timedOut: boolean }> {
    const d = this.host.lookup(ref);
    const devid = /^\d+$/.test(vdev) ? Number(vdev) : vdevToDevid(vdev, COMMAND_LINE);
    const dev = d.disks.get(devid);
    if (dev === undefined) throw new XenpvError('ENOENT', `domain ${d.config.name} has no disk ${vdev}`);
    d.disks.delete(devid);
    return unplug(this.host.env, dev, force);
  }

  async blockList(ref: string | number): Promise<BlockRow[]> {
    const d = this.host.lookup(ref);
    const rows: BlockRow[] = [];
    for (const [devid, dev] of [...d.disks].sort((a, b) => a[0] - b[0])) {
      const fe = frontendPath(dev.dev);
      rows.push({
        vdev: devid, be: 0, handle: devid,
        state: parseXenbusState(await this.host.store.readString(`${fe}/state`).catch(() => '0')) ?? 0,
        evtch: await this.num(`${fe}/event-channel`, await this.num(`${fe}/queue-0/event-channel`)),
        ringRef: await this.num(`${fe}/ring-ref`, await this.num(`${fe}/ring-ref0`, await this.num(`${fe}/queue-0/ring-ref`, await this.num(`${fe}/queue-0/ring-ref0`)))),
        bePath: backendPath(dev.dev),
      });
    }
    return rows;
  }

  async networkAttach(ref: string | number, spec: readonly string[]): Promise<number> {
    const d = this.host.lookup(ref);
    const parsed = parseVifSpec(spec.join(','), COMMAND_LINE);
    const next = d.nics.size === 0 ? 0 : Math.max(...d.nics.keys()) + 1;
    const vif = resolveVif(parsed, next, 'pv');
    if (d.nics.has(vif.devid)) throw new XenpvError('EEXIST', `domain ${d.config.name} already has vif ${vif.devid}`);
    d.nics.set(vif.devid, await plugNic(this.host.env, d.domid, vif));
    return vif.devid;
  }

  async networkDetach(ref: string | number, which: string): Promise<{ timedOut: boolean }> {
    const d = this.host.lookup(ref);
    // xl: anything with a ':' is a MAC, else the devid.
    const dev = which.includes(':')
      ? [...d.nics.values()].find((n) => n.vif.mac === which.toLowerCase())
      : d.nics.get(Number(which));
    if (dev === undefined) throw new XenpvError('ENOENT', `domain ${d.config.name} has no vif ${which}`);
    d.nics.delete(dev.vif.devid);
    return unplug(this.host.env, dev);
  }

  async networkList(ref: string | number): Promise<NicRow[]> {
    const d = this.host.lookup(ref);
    const rows: NicRow[] = [];
    for (const [devid, dev] of [...d.nics].sort((a, b) => a[0] - b[0])) {
      const fe = frontendPath(dev.dev);
      rows.push({
        idx: devid, be: 0, mac: dev.vif.mac, handle: devid,
        state: parseXenbusState(await this.host.store.readString(`${fe}/state`).catch(() => '0')) ?? 0,
        evtch: await this.num(`${fe}/event-channel`, await this.num(`${fe}/event-channel-tx`, await this.num(`${fe}/queue-0/event-channel-tx`))),
        txRef: await this.num(`${fe}/tx-ring-ref`, await this.num(`${fe}/queue-0/tx-ring-ref`)),
        rxRef: await this.num(`${fe}/rx-ring-ref`, await this.num(`${fe}/queue-0/rx-ring-ref`)),
        bePath: backendPath(dev.dev),
      });
    }
    return rows;
  }

  /** virsh domstats' block.* and net.* keys for one domain. */
  stats(d: Domain): Record<string, number | string> {
    const out: Record<string, number | string> = {};
    const disks: DiskDevice[] = [...d.disks.values()];
    out['block.count'] = disks.length;
    disks.forEach((disk, i) => {
      const c = disk.back.info().counters;
      const p = `block.${i}`;
      out[`${p}.name`] = disk.spec.vdev;
      out[`${p}.path`] = disk.target;
      out[`${p}.rd.reqs`] = c.read.requests;
      out[`${p}.rd.bytes`] = c.read.bytes;
      out[`${p}.rd.times`] = c.read.timeNs;
      out[`${p}.wr.reqs`] = c.write.requests;
      out[`${p}.wr.bytes`] = c.write.bytes;
      out[`${p}.wr.times`] = c.write.timeNs;
      out[`${p}.fl.reqs`] = c.flush.requests;
      out[`${p}.fl.times`] = c.flush.timeNs;
      out[`${p}.errs`] = c.read.errors + c.write.errors + c.flush.errors + c.discard.errors;
      out[`${p}.capacity`] = disk.storage.sectorCount * 512;
    });
    const nics: NicDevice[] = [...d.nics.values()];
    out['net.count'] = nics.length;
    nics.forEach((nic, i) => {
      const s = nic.back.stats().port;
      const p = `net.${i}`;
      out[`${p}.name`] = nic.name;
      // The vif's view, as virsh reports a tap: rx is what the guest sent (the bridge port received).
      out[`${p}.rx.bytes`] = s?.rxBytes ?? 0;
      out[`${p}.rx.pkts`] = s?.rxPackets ?? 0;
      out[`${p}.rx.errs`] = s?.rxErrors ?? 0;
      out[`${p}.rx.drop`] = s?.rxDropped ?? 0;
      out[`${p}.tx.bytes`] = s?.txBytes ?? 0;
      out[`${p}.tx.pkts`] = s?.txPackets ?? 0;
      out[`${p}.tx.errs`] = s?.txErrors ?? 0;
      out[`${p}.tx.drop`] = s?.txDropped ?? 0;
    });
    return out;
  }
}
