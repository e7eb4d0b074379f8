/** Fakes for the shell's tests: disks in memory, NICs on two real stacks, a recorded shutdown. */
import { newBlkCounters, type BlkInfo } from '../../devices/blk/index.js';
import { twoStacks } from '../net/test-support.js';
import { Shell, type ShellOptions } from './shell.js';
import type { NicCounters, ShellDisk, ShellNic, ShellShutdown, ShellWorld } from './world.js';

export function blkInfo(sectors: number, over: Partial<BlkInfo> = {}): BlkInfo {
  return {
    sectors, sectorSize: 512, physicalSectorSize: 512, readOnly: false, cdrom: false, removable: false,
    features: {
      flush: true, barrier: false, discard: false, discardSecure: false, discardGranularity: 0, discardAlignment: 0,
      persistent: false, indirectSegments: 0, queues: 1, ringPages: 1, protocol: 'x86_64', trusted: true,
    },
    ...over,
  };
}

export interface MemDisk extends ShellDisk {
  readonly bytes: Uint8Array;
  flushes: number;
  /** [sector, bytes] of each read and write, to check whole-block I/O. */
  readonly io: [string, number, number][];
}

/** A disk of `sectors` 512-byte sectors in memory, checking I/O as blkfront does. */
export function memDisk(devid: number, name: string, sectors: number, over: Partial<BlkInfo> = {}): MemDisk {
  const info = blkInfo(sectors, over);
  const bytes = new Uint8Array(sectors * 512);
  const counters = newBlkCounters();
  const check = (sector: number, len: number): void => {
    if ((sector * 512) % info.sectorSize !== 0 || len % info.sectorSize !== 0 || sector * 512 + len > bytes.length) {
      throw new Error(`bad I/O at sector ${sector}, ${len} bytes`);
    }
  };
  const disk: MemDisk = {
    devid, name, state: 'connected', info, counters, bytes, flushes: 0, io: [],
    read: async (sector, buf) => {
      check(sector, buf.length);
      disk.io.push(['read', sector, buf.length]);
      buf.set(bytes.subarray(sector * 512, sector * 512 + buf.length));
      counters.read.requests++;
    },
    write: async (sector, buf) => {
      check(sector, buf.length);
      disk.io.push(['write', sector, buf.length]);
      bytes.set(buf, sector * 512);
      counters.write.requests++;
    },
    flush: async () => void disk.flushes++,
  };
  return disk;
}

const zeroNic: NicCounters = { rxPackets: 0, rxBytes: 0, rxErrors: 0, rxDropped: 0, txPackets: 0, txBytes: 0, txErrors: 0, txDropped: 0 };

export interface FakeWorld extends ShellWorld {
  readonly shutdowns: [ShellShutdown, string | undefined][];
  diskList: ShellDisk[];
  nicList: ShellNic[];
  readonly net: ReturnType<typeof twoStacks>;
}

/**
 * A world with one 4 MiB disk (xvda) and eth0 = 10.0.0.1 on a bridge with 10.0.0.2. Time is
 * the stacks' fake clock; `sleep` advances it (and yields), so a ping runs at once.
 */
export function fakeWorld(): FakeWorld {
  const net = twoStacks();
  const eth0: ShellNic = { devid: 0, name: 'eth0', mac: '00:16:3e:00:00:01', mtu: 1500, state: 'up', counters: { ...zeroNic, rxPackets: 7, rxBytes: 640 }, stack: net.a.stack };
  const world: FakeWorld = {
    hostname: 'g1', domid: 3, bootedAt: 1000, net,
    now: net.clock.now,
    wallClock: () => new Date(Date.UTC(2026, 10, 26, 8, 30, 5)),
    shutdowns: [],
    diskList: [memDisk(51712, 'xvda', 8192)],
    nicList: [eth0],
    disks: () => world.diskList,
    nics: () => world.nicList,
    sleep: async (ms, signal) => {
      if (signal?.aborted !== true) net.clock.advance(ms);
      await new Promise((r) => setImmediate(r));
    },
    shutdown: async (reason, message) => void world.shutdowns.push([reason, message]),
  };
  return world;
}

/** A shell over `world` whose output collects in `text`. */
export function shellOn(world: ShellWorld, options: ShellOptions = {}): { shell: Shell; output: () => string; type: (s: string) => Promise<string> } {
  let text = '';
  const shell = new Shell(world, { write: (d) => void (text += typeof d === 'string' ? d : Buffer.from(d).toString()) }, options);
  return {
    shell,
    output: () => text,
    /** Type `s`, wait for the shell to be idle, return what it printed meanwhile. */
    type: async (s) => {
      const from = text.length;
      shell.input(new TextEncoder().encode(s));
      await shell.idle();
      return text.slice(from);
    },
  };
}
