/** Test wiring: guest stacks plugged into a Bridge with a fake clock. */
import { Bridge } from '../../devices/net/bridge/bridge.js';
import type { BridgePort, PortOptions } from '../../devices/net/bridge/port.js';
import { NetStack, type NetStackOptions } from './stack.js';

export class FakeClock {
  constructor(public nowMs = 0) {}
  readonly now = (): number => this.nowMs;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

export interface Attached {
  readonly stack: NetStack;
  readonly port: BridgePort;
}

/** A stack whose frames go into `bridge` through a port named `name`, and back. */
export function attachStack(
  bridge: Bridge, name: string, opts: Omit<NetStackOptions, 'send'>, portOpts: PortOptions = {},
): Attached {
  const holder: { stack?: NetStack } = {};
  const port = bridge.addPort(name, { deliver: (f, info) => (holder.stack!.receive(f, info), true) }, portOpts);
  holder.stack = new NetStack({ ...opts, send: (f, info) => port.input(f, info) });
  return { stack: holder.stack, port };
}

/** Two stacks, 10.0.0.1 and 10.0.0.2 /24, on one bridge. */
export function twoStacks(extra: Partial<Omit<NetStackOptions, 'send'>> = {}) {
  const clock = new FakeClock(1000);
  const bridge = new Bridge('xenbr0', { clock: clock.now });
  const a = attachStack(bridge, 'vif1.0', { mac: '00:16:3e:00:00:01', address: '10.0.0.1', prefix: 24, clock: clock.now, ...extra });
  const b = attachStack(bridge, 'vif2.0', { mac: '00:16:3e:00:00:02', address: '10.0.0.2', prefix: 24, clock: clock.now, ...extra });
  return { clock, bridge, a, b };
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

export function fromHex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}
