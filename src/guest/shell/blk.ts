/**
 * `blk`: the guest's disks through blkfront. Sector numbers are blkif's 512-byte units; I/O
 * goes to whole logical blocks (`sector-size`), so a write of a few bytes is read, patched
 * and written back, as a byte write through Linux's page cache would be.
 */
import { CommandError, UsageError, intArg, type Command, type CommandContext } from './command.js';
import { SECTOR, blkInfoLines, hexdump } from './format.js';
import type { ShellDisk, ShellWorld } from './world.js';

/**
 * Sectors one `blk read` shows: 8 KiB, at most ~41 KB of hexdump, inside the console's
 * 64 KiB output queue (console/front.ts drops what does not fit).
 */
export const MAX_READ_SECTORS = 16;
/** Bytes one `blk write` takes (a 4095-byte line holds 2045 bytes in hex). */
export const MAX_WRITE_BYTES = 4096;

export function findDisk(world: ShellWorld, name: string): ShellDisk {
  const disks = world.disks();
  const d = disks.find((x) => x.name === name || String(x.devid) === name);
  if (d !== undefined) return d;
  const have = disks.map((x) => x.name).join(', ');
  throw new CommandError(`${name}: no such disk (${have === '' ? 'no disks' : `disks: ${have}`})`);
}

function connected(d: ShellDisk): NonNullable<ShellDisk['info']> {
  if (d.state !== 'connected' || d.info === undefined) throw new CommandError(`${d.name}: not connected (${d.state})`);
  return d.info;
}

/** `hex:0a1b...` as bytes, anything else as its UTF-8 text. */
export function parseData(word: string): Uint8Array {
  if (word.startsWith('hex:')) {
    const digits = word.slice(4);
    if (digits.length === 0 || digits.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(digits)) {
      throw new UsageError(`bad hex data '${word}' (an even number of hex digits after hex:)`);
    }
    return Uint8Array.from(Buffer.from(digits, 'hex'));
  }
  const bytes = new TextEncoder().encode(word);
  if (bytes.length === 0) throw new UsageError('nothing to write');
  return bytes;
}

/** The whole logical blocks covering bytes [from, to) of the disk. */
function covering(info: NonNullable<ShellDisk['info']>, from: number, to: number): { start: number; bytes: number } {
  const block = info.sectorSize;
  const start = Math.floor(from / block) * block;
  const end = Math.ceil(to / block) * block;
  if (end > info.sectors * SECTOR) {
    throw new CommandError(`bytes ${from}..${to} are past the end of the disk (${info.sectors} sectors)`);
  }
  return { start, bytes: end - start };
}

async function read(c: CommandContext): Promise<void> {
  const [, name, sectorArg, countArg] = c.args;
  if (name === undefined) throw new UsageError('missing device');
  const d = findDisk(c.world, name);
  const info = connected(d);
  const sector = intArg(sectorArg, 'sector');
  const count = countArg === undefined ? 1 : intArg(countArg, 'count', MAX_READ_SECTORS, 1);
  const from = sector * SECTOR;
  const span = covering(info, from, from + count * SECTOR);
  const buf = new Uint8Array(span.bytes);
  await d.read(span.start / SECTOR, buf);
  for (const line of hexdump(buf.subarray(from - span.start, from - span.start + count * SECTOR), from)) c.out(line);
}

async function write(c: CommandContext): Promise<void> {
  const [, name, sectorArg, dataArg, ...rest] = c.args;
  if (name === undefined) throw new UsageError('missing device');
  if (rest.length > 0) throw new UsageError('the data is one word: quote text with spaces');
  const d = findDisk(c.world, name);
  const info = connected(d);
  const sector = intArg(sectorArg, 'sector');
  if (dataArg === undefined) throw new UsageError('missing data');
  const data = parseData(dataArg);
  if (data.length > MAX_WRITE_BYTES) throw new UsageError(`at most ${MAX_WRITE_BYTES} bytes at a time`);
  if (info.readOnly) throw new CommandError(`${d.name}: read-only`);
  const from = sector * SECTOR;
  const span = covering(info, from, from + data.length);
  const buf = new Uint8Array(span.bytes);
  if (from !== span.start || data.length !== span.bytes) await d.read(span.start / SECTOR, buf);
  buf.set(data, from - span.start);
  await d.write(span.start / SECTOR, buf);
  c.out(`${d.name}: wrote ${data.length} bytes at sector ${sector}`);
}

async function flush(c: CommandContext): Promise<void> {
  const targets = c.args[1] === undefined ? c.world.disks().filter((d) => d.state === 'connected') : [findDisk(c.world, c.args[1])];
  if (targets.length === 0) throw new CommandError('no connected disk');
  for (const d of targets) {
    connected(d);
    await d.flush();
    c.out(`${d.name}: flushed`);
  }
}

function info(c: CommandContext): void {
  const targets = c.args[1] === undefined ? c.world.disks() : [findDisk(c.world, c.args[1])];
  if (targets.length === 0) c.out('no disks');
  for (const d of targets) for (const line of blkInfoLines(d)) c.out(line);
}

export const blkCommand: Command = {
  usage: ['blk info [dev]', 'blk read <dev> <sector> [count]', 'blk write <dev> <sector> <text|hex:HEX>', 'blk flush [dev]'],
  summary: 'disk info, hexdump, write, flush',
  async run(c) {
    const sub = c.args[0];
    if (sub === 'info' && c.args.length <= 2) return info(c);
    if (sub === 'read' && c.args.length <= 4) return read(c);
    if (sub === 'write') return write(c);
    if (sub === 'flush' && c.args.length <= 2) return flush(c);
    throw new UsageError(sub === undefined ? 'missing subcommand' : `bad arguments to '${sub}'`);
  },
};
