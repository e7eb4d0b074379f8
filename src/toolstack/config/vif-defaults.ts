/**
 * The defaults libxl fills into a NIC (libxl__device_nic_setdefault) and the names the
 * doc gives them: xenbr0, the vif-bridge script, model rtl8139, type ioemu for HVM and vif
 * otherwise, backend name `vif<DOMID>.<DEVID>` (`-emu` for the emulated twin), and a random
 * MAC in Xen's OUI 00:16:3e whose fourth byte has its top bit clear, as libxl makes it
 * (`mac[3] = r[0] & 0x7f`). MTU: "The default value is 1500" (xl-network-configuration(5)
 * since 4.15; older libxl wrote 1492).
 */
import { randomBytes } from 'node:crypto';
import type { VifSpec, VifStringKey, VifType } from './vif-spec.js';
import type { VifRate } from './vif-rate.js';

export type RandomBytes = (n: number) => Uint8Array;
export const defaultRandom: RandomBytes = (n) => randomBytes(n);

export const XEN_OUI = [0x00, 0x16, 0x3e] as const;
export const DEFAULT_BRIDGE = 'xenbr0';
export const DEFAULT_VIF_SCRIPT = 'vif-bridge';
export const DEFAULT_NIC_MODEL = 'rtl8139';
export const DEFAULT_MTU = 1500;

export interface ResolvedVif {
  readonly devid: number;
  readonly mac: string;
  readonly bridge: string;
  readonly script: string;
  readonly model: string;
  readonly type: VifType;
  readonly mtu: number;
  /** Only if the spec named it: otherwise `defaultVifName(domid, devid)` once the domid is known. */
  readonly vifname?: string;
  readonly ip?: string;
  readonly backend?: string;
  readonly gatewaydev?: string;
  readonly rate?: VifRate;
  readonly trusted: boolean;
  /** The spec as written, for printing and for `network-list`. */
  readonly spec: VifSpec;
}

export function randomXenMac(random: RandomBytes = defaultRandom): string {
  const r = random(3);
  const bytes = [...XEN_OUI, (r[0] ?? 0) & 0x7f, r[1] ?? 0, r[2] ?? 0];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function defaultVifName(domid: number, devid: number, emulated = false): string {
  return `vif${domid}.${devid}${emulated ? '-emu' : ''}`;
}

export function resolveVif(
  spec: VifSpec, index: number, domainType: 'pv' | 'pvh' | 'hvm', random: RandomBytes = defaultRandom,
): ResolvedVif {
  const s = (k: VifStringKey): string | undefined => spec.strings[k];
  const optional = <K extends string>(key: K, v: string | undefined): Partial<Record<K, string>> =>
    v === undefined ? {} : ({ [key]: v } as Record<K, string>);
  return {
    devid: spec.devid ?? index,
    mac: spec.mac ?? randomXenMac(random),
    bridge: s('bridge') ?? DEFAULT_BRIDGE,
    script: s('script') ?? DEFAULT_VIF_SCRIPT,
    model: s('model') ?? DEFAULT_NIC_MODEL,
    type: spec.type ?? (domainType === 'hvm' ? 'ioemu' : 'vif'),
    mtu: spec.mtu ?? DEFAULT_MTU,
    ...optional('vifname', s('vifname')),
    ...optional('ip', s('ip')),
    ...optional('backend', s('backend')),
    ...optional('gatewaydev', s('gatewaydev')),
    ...(spec.rate === undefined ? {} : { rate: spec.rate }),
    trusted: spec.trusted ?? true,
    spec,
  };
}
