/**
 * `xen/io/xenbus.h`: the states each end of a split device publishes in its xenstore `state` node.
 * Front and back each own their own `state`; a driver moves by writing its node and reacts to
 * the peer's through a watch.
 */
import { defineConstants } from '../layout.js';

const H = 'xen/io/xenbus.h';

/** `enum xenbus_state`. ABI values, never renumber; xenstore carries them as decimal strings. */
export const XenbusState = defineConstants(H, {
  XenbusStateUnknown: 0,
  XenbusStateInitialising: 1,
  /** Finished early initialisation, waiting for information from the peer or hotplug scripts. */
  XenbusStateInitWait: 2,
  /** Waiting for a connection from the peer. */
  XenbusStateInitialised: 3,
  XenbusStateConnected: 4,
  /** The device is being closed due to an error or an unplug event. */
  XenbusStateClosing: 5,
  XenbusStateClosed: 6,
  /** The device is being reconfigured. */
  XenbusStateReconfiguring: 7,
  XenbusStateReconfigured: 8,
});
export const {
  XenbusStateUnknown,
  XenbusStateInitialising,
  XenbusStateInitWait,
  XenbusStateInitialised,
  XenbusStateConnected,
  XenbusStateClosing,
  XenbusStateClosed,
  XenbusStateReconfiguring,
  XenbusStateReconfigured,
} = XenbusState;
export type XenbusStateValue = (typeof XenbusState)[keyof typeof XenbusState];

const names = new Map<number, string>(Object.entries(XenbusState).map(([k, v]) => [v, k]));

export function isXenbusState(n: number): n is XenbusStateValue {
  return names.has(n);
}

/** `Connected` for 4, as Linux's `xenbus_strstate` prints it; `Unknown(<n>)` for other numbers. */
export function xenbusStateName(n: number): string {
  return names.get(n)?.slice('XenbusState'.length) ?? `Unknown(${n})`;
}

/**
 * Parse a `state` node's value. The peer writes it, so it is untrusted: anything that is not a
 * plain decimal of a defined state is `undefined`, never an exception.
 */
export function parseXenbusState(value: string): XenbusStateValue | undefined {
  if (!/^[0-9]{1,2}$/.test(value)) return undefined;
  const n = Number(value);
  return isXenbusState(n) ? n : undefined;
}
