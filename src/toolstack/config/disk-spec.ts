/**
 * Disk specs, xl-disk-configuration(5):
 *
 *   [<key>=<value>|<flag>,]*, [<target>, [<format>, [<vdev>, [<access>]]]],
 *     [<key>=<value>|<flag>,]* [target=<target>]
 *
 * Parsed the way libxlu's flex scanner (libxlu_disk_l.l) parses them: at each point the
 * rule matching the longest text wins, ties going to the earlier rule, so `cdrom` is the
 * flag but `cdroms` a positional target; `target=` eats the rest of the string, commas and
 * all; the deprecated prefixes (`raw:`, `phy:`, `iscsi:` …) count their whole rest of the
 * string so they beat a positional match. Then the checks of xlu_disk_parse: the format
 * defaults to raw, a cdrom is removable and read-only (an empty one has format `empty`),
 * a vdev is required, and a target unless the device is removable.
 */
import { XenpvError } from '../../base/index.js';
import { CONFIG_ERROR_CODE, ConfigError, COMMAND_LINE, type Origin } from './config-error.js';
import { parseVdev, type Vdev } from './vdev.js';
import { DISK_RULES, type DiskRule } from './disk-rules.js';
import { DISK_STRING_KEYS, diskError, type DiskDraft, type DiskFormat, type DiskMatch, type DiskSpec } from './disk-types.js';

export * from './disk-types.js';

/**
 * Parses one spec, or several parts that describe one disk (as `xl block-attach DOM a b c`
 * passes each argument to the scanner in turn, so `cdrom vdev=hdc` may be two arguments
 * although, as one string, `cdrom vdev` would be a positional target).
 */
export function parseDiskSpec(spec: string | readonly string[], origin: Origin = COMMAND_LINE): DiskSpec {
  const parts = typeof spec === 'string' ? [spec] : spec;
  const draft: DiskDraft = { readwrite: true, cdrom: false, strings: {}, directIoSafe: false, hadDeprecatedPrefix: false, accessSet: false };
  for (const part of parts) scan(part, origin, draft);
  return finish(draft, parts.join(' '), origin);
}

function scan(spec: string, origin: Origin, draft: DiskDraft): void {
  let at = 0;
  while (at < spec.length) {
    const [rule, consumed] = longestMatch(spec, at);
    const m: DiskMatch = { spec, origin, at, text: spec.slice(at, at + consumed) };
    if (rule === undefined) throw diskError(m, 'bad disk syntax', spec.slice(at));
    rule.act(draft, m);
    at += consumed;
  }
}

function longestMatch(spec: string, at: number): [DiskRule | undefined, number] {
  let best: DiskRule | undefined;
  let bestLen = 0;
  let consumed = 1;
  for (const rule of DISK_RULES) {
    rule.re.lastIndex = at;
    const m = rule.re.exec(spec);
    if (m === null) continue;
    // A rule with trailing context (flex's `r/s`) competes with the length of r and s
    // together but consumes only r, the first capture group.
    const len = m[0].length;
    if (len > bestLen) {
      best = rule;
      bestLen = len;
      consumed = rule.trailing ? (m[1] as string).length : len;
    }
  }
  return [best, Math.max(consumed, 1)];
}

function finish(d: DiskDraft, spec: string, origin: Origin): DiskSpec {
  const end = (reason: string): ConfigError =>
    ConfigError.within(origin, 0, `disk spec: ${reason} in \`${spec}'`);
  let format: DiskFormat = d.format ?? 'raw';
  let readwrite = d.readwrite;
  if (d.cdrom) {
    // xlu_disk_parse: a cdrom is removable and read-only whatever access said.
    readwrite = false;
    if (d.target === undefined || d.target === '') format = 'empty';
  }
  if (d.vdev === undefined || d.vdev === '') throw end('no vdev specified');
  if (d.target === undefined && !d.cdrom) throw end('no target specified (and device not removable)');
  return {
    ...(d.target === undefined ? {} : { target: d.target }),
    format,
    vdev: d.vdev,
    readwrite,
    devtype: d.cdrom ? 'cdrom' : 'disk',
    removable: d.cdrom,
    ...(d.backendtype === undefined ? {} : { backendtype: d.backendtype }),
    ...(d.specification === undefined ? {} : { specification: d.specification }),
    strings: { ...d.strings },
    directIoSafe: d.directIoSafe,
    ...optional('discard', d.discard),
    ...optional('trusted', d.trusted),
    ...optional('colo', d.colo),
    ...optional('coloPort', d.coloPort),
    ...optional('grantUsage', d.grantUsage),
  };
}

function optional<K extends string, V>(key: K, v: V | undefined): Partial<Record<K, V>> {
  return v === undefined ? {} : ({ [key]: v } as Record<K, V>);
}

/** The vdev's devid (`virtual-device`), with errors pointing at the spec. */
export function diskVdev(disk: DiskSpec, origin: Origin = COMMAND_LINE): Vdev {
  return parseVdev(disk.vdev, origin);
}

/**
 * The spec in keyword form, `target=` last: parsing it gives back the same DiskSpec.
 * Values the syntax cannot carry (a comma outside the target, a line break) are refused.
 */
export function printDiskSpec(d: DiskSpec): string {
  const parts: string[] = [`format=${d.format}`, `vdev=${d.vdev}`, `access=${d.readwrite ? 'rw' : 'ro'}`];
  if (d.devtype === 'cdrom') parts.push('devtype=cdrom');
  if (d.backendtype !== undefined) parts.push(`backendtype=${d.backendtype}`);
  if (d.specification !== undefined) parts.push(`specification=${d.specification}`);
  for (const key of DISK_STRING_KEYS) {
    const v = d.strings[key];
    if (v !== undefined) parts.push(`${key}=${v}`);
  }
  if (d.directIoSafe) parts.push('direct-io-safe');
  if (d.discard !== undefined) parts.push(d.discard ? 'discard' : 'no-discard');
  if (d.trusted !== undefined) parts.push(d.trusted ? 'trusted' : 'untrusted');
  if (d.colo !== undefined) parts.push(d.colo ? 'colo' : 'no-colo');
  if (d.coloPort !== undefined) parts.push(`colo-port=${d.coloPort}`);
  if (d.grantUsage !== undefined) parts.push(`grant_usage=${d.grantUsage ? 1 : 0}`);
  for (const p of parts) {
    if (/[,\n\r\u2028\u2029]/.test(p)) throw unprintable(`\`${p}' contains a comma or a line break`);
  }
  if (d.target !== undefined) {
    if (/[\n\r\u2028\u2029]/.test(d.target)) throw unprintable('the target contains a line break');
    // The scanner strips one trailing comma from `target=…`; give it one to strip.
    parts.push(`target=${d.target}${d.target.endsWith(',') ? ',' : ''}`);
  }
  return parts.join(', ');
}

function unprintable(reason: string): XenpvError {
  return new XenpvError(CONFIG_ERROR_CODE, `cannot print disk spec: ${reason}`);
}
