/**
 * The host's bridge uplinks: in xl's model dom0's bridge (xenbr0) has a physical NIC as a
 * port, set up by the administrator outside xl; here `xenpv host start --uplink
 * xenbr0=tap:xpv0` gives a bridge a Linux TAP interface as that port, and Linux tools
 * (ip, ping, tcpdump, a namespace) reach the guests through it.
 *
 * An uplink that cannot be created (no koffi, not root, name in use) does not stop the host:
 * it is listed as failed with the reason, and everything else works.
 */
import { XenpvError, errorCode } from '../../base/index.js';
import type { BridgeSet } from '../../devices/net/bridge/bridge.js';
import { validIfName } from '../../devices/net/bridge/bridge.js';
import { TapUplink } from '../../devices/net/bridge/tap-port.js';

export interface UplinkSpec {
  readonly bridge: string;
  /** The TAP interface's name. */
  readonly tap: string;
}

export interface UplinkRow {
  readonly bridge: string;
  readonly tap: string;
  readonly state: 'up' | 'failed' | 'closed';
  readonly reason?: string;
  readonly rxPackets: number;
  readonly rxBytes: number;
  readonly txPackets: number;
  readonly txBytes: number;
  readonly txDropped: number;
  readonly rxDropped: number;
}

/** `BRIDGE=tap:IFNAME`, e.g. `xenbr0=tap:xpv0`. Throws EINVAL naming what is wrong. */
export function parseUplinkSpec(text: string): UplinkSpec {
  const m = /^([^=\s]+)=tap:(\S+)$/.exec(text.trim());
  if (m === null) throw new XenpvError('EINVAL', `invalid uplink '${text}': expected BRIDGE=tap:IFNAME, e.g. xenbr0=tap:xpv0`, { spec: text });
  const [, bridge, tap] = m as unknown as [string, string, string];
  for (const [what, name] of [['bridge', bridge], ['interface', tap]] as const) {
    if (!validIfName(name)) throw new XenpvError('EINVAL', `invalid uplink '${text}': ${what} name '${name}' (at most 15 of A-Z a-z 0-9 _ . -)`, { spec: text });
  }
  return { bridge, tap };
}

const zeroCounts = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, txDropped: 0, rxDropped: 0 };

export class HostUplinks {
  private readonly open: TapUplink[] = [];
  private readonly failed: UplinkRow[] = [];

  private constructor() {}

  /** Create every uplink; a failure is logged and listed, never thrown. */
  static async start(bridges: BridgeSet, specs: readonly UplinkSpec[], log: (line: string) => void): Promise<HostUplinks> {
    const u = new HostUplinks();
    for (const s of specs) {
      try {
        u.open.push(await TapUplink.open(bridges.get(s.bridge), s.tap));
        log(`uplink ${s.bridge} -> TAP ${s.tap}: up`);
      } catch (err) {
        const reason = (err as Error).message;
        u.failed.push({ bridge: s.bridge, tap: s.tap, state: 'failed', reason: `${errorCode(err) ?? 'EIO'}: ${reason}`, ...zeroCounts });
        log(`uplink ${s.bridge} -> TAP ${s.tap} not attached (the guests' bridge works without it): ${reason}`);
      }
    }
    return u;
  }

  list(): UplinkRow[] {
    const live = this.open.map((t): UplinkRow => {
      const s = t.stats();
      return {
        bridge: s.bridge, tap: s.name, state: s.state, ...(s.error === undefined ? {} : { reason: s.error }),
        rxPackets: s.port.rxPackets, rxBytes: s.port.rxBytes, txPackets: s.port.txPackets, txBytes: s.port.txBytes,
        txDropped: s.port.txDropped + s.linkDown, rxDropped: s.port.rxDropped + s.rxQueueFull,
      };
    });
    return [...live, ...this.failed];
  }

  async close(): Promise<void> {
    await Promise.all(this.open.map((t) => t.close()));
  }
}

/** `xenpv host status`'s lines for the uplinks (rx/tx from the bridge's side of the port). */
export function formatUplinks(rows: readonly UplinkRow[]): string[] {
  return rows.map((r) =>
    r.state === 'up'
      ? `uplink ${r.bridge} <-> ${r.tap}: up, from Linux ${r.rxPackets} packets ${r.rxBytes} bytes (${r.rxDropped} dropped), to Linux ${r.txPackets} packets ${r.txBytes} bytes (${r.txDropped} dropped)`
      : `uplink ${r.bridge} <-> ${r.tap}: ${r.state}${r.reason === undefined ? '' : ` (${r.reason})`}`,
  );
}
