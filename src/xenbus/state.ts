/**
 * The XenBus state machine (io/xenbus.h, protocols.md §2.1): each end writes only its own
 * `state` node and watches the other end's.
 *
 * - `readState` reads the peer's node robustly: a missing node is Unknown (as Linux's
 *   xenbus_read_driver_state), garbage is `invalid` — a protocol error for the caller to
 *   answer, never an exception.
 * - `switchState` writes our own node inside a transaction, as Linux's __xenbus_switch_state:
 *   read the node first and write nothing if it has gone (the device was removed; writing
 *   would re-create it), retry on EAGAIN, and refuse a transition our own driver must never make.
 * - `waitForState` waits through a watch, with a timeout.
 */
import {
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitialising,
  XenbusStateInitWait,
  XenbusStateReconfigured,
  XenbusStateReconfiguring,
  XenbusStateUnknown,
  parseXenbusState,
  xenbusStateName,
  type XenbusStateValue,
} from '../abi/io/xenbus.js';
import { XenpvError, errorCode } from '../base/index.js';
import type { XsClient } from '../xenstore/client/index.js';

export type PeerState =
  | { readonly kind: 'state'; readonly state: XenbusStateValue }
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid'; readonly raw: string };

/** Longest garbage we quote back in logs and errors. */
const RAW_QUOTE = 32;

/** Read `<dir>/state`. Never throws for what the peer wrote; only for a broken connection. */
export async function readState(client: XsClient, dir: string): Promise<PeerState> {
  let raw: string;
  try {
    raw = await client.readString(`${dir}/state`);
  } catch (err) {
    const code = errorCode(err);
    // ENOENT: gone; EACCES: not ours to see (a hostile owner changed the perms): both Unknown.
    if (code === 'ENOENT' || code === 'EACCES') return { kind: 'missing' };
    throw err;
  }
  const state = parseXenbusState(raw);
  return state === undefined ? { kind: 'invalid', raw: raw.slice(0, RAW_QUOTE) } : { kind: 'state', state };
}

/** The state as a number: missing → Unknown, garbage → undefined. */
export function stateValue(s: PeerState): XenbusStateValue | undefined {
  if (s.kind === 'state') return s.state;
  return s.kind === 'missing' ? XenbusStateUnknown : undefined;
}

/**
 * Transitions an end may make of its own state. Closing and Closed are reachable from
 * everywhere (error or unplug); Initialising/InitWait again after Closed or a peer restart
 * (reconnect, protocols.md §2.5-2.6); Reconfiguring/Reconfigured only around Connected.
 */
const ALLOWED: Readonly<Record<XenbusStateValue, readonly XenbusStateValue[]>> = {
  [XenbusStateUnknown]: [1, 2, 3, 4, 5, 6, 7, 8] as XenbusStateValue[],
  [XenbusStateInitialising]: [XenbusStateInitWait, XenbusStateInitialised, XenbusStateConnected],
  [XenbusStateInitWait]: [XenbusStateInitialising, XenbusStateInitialised, XenbusStateConnected],
  [XenbusStateInitialised]: [XenbusStateInitialising, XenbusStateInitWait, XenbusStateConnected],
  [XenbusStateConnected]: [XenbusStateInitialising, XenbusStateInitWait, XenbusStateReconfiguring],
  [XenbusStateClosing]: [],
  [XenbusStateClosed]: [XenbusStateInitialising, XenbusStateInitWait],
  [XenbusStateReconfiguring]: [XenbusStateReconfigured, XenbusStateConnected],
  [XenbusStateReconfigured]: [XenbusStateConnected, XenbusStateReconfiguring],
};

export function isAllowedTransition(from: XenbusStateValue, to: XenbusStateValue): boolean {
  if (from === to || to === XenbusStateClosing || to === XenbusStateClosed) return true;
  return ALLOWED[from].includes(to);
}

export interface SwitchOptions {
  /** Write even when the node already holds `state` (blkback's resize re-write fires the peer's watch). */
  readonly rewrite?: boolean;
}

/**
 * Write our own `<dir>/state`. Returns false (and writes nothing) when the node is gone.
 * Our current value that is garbage or out of range counts as Unknown (the toolstack may have
 * written anything). Throws XenpvError EINVAL for a transition the table forbids.
 */
export async function switchState(
  client: XsClient,
  dir: string,
  state: XenbusStateValue,
  options: SwitchOptions = {},
): Promise<boolean> {
  return client.withTransaction(async (tx) => {
    let raw: string;
    try {
      raw = await tx.readString(`${dir}/state`);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') {
        await tx.abort();
        return false;
      }
      throw err;
    }
    const current = parseXenbusState(raw) ?? XenbusStateUnknown;
    if (!isAllowedTransition(current, state)) {
      throw new XenpvError('EINVAL', `${dir}: no transition ${xenbusStateName(current)} -> ${xenbusStateName(state)}`, { dir, current, state });
    }
    if (current === state && options.rewrite !== true) {
      await tx.abort();
      return true;
    }
    await tx.write(`${dir}/state`, String(state));
    return true;
  });
}

/**
 * Wait until `<dir>/state` satisfies `accept`, through a watch on it; rejects with
 * XenpvError ETIMEDOUT after `timeoutMs`. `accept` sees the robust reading (missing, garbage).
 */
export async function waitForState(
  client: XsClient,
  dir: string,
  accept: (s: PeerState) => boolean,
  timeoutMs: number,
): Promise<PeerState> {
  const watch = client.watch(`${dir}/state`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new XenpvError('ETIMEDOUT', `${dir}/state: no wanted state within ${timeoutMs} ms`, { dir, timeoutMs }));
    }, timeoutMs);
  });
  const loop = (async () => {
    // The first event fires at registration, so the current value is always checked.
    for await (const _ of watch) {
      const s = await readState(client, dir);
      if (accept(s)) return s;
    }
    throw new XenpvError('ECONNRESET', `${dir}/state: watch ended`, { dir });
  })();
  try {
    return await Promise.race([loop, timeout]);
  } finally {
    clearTimeout(timer);
    watch.dispose();
    loop.catch(() => undefined);
  }
}

/** `accept` for waitForState: exactly one of these states. */
export function isState(...states: XenbusStateValue[]): (s: PeerState) => boolean {
  return (s) => s.kind === 'state' && states.includes(s.state);
}

/**
 * Linux xenbus_dev_fatal: record `<errno> <message>` at error/<nodename>/error under our home,
 * then move to Closing. Failures to record are ignored: the state change is what matters.
 */
export async function deviceFatal(client: XsClient, dir: string, errPath: string, message: string, errno = 71): Promise<void> {
  await client.write(`${errPath}/error`, `${errno} ${message}`).catch(() => undefined);
  await switchState(client, dir, XenbusStateClosing).catch(() => undefined);
}
