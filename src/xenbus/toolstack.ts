/**
 * The toolstack's part of a device's life (libxl_device.c, protocols.md §2.2 and §2.5):
 * create its two directories, and unplug it.
 *
 * `addDevice` writes, in one transaction with EAGAIN retry (libxl__device_generic_add):
 *   frontend dir, ACL [n<fe>, r<be>]: backend, backend-id, state=1, + the class's keys
 *   backend dir,  ACL [n<be>, r<fe>]: frontend, frontend-id, online=1, state=1, + keys
 *   /libxl/<fe>/device/<class>/<devid>: libxl's own copy of both paths (XSA-175)
 * `removeDevice` is libxl's unplug: online=0 and backend state=Closing (unless already
 * Closed) in one transaction, wait up to LIBXL_DESTROY_TIMEOUT (10 s) for backend Closed,
 * then remove the directories — also after a timeout, as libxl's forced retry does.
 */
import { XenbusStateClosed, XenbusStateClosing, XenbusStateInitialising, parseXenbusState } from '../abi/io/xenbus.js';
import { errorCode } from '../base/index.js';
import type { XsClient, XsTransaction } from '../xenstore/client/index.js';
import type { XsPerm } from '../xenstore/protocol/index.js';
import type { KeyValue } from './keys.js';
import { backendPath, frontendPath, libxlDevicePath, type DeviceId } from './paths.js';
import { isState, waitForState } from './state.js';

/** libxl's LIBXL_DESTROY_TIMEOUT. */
export const LIBXL_DESTROY_TIMEOUT_MS = 10_000;

export interface AddDeviceOptions {
  readonly frontKeys?: Readonly<Record<string, KeyValue>>;
  readonly backKeys?: Readonly<Record<string, KeyValue>>;
  /**
   * Front keys the guest may read but not change (libxl's ro_fents: console 0's ring-ref,
   * port, limit, type...), written with ACL [n<be>, r<fe>].
   */
  readonly roFrontKeys?: Readonly<Record<string, KeyValue>>;
}

function str(v: KeyValue): string {
  return typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
}

export function frontendPerms(dev: DeviceId): XsPerm[] {
  return [
    { access: 'n', domid: dev.frontDomid },
    { access: 'r', domid: dev.backDomid },
  ];
}

export function backendPerms(dev: DeviceId): XsPerm[] {
  return [
    { access: 'n', domid: dev.backDomid },
    { access: 'r', domid: dev.frontDomid },
  ];
}

async function rmIfPresent(tx: XsTransaction | XsClient, path: string): Promise<void> {
  await tx.rm(path).catch((err: unknown) => {
    if (errorCode(err) !== 'ENOENT') throw err;
  });
}

async function writeAll(tx: XsTransaction, dir: string, keys: Readonly<Record<string, KeyValue>>, perms?: XsPerm[]): Promise<void> {
  for (const [k, v] of Object.entries(keys)) {
    await tx.write(`${dir}/${k}`, str(v));
    if (perms !== undefined) await tx.setPerms(`${dir}/${k}`, perms);
  }
}

/** The guest-writable subdirectories of a domain's home (libxl__domain_make's rw list). */
export const GUEST_WRITABLE_DIRS = ['device', 'error', 'drivers', 'control', 'attr', 'data', 'messages', 'feature'] as const;

/**
 * A new domain's home as libxl makes it: `/local/domain/<d>` owned by dom0 and readable by
 * the guest, the writable subdirectories owned by the guest, `domid` and `name`.
 */
export async function prepareDomainHome(client: XsClient, domid: number, name = `dom${domid}`): Promise<void> {
  const home = `/local/domain/${domid}`;
  await client.withTransaction(async (tx) => {
    await tx.mkdir(home);
    await tx.setPerms(home, [{ access: 'n', domid: 0 }, { access: 'r', domid }]);
    for (const d of GUEST_WRITABLE_DIRS) {
      await tx.mkdir(`${home}/${d}`);
      await tx.setPerms(`${home}/${d}`, [{ access: 'n', domid }]);
    }
    await tx.write(`${home}/domid`, String(domid));
    await tx.write(`${home}/name`, name);
  });
}

/** Create the device's frontend and backend directories (see the file comment). */
export async function addDevice(client: XsClient, dev: DeviceId, options: AddDeviceOptions = {}): Promise<void> {
  const fe = frontendPath(dev);
  const be = backendPath(dev);
  await client.withTransaction(async (tx) => {
    await rmIfPresent(tx, fe);
    await tx.mkdir(fe);
    await tx.setPerms(fe, frontendPerms(dev));
    const frontKeys = { backend: be, 'backend-id': dev.backDomid, state: XenbusStateInitialising, ...options.frontKeys };
    await writeAll(tx, fe, frontKeys);
    const ro = [{ access: 'n', domid: dev.backDomid }, { access: 'r', domid: dev.frontDomid }] satisfies XsPerm[];
    await writeAll(tx, fe, options.roFrontKeys ?? {}, ro);
    await rmIfPresent(tx, be);
    await tx.mkdir(be);
    await tx.setPerms(be, backendPerms(dev));
    const backKeys = { frontend: fe, 'frontend-id': dev.frontDomid, online: 1, state: XenbusStateInitialising, ...options.backKeys };
    await writeAll(tx, be, backKeys);
    const lib = libxlDevicePath(dev);
    await tx.write(`${lib}/frontend`, fe);
    await tx.write(`${lib}/backend`, be);
  });
}

export interface RemoveOptions {
  /** How long to wait for backend Closed; default LIBXL_DESTROY_TIMEOUT_MS. */
  readonly timeoutMs?: number;
  /** Remove the frontend dir in the first transaction too (libxl force). */
  readonly force?: boolean;
}

export interface RemoveResult {
  /** The backend did not reach Closed in time; the directories were removed anyway. */
  readonly timedOut: boolean;
}

/** Unplug (see the file comment). Paths come from `dev`, never from the guest's keys. */
export async function removeDevice(client: XsClient, dev: DeviceId, options: RemoveOptions = {}): Promise<RemoveResult> {
  const fe = frontendPath(dev);
  const be = backendPath(dev);
  const present = await client.withTransaction(async (tx) => {
    let raw: string;
    try {
      raw = await tx.readString(`${be}/state`);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      return false;
    }
    await tx.write(`${be}/online`, '0');
    if (parseXenbusState(raw) !== XenbusStateClosed) await tx.write(`${be}/state`, String(XenbusStateClosing));
    if (options.force === true) await rmIfPresent(tx, fe);
    return true;
  });
  let timedOut = false;
  if (present) {
    try {
      await waitForState(client, be, (s) => s.kind === 'missing' || isState(XenbusStateClosed)(s), options.timeoutMs ?? LIBXL_DESTROY_TIMEOUT_MS);
    } catch (err) {
      if (errorCode(err) !== 'ETIMEDOUT') throw err;
      timedOut = true;
    }
  }
  await client.withTransaction(async (tx) => {
    await rmIfPresent(tx, fe);
    await rmIfPresent(tx, be);
    await rmIfPresent(tx, libxlDevicePath(dev));
  });
  return { timedOut };
}
