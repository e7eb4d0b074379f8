/**
 * Where a split device lives in xenstore, as libxl writes it (protocols.md §2.2):
 *
 *   frontend  /local/domain/<fe>/device/<class>/<devid>         (owned by fe, readable by be)
 *   backend   /local/domain/<be>/backend/<class>/<fe>/<devid>   (owned by be, readable by fe)
 *
 * with `backend`/`backend-id` in the frontend dir and `frontend`/`frontend-id` in the backend
 * dir. The frontend dir is guest-writable, so a backend never takes a path from it (XSA-175):
 * the parsers here accept exactly these shapes and nothing else.
 */
import { toDomId, type DomId } from '../base/index.js';

/** A device instance as the toolstack names it. */
export interface DeviceId {
  /** The frontend's class (`vbd`, `vif`, `console`). */
  readonly frontClass: string;
  /** The backend's class (`vbd`, `qdisk`, `vbd3`, `vif`, `console`); often the same. */
  readonly backClass: string;
  readonly frontDomid: DomId;
  readonly backDomid: DomId;
  readonly devid: number;
}

export function domainHome(domid: number): string {
  return `/local/domain/${domid}`;
}

export function frontendPath(dev: Pick<DeviceId, 'frontDomid' | 'frontClass' | 'devid'>): string {
  return `${domainHome(dev.frontDomid)}/device/${dev.frontClass}/${dev.devid}`;
}

export function backendPath(dev: Pick<DeviceId, 'backDomid' | 'backClass' | 'frontDomid' | 'devid'>): string {
  return `${domainHome(dev.backDomid)}/backend/${dev.backClass}/${dev.frontDomid}/${dev.devid}`;
}

/** libxl's trustworthy copy of the device's paths, out of the guest's reach. */
export function libxlDevicePath(dev: Pick<DeviceId, 'frontDomid' | 'frontClass' | 'devid'>): string {
  return `/libxl/${dev.frontDomid}/device/${dev.frontClass}/${dev.devid}`;
}

/**
 * Linux xenbus_dev_error's node: `error/<nodename>` under the writer's home, where nodename is
 * the device path relative to that home (`device/vbd/51712`, `backend/vbd/1/51712`).
 */
export function errorPath(devicePath: string, writerDomid: number): string {
  const home = `${domainHome(writerDomid)}/`;
  const rel = devicePath.startsWith(home) ? devicePath.slice(home.length) : devicePath.replace(/^\//, '');
  return `${home}error/${rel}`;
}

const CLASS = '[a-z][a-z0-9_-]{0,31}';
const NUM = '(0|[1-9][0-9]{0,9})';
const CLASS_RE = new RegExp(`^${CLASS}$`);
const DEVID_RE = new RegExp(`^${NUM}$`);

export function isDeviceClass(s: string): boolean {
  return CLASS_RE.test(s);
}

/** A devid as a directory name: plain decimal, no sign, no leading zeros, < 2^32. */
export function parseDevid(s: string): number | undefined {
  if (!DEVID_RE.test(s)) return undefined;
  const n = Number(s);
  return n <= 0xffffffff ? n : undefined;
}

/** A domid as a directory name or key value: plain decimal of a real (non-reserved) domain. */
export function parseDomid(s: string): DomId | undefined {
  if (!DEVID_RE.test(s)) return undefined;
  return toDomId(Number(s));
}

/** Parse `/local/domain/<be>/backend/<class>/<fe>/<devid>`; anything else is undefined. */
export function parseBackendPath(path: string): { backDomid: DomId; backClass: string; frontDomid: DomId; devid: number } | undefined {
  const m = new RegExp(`^/local/domain/${NUM}/backend/(${CLASS})/${NUM}/${NUM}$`).exec(path);
  if (m === null) return undefined;
  const backDomid = parseDomid(m[1]!);
  const frontDomid = parseDomid(m[3]!);
  const devid = parseDevid(m[4]!);
  if (backDomid === undefined || frontDomid === undefined || devid === undefined) return undefined;
  return { backDomid, backClass: m[2]!, frontDomid, devid };
}

/** Parse `/local/domain/<fe>/device/<class>/<devid>`. */
export function parseFrontendPath(path: string): { frontDomid: DomId; frontClass: string; devid: number } | undefined {
  const m = new RegExp(`^/local/domain/${NUM}/device/(${CLASS})/${NUM}$`).exec(path);
  if (m === null) return undefined;
  const frontDomid = parseDomid(m[1]!);
  const devid = parseDevid(m[3]!);
  if (frontDomid === undefined || devid === undefined) return undefined;
  return { frontDomid, frontClass: m[2]!, devid };
}

/**
 * The relative part of `path` below `base` split into components, or undefined when `path`
 * is not `base` or below it. `base` itself gives [].
 */
export function componentsBelow(base: string, path: string): string[] | undefined {
  if (path === base) return [];
  if (!path.startsWith(`${base}/`)) return undefined;
  return path.slice(base.length + 1).split('/');
}
