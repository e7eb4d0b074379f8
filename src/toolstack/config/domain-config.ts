/**
 * From xl.cfg text to a typed DomainConfig, reading each key as xl_parse.c does and
 * applying libxl's defaults. Wrong types and out-of-range values are errors naming the key
 * and its position (xl often warns and ignores instead); unknown keys are kept and warned
 * about, as xl ignores them.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { XenpvError } from '../../base/index.js';
import { hostCpus } from '../../hv/sim/affinity.js';
import { ConfigError, type ConfigWarning, type Position as ConfigPosition } from './config-error.js';
import { parseCpuList } from './cpulist.js';
import { parseDiskSpec, type DiskSpec } from './disk-spec.js';
import {
  HANDLED_KEYS, SHUTDOWN_ACTIONS, SHUTDOWN_KEYS, UNSUPPORTED_KEYS,
  type DomainType, type ShutdownAction, type ShutdownField,
} from './domain-keys.js';
import { parseVdev, type Vdev } from './vdev.js';
import { defaultRandom, resolveVif, type RandomBytes, type ResolvedVif } from './vif-defaults.js';
import { parseVifSpec } from './vif-spec.js';
import { applyXlOverrides, parseXlConfig, type XlConfig } from './xlcfg/parser.js';
import { SettingReader } from './xlcfg/values.js';

export type KernelSpec =
  | { readonly kind: 'builtin'; readonly program: string }
  | { readonly kind: 'path'; readonly path: string };

export interface DomainDisk {
  readonly spec: DiskSpec;
  readonly vdev: Vdev;
}

export interface DomainConfig extends Readonly<Record<ShutdownField, ShutdownAction>> {
  readonly name: string;
  readonly type: DomainType;
  readonly uuid: string;
  readonly memoryMiB: number;
  readonly maxmemMiB: number;
  readonly vcpus: number;
  readonly maxvcpus: number;
  /**
   * `cpus`: the host CPUs each vCPU may run on (hard affinity), index = vCPU; an entry
   * undefined, or past the end, leaves that vCPU unpinned. Empty when `cpus` is unset.
   */
  readonly cpus: readonly (readonly number[] | undefined)[];
  readonly kernel?: KernelSpec;
  readonly ramdisk?: string;
  /** From `cmdline`, else `root=ROOT EXTRA`, else `extra` (xl_parse.c parse_cmdline). */
  readonly cmdline?: string;
  readonly disks: readonly DomainDisk[];
  readonly vifs: readonly ResolvedVif[];
  readonly xenPlatformPci: boolean;
  readonly serial: readonly string[];
  readonly maxGrantFrames: number;
  readonly maxEventChannels: number;
  /** Keys nothing here reads, in file order. */
  readonly unknownKeys: readonly string[];
  readonly warnings: readonly ConfigWarning[];
  /** The parsed settings, for anything this type does not carry. */
  readonly settings: XlConfig;
}

export interface DomainConfigOptions {
  /** File name for messages. */
  readonly source?: string;
  /** `key=value` arguments given after the file on the command line. */
  readonly overrides?: readonly string[];
  /** Random bytes for MAC addresses (tests pass a seeded source). */
  readonly random?: RandomBytes;
  /** UUID for a config without `uuid` (defaults to a random v4). */
  readonly makeUuid?: () => string;
  /** CPUs of the host `cpus` may name (defaults to this machine's). */
  readonly hostCpus?: number;
}

/** Bounds, with the reason for each. */
export const LIMITS = {
  /** 1 TiB: beyond any host this runs on; the toolstack checks free memory itself. */
  memoryMiB: 1 << 20,
  /** HVM_MAX_VCPUS in Xen's public hvm_info_table.h. */
  vcpus: 128,
  /** Xen's gnttab_max_frames is a 32-bit count of 4 KiB frames; keep it sane. */
  grantFrames: 65536,
  /** EVTCHN_FIFO_NR_CHANNELS (1 << 17); the 2-level ABI stops at 4096 on 64-bit. */
  eventChannels: 1 << 17,
} as const;

export const DEFAULT_MEMORY_MIB = 32; // libxl: max_memkb = 32 * 1024 when unset
export const DEFAULT_MAX_GRANT_FRAMES = 64;
export const DEFAULT_MAX_EVENT_CHANNELS = 1023; // libxl: event_channels = 1023 when unset

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BUILTIN_RE = /^[a-z][a-z0-9_-]*$/;

export async function loadDomainConfig(path: string, opts: Omit<DomainConfigOptions, 'source'> = {}): Promise<DomainConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new XenpvError('ENOCONFIG', `${path}: cannot read configuration file: ${(err as Error).message}`, { path }, { cause: err });
  }
  return parseDomainConfig(text, { ...opts, source: path });
}

export function parseDomainConfig(text: string, opts: DomainConfigOptions = {}): DomainConfig {
  const source = opts.source ?? '<config>';
  const settings = parseXlConfig(text, source);
  applyXlOverrides(settings, opts.overrides ?? []);
  return interpret(settings, opts.random ?? defaultRandom, opts.makeUuid ?? randomUUID, opts.hostCpus ?? hostCpus());
}

/** Turns parsed settings into a DomainConfig. */
export function interpret(settings: XlConfig, random: RandomBytes, makeUuid: () => string, hostCpus: number): DomainConfig {
  const r = new SettingReader(settings);
  const warnings: ConfigWarning[] = [];
  const type = domainType(r, warnings);
  const memory = memorySizes(r);
  const cpus = vcpuCounts(r);
  const shutdown = Object.fromEntries(SHUTDOWN_KEYS.map((k) => [k.field, shutdownAction(r, k.key, k.fallback)])) as
    Record<ShutdownField, ShutdownAction>;
  const kernel = kernelSpec(r);
  const ramdisk = r.string('ramdisk');
  const cmdline = commandLine(r, warnings);
  return {
    name: domainName(r),
    type,
    uuid: domainUuid(r, makeUuid),
    ...memory,
    ...cpus,
    cpus: cpuAffinity(r, cpus.maxvcpus, hostCpus),
    ...(kernel === undefined ? {} : { kernel }),
    ...(ramdisk === undefined ? {} : { ramdisk }),
    ...(cmdline === undefined ? {} : { cmdline }),
    disks: disks(r),
    vifs: vifs(r, type, random, warnings),
    ...shutdown,
    xenPlatformPci: r.boolean('xen_platform_pci') ?? true,
    serial: r.stringOrList('serial') ?? [],
    maxGrantFrames: r.integer('max_grant_frames', 1, LIMITS.grantFrames) ?? DEFAULT_MAX_GRANT_FRAMES,
    maxEventChannels: r.integer('max_event_channels', 1, LIMITS.eventChannels) ?? DEFAULT_MAX_EVENT_CHANNELS,
    unknownKeys: otherKeys(settings, warnings),
    warnings,
    settings,
  };
}

function warnAt(warnings: ConfigWarning[], r: SettingReader, key: string, message: string): void {
  const s = r.setting(key);
  if (s !== undefined) warnings.push({ source: s.source, line: s.keyPos.line, col: s.keyPos.col, message });
}

function domainName(r: SettingReader): string {
  const name = r.string('name');
  if (name === undefined) throw new ConfigError(r.config.source, 1, 1, 'Domain name must be specified (name = "...")');
  const s = r.setting('name')!;
  if (name === '') throw r.error(s, 'the domain name must not be empty');
  if (/[\x00-\x1f\x7f]/.test(name)) throw r.error(s, 'the domain name must not contain control characters');
  return name;
}

/** `type`, or the deprecated `builder`; values match by prefix as xl's strncmp does. */
function domainType(r: SettingReader, warnings: ConfigWarning[]): DomainType {
  const typeText = r.string('type');
  let type: DomainType | undefined;
  if (typeText !== undefined) {
    type = (['hvm', 'pv', 'pvh'] as const).find((t) => t.startsWith(typeText));
    if (type === undefined) throw r.error(r.setting('type')!, `invalid domain type \`${typeText}' (expecting pv, pvh or hvm)`);
  }
  const builder = r.string('builder');
  if (builder !== undefined) {
    warnAt(warnings, r, 'builder', '`builder\' is deprecated since Xen 4.10; use type = "hvm" or "pv"');
    const fromBuilder = 'hvm'.startsWith(builder) ? 'hvm' : 'generic'.startsWith(builder) ? 'pv' : undefined;
    if (fromBuilder === undefined) throw r.error(r.setting('builder')!, `invalid builder \`${builder}' (expecting hvm or generic)`);
    if (type !== undefined && type !== fromBuilder) {
      throw r.error(r.setting('builder')!, 'contradicting "builder" and "type" options specified');
    }
    type = fromBuilder;
  }
  return type ?? 'pv'; // x86's default
}

function domainUuid(r: SettingReader, makeUuid: () => string): string {
  const uuid = r.string('uuid');
  if (uuid === undefined) return makeUuid();
  if (!UUID_RE.test(uuid)) throw r.error(r.setting('uuid')!, `failed to parse UUID: \`${uuid}' (expecting xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
  return uuid.toLowerCase();
}

/** memory and maxmem default to each other, and both to 32 MiB (libxl). */
function memorySizes(r: SettingReader): { memoryMiB: number; maxmemMiB: number } {
  const memory = r.integer('memory', 1, LIMITS.memoryMiB);
  const maxmem = r.integer('maxmem', 1, LIMITS.memoryMiB);
  const memoryMiB = memory ?? maxmem ?? DEFAULT_MEMORY_MIB;
  const maxmemMiB = maxmem ?? memoryMiB;
  if (maxmemMiB < memoryMiB) {
    throw r.error(r.setting('maxmem')!, `maxmem (${maxmemMiB} MiB) is less than memory (${memoryMiB} MiB)`);
  }
  return { memoryMiB, maxmemMiB };
}

/**
 * `cpus = "CPULIST"` pins every vCPU to those CPUs; `cpus = ["2", "3-5"]` pins vCPU 0 to 2,
 * vCPU 1 to 3-5, and leaves the others unpinned (xl.cfg(5)).
 */
function cpuAffinity(r: SettingReader, maxvcpus: number, hostCpus: number): (readonly number[] | undefined)[] {
  const s = r.setting('cpus');
  if (s === undefined) return [];
  const parse = (text: string, pos: ConfigPosition): number[] => {
    try {
      return parseCpuList(text, hostCpus);
    } catch (err) {
      throw r.error(s, `cpus: ${(err as Error).message}`, pos);
    }
  };
  if (s.value.kind !== 'list') {
    const all = parse(r.string('cpus')!, s.value.pos);
    return Array.from({ length: maxvcpus }, () => all);
  }
  const items = r.atomList('cpus')!;
  if (items.length > maxvcpus) throw r.error(s, `cpus names ${items.length} vCPUs, but the domain has ${maxvcpus}`);
  return items.map((a) => parse(a.text, a.pos));
}

/** vcpus and maxvcpus default to each other, and both to 1. */
function vcpuCounts(r: SettingReader): { vcpus: number; maxvcpus: number } {
  const vcpus = r.integer('vcpus', 1, LIMITS.vcpus);
  const max = r.integer('maxvcpus', 1, LIMITS.vcpus);
  const maxvcpus = max ?? vcpus ?? 1;
  const online = vcpus ?? maxvcpus;
  if (maxvcpus < online) throw r.error(r.setting('maxvcpus')!, `maxvcpus (${maxvcpus}) < vcpus (${online})`);
  return { vcpus: online, maxvcpus };
}

function shutdownAction(r: SettingReader, key: string, fallback: ShutdownAction): ShutdownAction {
  const text = r.string(key);
  if (text === undefined) return fallback;
  const action = SHUTDOWN_ACTIONS.find((a) => a === text);
  if (action === undefined) {
    throw r.error(r.setting(key)!, `unknown ${key} action "${text}" (expecting one of ${SHUTDOWN_ACTIONS.join(', ')})`);
  }
  return action;
}

function kernelSpec(r: SettingReader): KernelSpec | undefined {
  const text = r.string('kernel');
  if (text === undefined) return undefined;
  if (text === '') throw r.error(r.setting('kernel')!, '`kernel\' must not be empty');
  if (!text.startsWith('builtin:')) return { kind: 'path', path: text };
  const program = text.slice('builtin:'.length);
  if (!BUILTIN_RE.test(program)) {
    throw r.error(r.setting('kernel')!, `invalid built-in program name \`${program}' (lower-case letters, digits, - and _)`);
  }
  return { kind: 'builtin', program };
}

function commandLine(r: SettingReader, warnings: ConfigWarning[]): string | undefined {
  const cmdline = r.string('cmdline');
  const root = r.string('root');
  const extra = r.string('extra');
  if (cmdline !== undefined) {
    if (root !== undefined || extra !== undefined) {
      warnAt(warnings, r, 'cmdline', 'ignoring root= and extra= in favour of cmdline=');
    }
    return cmdline;
  }
  if (root !== undefined) return extra === undefined ? `root=${root}` : `root=${root} ${extra}`;
  return extra;
}

function disks(r: SettingReader): DomainDisk[] {
  const out: DomainDisk[] = [];
  const seen = new Map<number, string>();
  for (const item of r.atomList('disk') ?? []) {
    const spec = parseDiskSpec(item.text, item.origin);
    const vdev = parseVdev(spec.vdev, item.origin);
    const clash = seen.get(vdev.devid);
    if (clash !== undefined) {
      throw ConfigError.at(item.origin.source, item.pos, `vdev ${spec.vdev} (devid ${vdev.devid}) is already used by ${clash}`);
    }
    seen.set(vdev.devid, spec.vdev);
    out.push({ spec, vdev });
  }
  return out;
}

function vifs(r: SettingReader, type: DomainType, random: RandomBytes, warnings: ConfigWarning[]): ResolvedVif[] {
  const out: ResolvedVif[] = [];
  const seen = new Set<number>();
  (r.atomList('vif') ?? []).forEach((item, i) => {
    const vif = resolveVif(parseVifSpec(item.text, item.origin, (w) => warnings.push(w)), i, type, random);
    if (seen.has(vif.devid)) throw ConfigError.at(item.origin.source, item.pos, `vif devid ${vif.devid} is used twice`);
    seen.add(vif.devid);
    out.push(vif);
  });
  return out;
}

function otherKeys(settings: XlConfig, warnings: ConfigWarning[]): string[] {
  const unknown: string[] = [];
  for (const s of settings.settings.values()) {
    if (HANDLED_KEYS.has(s.key)) continue;
    unknown.push(s.key);
    const message = UNSUPPORTED_KEYS.has(s.key)
      ? `\`${s.key}' is not supported by xenpv; ignored`
      : `unknown setting \`${s.key}'; ignored`;
    warnings.push({ source: s.source, line: s.keyPos.line, col: s.keyPos.col, message });
  }
  return unknown;
}
