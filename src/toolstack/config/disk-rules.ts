/**
 * The scanner rules of a disk spec, in libxlu_disk_l.l's order (earlier wins a tie), each
 * with what it does to the spec being built. Patterns are anchored where the scanner
 * stands (sticky). `trailing` marks flex's trailing-context rules `r/s`: capture 1 is `r`.
 */
import {
  DISK_BACKEND_TYPES, DISK_FORMATS, DISK_SPECIFICATIONS, diskError,
  type DiskDraft, type DiskMatch, type DiskStringKey,
} from './disk-types.js';
import { parseVdev } from './vdev.js';

export interface DiskRule {
  readonly re: RegExp;
  readonly trailing?: boolean;
  act(d: DiskDraft, m: DiskMatch): void;
}

/** The value of a `key=value,` match, without the key and the one trailing comma. */
function valueOf(m: DiskMatch): string {
  const v = m.text.slice(m.text.indexOf('=') + 1);
  return v.endsWith(',') ? v.slice(0, -1) : v;
}

function stripComma(s: string): string {
  return s.endsWith(',') ? s.slice(0, -1) : s;
}

/**
 * SAVESTRING: a second non-empty value is an error; an empty one may be replaced. A vdev is
 * checked here (libxl checks it only when attaching) so the error points at it.
 */
function saveString(d: DiskDraft, m: DiskMatch, key: 'target' | 'vdev' | DiskStringKey, value: string, valueAt = 0): void {
  const current = key === 'target' || key === 'vdev' ? d[key] : d.strings[key];
  if (current !== undefined && current !== '') throw diskError(m, `${key} respecified`, value);
  if (key === 'vdev' && value !== '') parseVdev(value, { ...m.origin, col: m.origin.col + m.at + valueAt });
  if (key === 'target' || key === 'vdev') d[key] = value;
  else d.strings[key] = value;
}

/** DSET: an enum may be repeated with the same value only. */
function setEnum<K extends 'format' | 'backendtype' | 'specification', V extends DiskDraft[K]>(
  d: DiskDraft, m: DiskMatch, key: K, value: V, near: string,
): void {
  if (d[key] !== undefined && d[key] !== value) throw diskError(m, `${key} respecified`, near);
  d[key] = value;
}

export function setFormat(d: DiskDraft, m: DiskMatch, s: string): void {
  const format = s === '' ? 'raw' : DISK_FORMATS.find((f) => f === s);
  if (format === undefined) throw diskError(m, 'unknown value for format', s);
  setEnum(d, m, 'format', format, s);
}

function setAccess(d: DiskDraft, m: DiskMatch, s: string): void {
  if (s === 'r' || s === 'ro') d.readwrite = false;
  else if (s === 'rw' || s === 'w' || s === '') d.readwrite = true;
  else throw diskError(m, 'unknown value for access', s);
}

function enumRule<K extends 'backendtype' | 'specification'>(
  key: K, values: readonly NonNullable<DiskDraft[K]>[], re: RegExp,
): DiskRule {
  return {
    re,
    act(d, m) {
      const s = valueOf(m);
      const v = values.find((x) => x === s);
      if (v === undefined) throw diskError(m, `unknown value for ${key}`, s);
      setEnum(d, m, key, v as DiskDraft[K], s);
    },
  };
}

function stringRule(key: DiskStringKey | 'vdev', re: RegExp): DiskRule {
  return { re, act: (d, m) => saveString(d, m, key, valueOf(m), m.text.indexOf('=') + 1) };
}

function flagRule(re: RegExp, set: (d: DiskDraft) => void): DiskRule {
  return { re, act: (d) => set(d) };
}

/** `<vdev>:<devtype>`, the deprecated positional form; false if there is no colon. */
function vdevAndDevtype(d: DiskDraft, m: DiskMatch, s: string): boolean {
  const colon = s.lastIndexOf(':');
  if (colon < 0) return false;
  saveString(d, m, 'vdev', s.slice(0, colon));
  const type = s.slice(colon + 1);
  if (type === 'cdrom') d.cdrom = true;
  else if (type === 'disk') d.cdrom = false;
  else throw diskError(m, 'unknown deprecated type', type);
  return true;
}

/** Bare words fill target, format, vdev and access in turn. */
function positional(d: DiskDraft, m: DiskMatch): void {
  const s = stripComma(m.text);
  if (d.target === undefined) {
    saveString(d, m, 'target', s);
  } else if (!d.hadDeprecatedPrefix && d.format === undefined) {
    if (d.target === '' && vdevAndDevtype(d, m, s)) d.format = 'empty';
    else setFormat(d, m, s);
  } else if (d.vdev === undefined) {
    if (!vdevAndDevtype(d, m, s)) saveString(d, m, 'vdev', s);
  } else if (!d.accessSet) {
    d.accessSet = true;
    setAccess(d, m, s);
  } else {
    throw diskError(m, 'too many positional parameters', s);
  }
}

const IGNORED_PREFIX = /((?:tapdisk|tap2?|aio|ioemu|file|phy):).*/y;

export const DISK_RULES: readonly DiskRule[] = [
  // Whitespace before a parameter is ignored (its trailing context is the rest of the line).
  { re: /([ \t\n]+)(?:[^ \t\n].*)?/y, trailing: true, act: () => {} },
  { re: /format=[^,]*,?/y, act: (d, m) => setFormat(d, m, valueOf(m)) },
  flagRule(/cdrom,?/y, (d) => { d.cdrom = true; }),
  flagRule(/devtype=cdrom,?/y, (d) => { d.cdrom = true; }),
  flagRule(/devtype=disk,?/y, (d) => { d.cdrom = false; }),
  { re: /devtype=[^,]*,?/y, act: (_d, m) => { throw diskError(m, 'unknown value for type'); } },
  { re: /access=[^,]*,?/y, act: (d, m) => setAccess(d, m, valueOf(m)) },
  stringRule('backend', /backend=[^,]*,?/y),
  enumRule('backendtype', DISK_BACKEND_TYPES, /backendtype=[^,]*,?/y),
  enumRule('specification', DISK_SPECIFICATIONS, /specification=[^,]*,?/y),
  stringRule('vdev', /vdev=[^,]*,?/y),
  stringRule('script', /script=[^,]*,?/y),
  flagRule(/direct-io-safe,?/y, (d) => { d.directIoSafe = true; }),
  flagRule(/discard,?/y, (d) => { d.discard = true; }),
  flagRule(/no-discard,?/y, (d) => { d.discard = false; }),
  flagRule(/colo,?/y, (d) => { d.colo = true; }),
  flagRule(/no-colo,?/y, (d) => { d.colo = false; }),
  stringRule('colo-host', /colo-host=[^,]*,?/y),
  {
    re: /colo-port=[^,]*,?/y,
    act(d, m) {
      // atoi: leading digits; 0 or none is refused.
      const port = parseInt(valueOf(m), 10);
      if (!(port > 0)) throw diskError(m, 'unknown value for colo_port', valueOf(m));
      d.coloPort = port;
    },
  },
  stringRule('colo-export', /colo-export=[^,]*,?/y),
  stringRule('active-disk', /active-disk=[^,]*,?/y),
  stringRule('hidden-disk', /hidden-disk=[^,]*,?/y),
  flagRule(/trusted,?/y, (d) => { d.trusted = true; }),
  flagRule(/untrusted,?/y, (d) => { d.trusted = false; }),
  flagRule(/grant_usage=1,?/y, (d) => { d.grantUsage = true; }),
  flagRule(/grant_usage=0,?/y, (d) => { d.grantUsage = false; }),
  // "it consumes the whole rest of the DISKSPEC including trailing whitespaces"
  { re: /target=.*/y, act: (d, m) => saveString(d, m, 'target', valueOf(m)) },
  { re: /[a-z][-a-z0-9]*=[^,],?/y, act: (_d, m) => { throw diskError(m, 'unknown parameter'); } },
  {
    re: /((?:raw|qcow2?|vhd):).*/y,
    trailing: true,
    act(d, m) {
      d.hadDeprecatedPrefix = true;
      setFormat(d, m, m.text.slice(0, -1));
    },
  },
  {
    re: /((?:iscsi|e?nbd|drbd):).*/y,
    trailing: true,
    act(d, m) {
      d.hadDeprecatedPrefix = true;
      saveString(d, m, 'script', `block-${m.text.slice(0, -1)}`);
    },
  },
  { re: IGNORED_PREFIX, trailing: true, act: (d) => { d.hadDeprecatedPrefix = true; } },
  {
    re: /([a-z][a-z0-9]*:)(?:[^a-z0-9].*)?/y,
    trailing: true,
    act: (_d, m) => { throw diskError(m, 'unknown deprecated disk prefix'); },
  },
  { re: /[^=,]*,|[^=,]+,?/y, act: positional },
];
