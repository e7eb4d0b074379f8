/**
 * Network specs, xl-network-configuration(5): `'mac=00:16:3E:74:3d:76,model=rtl8139,bridge=xenbr0'`,
 * comma-separated `key=value` pairs and the flags `trusted`/`untrusted`, all optional (`''`
 * is one NIC with every default). Read as xl reads them (xl_parse.c parse_nic_config): the
 * string is split with strtok (so empty items vanish), leading spaces of an item are
 * skipped, a key given twice keeps the later value, an unknown key is an error.
 *
 * Stricter than xl in two places, both to catch typos xl lets through: a MAC must be six
 * groups of one or two hex digits separated by `:` or `-` (xl reads each group with
 * strtoul and skips one character of anything after it), and numbers must be all digits.
 */
import { XenpvError } from '../../base/index.js';
import { CONFIG_ERROR_CODE, ConfigError, COMMAND_LINE, type ConfigWarning, type Origin } from './config-error.js';
import { parseVifRate, type VifRate } from './vif-rate.js';

/** Keys whose value is kept as written. */
export const VIF_STRING_KEYS = [
  'bridge', 'gatewaydev', 'ip', 'script', 'backend', 'vifname', 'model', 'vlan', 'forwarddev',
] as const;
export type VifStringKey = (typeof VIF_STRING_KEYS)[number];

export type VifType = 'vif' | 'ioemu';

export interface VifSpec {
  /** Canonical form: lower case, colons, two digits a group. */
  readonly mac?: string;
  readonly strings: Readonly<Partial<Record<VifStringKey, string>>>;
  readonly type?: VifType;
  readonly rate?: VifRate;
  readonly devid?: number;
  readonly mtu?: number;
  readonly trusted?: boolean;
  /** COLO fault-tolerance keys (`colo_*`), accepted as xl does and not interpreted. */
  readonly colo: Readonly<Record<string, string>>;
}

export const MAX_VIF_DEVID = 0x7fff_ffff;
/** IPv4's minimum datagram size up to the largest a 16-bit length can carry. */
export const MIN_MTU = 68;
export const MAX_MTU = 65535;

interface Draft {
  mac?: string;
  strings: Partial<Record<VifStringKey, string>>;
  type?: VifType;
  rate?: VifRate;
  devid?: number;
  mtu?: number;
  trusted?: boolean;
  colo: Record<string, string>;
}

interface Item { readonly text: string; readonly at: number }

/** strtok(s, ","): the non-empty items, each with its offset, leading spaces skipped. */
function items(spec: string): Item[] {
  const out: Item[] = [];
  let at = 0;
  for (const raw of spec.split(',')) {
    if (raw !== '') {
      const lead = /^ */.exec(raw)?.[0].length ?? 0;
      out.push({ text: raw.slice(lead), at: at + lead });
    }
    at += raw.length + 1;
  }
  return out;
}

/**
 * Parses a spec; several command-line arguments (`xenpv network-attach DOM mac=… bridge=…`)
 * are joined with commas first, so columns in errors count along the joined text.
 */
export function parseVifSpec(
  input: string | readonly string[], origin: Origin = COMMAND_LINE, warn?: (w: ConfigWarning) => void,
): VifSpec {
  const spec = typeof input === 'string' ? input : input.join(',');
  const d: Draft = { strings: {}, colo: {} };
  for (const item of items(spec)) applyItem(d, item, spec, origin, warn);
  return {
    ...(d.mac === undefined ? {} : { mac: d.mac }),
    strings: d.strings,
    ...(d.type === undefined ? {} : { type: d.type }),
    ...(d.rate === undefined ? {} : { rate: d.rate }),
    ...(d.devid === undefined ? {} : { devid: d.devid }),
    ...(d.mtu === undefined ? {} : { mtu: d.mtu }),
    ...(d.trusted === undefined ? {} : { trusted: d.trusted }),
    colo: d.colo,
  };
}

function applyItem(d: Draft, item: Item, spec: string, origin: Origin, warn?: (w: ConfigWarning) => void): void {
  const err = (msg: string): ConfigError => ConfigError.within(origin, item.at, `vif spec: ${msg} in \`${spec}'`);
  if (item.text === 'trusted' || item.text === 'untrusted') {
    d.trusted = item.text === 'trusted';
    return;
  }
  const eq = item.text.indexOf('=');
  if (eq < 0) throw err(`unrecognized argument \`${item.text}'`);
  const key = item.text.slice(0, eq);
  const value = item.text.slice(eq + 1);
  const valueOrigin: Origin = { ...origin, col: origin.col + item.at + eq + 1 };
  const stringKey = VIF_STRING_KEYS.find((k) => k === key);
  if (stringKey !== undefined) {
    d.strings[stringKey] = value;
  } else if (key === 'netdev') {
    warn?.({ source: origin.source, line: origin.line, col: origin.col + item.at, message: 'the netdev parameter is deprecated, please use gatewaydev instead' });
    d.strings.gatewaydev = value;
  } else if (key === 'mac') {
    d.mac = parseMac(value) ?? (() => { throw err(`invalid parameter \`mac': \`${value}' is not six hex bytes like 00:16:3e:12:34:56`); })();
  } else if (key === 'type') {
    if (value !== 'vif' && value !== 'ioemu') throw err(`invalid parameter \`type': \`${value}' (expecting vif or ioemu)`);
    d.type = value;
  } else if (key === 'rate') {
    d.rate = parseVifRate(value, valueOrigin);
  } else if (key === 'devid') {
    d.devid = parseDecimal(value, 0, MAX_VIF_DEVID, 'devid', err);
  } else if (key === 'mtu') {
    d.mtu = parseDecimal(value, MIN_MTU, MAX_MTU, 'mtu', err);
  } else if (key === 'accel') {
    warn?.({ source: origin.source, line: origin.line, col: origin.col + item.at, message: 'the accel parameter for vifs is currently not supported' });
  } else if (key.startsWith('colo_')) {
    d.colo[key] = value;
  } else {
    throw err(`unrecognized argument \`${item.text}'`);
  }
}

function parseDecimal(value: string, min: number, max: number, key: string, err: (m: string) => ConfigError): number {
  if (!/^[0-9]{1,10}$/.test(value)) throw err(`invalid parameter \`${key}': \`${value}' is not a decimal number`);
  const n = Number(value);
  if (n < min || n > max) throw err(`invalid parameter \`${key}': ${n} is out of range ${min}..${max}`);
  return n;
}

/** `00:16:3E:74:3d:76` (or with `-`) in canonical lower-case form, or undefined. */
export function parseMac(text: string): string | undefined {
  const m = /^([0-9a-fA-F]{1,2})([:-])([0-9a-fA-F]{1,2})\2([0-9a-fA-F]{1,2})\2([0-9a-fA-F]{1,2})\2([0-9a-fA-F]{1,2})\2([0-9a-fA-F]{1,2})$/.exec(text);
  if (m === null) return undefined;
  return [m[1], m[3], m[4], m[5], m[6], m[7]].map((g) => (g as string).toLowerCase().padStart(2, '0')).join(':');
}

/** The spec with every key it has, parsing back to the same VifSpec. */
export function printVifSpec(v: VifSpec): string {
  const parts: string[] = [];
  if (v.mac !== undefined) parts.push(`mac=${v.mac}`);
  if (v.type !== undefined) parts.push(`type=${v.type}`);
  for (const key of VIF_STRING_KEYS) {
    const s = v.strings[key];
    if (s !== undefined) parts.push(`${key}=${s}`);
  }
  if (v.rate !== undefined) parts.push(`rate=${v.rate.text}`);
  if (v.devid !== undefined) parts.push(`devid=${v.devid}`);
  if (v.mtu !== undefined) parts.push(`mtu=${v.mtu}`);
  if (v.trusted !== undefined) parts.push(v.trusted ? 'trusted' : 'untrusted');
  for (const [k, s] of Object.entries(v.colo)) parts.push(`${k}=${s}`);
  for (const p of parts) {
    if (p.includes(',')) throw new XenpvError(CONFIG_ERROR_CODE, `cannot print vif spec: \`${p}' contains a comma`);
  }
  return parts.join(',');
}
