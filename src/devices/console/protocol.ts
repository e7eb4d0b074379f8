/**
 * The PV console: keys, limits and the toolstack's records (io/console.h; protocols.md §2.2
 * "console" and §5.1; Xen's tools/console/daemon for the daemon's numbers).
 *
 * Console 0 is not a xenbus device. The domain builder gives the guest a page (granted to
 * dom0 at GNTTAB_RESERVED_CONSOLE) and an unbound port; the toolstack records them in the
 * guest's read-only `console/` directory:
 *
 *   /local/domain/<d>/console/ring-ref   the page's frame (xenconsoled prefers the grant)
 *                             port       the guest's event channel (remote: the console domain)
 *                             limit      bytes the daemon buffers (libxl: 1048576)
 *                             type       "xenconsoled" (served here) | "ioemu" (by qemu, not us)
 *                             output     "pty"
 *                             tty        written by the daemon (the pty; here: "xenpv:<domid>")
 *
 * Secondary consoles are xenbus devices `device/console/<n>`; the frontend publishes
 *   ring-ref   a grant ref of the page it allocated
 *   port       its unbound event channel
 * and goes Initialised (Linux hvc_xen); the backend maps, binds and goes Connected.
 */
import { XenpvError, errorCode } from '../../base/index.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { parseUint } from '../../xenbus/keys.js';

/** xenconsoled's RATE_LIMIT_ALLOWANCE: events serviced per period before the port rests. */
export const RATE_LIMIT_ALLOWANCE = 30;
/** xenconsoled's RATE_LIMIT_PERIOD in ms. */
export const RATE_LIMIT_PERIOD_MS = 200;
/** libxl's `limit` for console 0: the daemon's per-domain buffer bound. */
export const DEFAULT_CONSOLE_LIMIT = 1048576;
/** Bounds we accept for `limit` (a guest-visible key the toolstack wrote; still checked). */
export const MIN_CONSOLE_LIMIT = 4096;
export const MAX_CONSOLE_LIMIT = 64 * 1048576;
/** Guest output queued in the frontend while the ring is full. */
export const DEFAULT_FRONT_QUEUE = 65536;
/** Input queued in the backend for a guest that does not read it. */
export const DEFAULT_INPUT_QUEUE = 16384;

export const CONSOLE_TYPE_XENCONSOLED = 'xenconsoled';

export function primaryConsolePath(domid: number): string {
  return `/local/domain/${domid}/console`;
}

export interface PrimaryConsoleRecord {
  /** The console page's frame (the builder's start_info console frame). */
  readonly frame: number;
  /** The guest's end of the console event channel. */
  readonly port: number;
  readonly limit?: number;
  readonly type?: string;
}

/**
 * What the toolstack writes for console 0 (libxl ro_fents): the keys readable, not writable,
 * by the guest, owned by the console's backend domain.
 */
export async function writePrimaryConsole(client: XsClient, domid: number, rec: PrimaryConsoleRecord, backDomid = 0): Promise<void> {
  const dir = primaryConsolePath(domid);
  const perms = [
    { access: 'n' as const, domid: backDomid },
    { access: 'r' as const, domid },
  ];
  await client.withTransaction(async (tx) => {
    await tx.mkdir(dir);
    await tx.setPerms(dir, perms);
    const keys: [string, string][] = [
      ['ring-ref', String(rec.frame)],
      ['port', String(rec.port)],
      ['limit', String(rec.limit ?? DEFAULT_CONSOLE_LIMIT)],
      ['type', rec.type ?? CONSOLE_TYPE_XENCONSOLED],
      ['output', 'pty'],
    ];
    for (const [k, v] of keys) await tx.write(`${dir}/${k}`, v);
  });
}

export interface ConsoleKeys {
  readonly ringRef: number;
  readonly port: number;
  readonly limit: number;
}

/**
 * Read console 0's keys as xenconsoled does: absent ring-ref or port → not there yet
 * (undefined); a type other than xenconsoled → not ours (undefined); malformed numbers →
 * XenpvError EPROTO. `limit` outside its bounds is clamped into them.
 */
export async function readPrimaryConsole(client: XsClient, domid: number): Promise<ConsoleKeys | undefined> {
  const dir = primaryConsolePath(domid);
  const get = async (k: string): Promise<string | undefined> => {
    try {
      return await client.readString(`${dir}/${k}`);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  };
  const [ringRef, port, limit, type] = await Promise.all([get('ring-ref'), get('port'), get('limit'), get('type')]);
  if (ringRef === undefined || port === undefined) return undefined;
  if (type !== undefined && type !== CONSOLE_TYPE_XENCONSOLED) return undefined;
  const r = parseUint(ringRef);
  const p = parseUint(port);
  if (r === undefined || r > 0xffffffff || p === undefined || p === 0 || p > 0xffffffff) {
    throw new XenpvError('EPROTO', `${dir}: bad ring-ref '${ringRef.slice(0, 16)}' or port '${port.slice(0, 16)}'`);
  }
  const l = limit === undefined ? undefined : parseUint(limit);
  const bounded = l === undefined ? DEFAULT_CONSOLE_LIMIT : Math.min(MAX_CONSOLE_LIMIT, Math.max(MIN_CONSOLE_LIMIT, l));
  return { ringRef: r, port: p, limit: bounded };
}

/** The marker a reader sees where output was discarded. */
export function discardMarker(bytes: number): Uint8Array {
  return new TextEncoder().encode(`\r\n[xenpv console: ${bytes} bytes of output discarded]\r\n`);
}
