/**
 * The `xen` platform: `Platform` (hv/platform.ts) over a real Xen domain's Linux devices,
 * for the same BlkBack, BlkFront, ConsoleBack, ... that run on the `sim` platform.
 *
 *   const r = await loadXenPlatform();
 *   if (!r.ok) console.error(`xen platform unavailable: ${r.reason}`);
 *   else { const p = r.platform; ...; await p.close(); }
 *
 * Nothing here throws for a machine that is not a Xen domain, or one where the native bridge
 * cannot load: the answer is `{ ok: false, reason }`, and the rest of xenpv does not need it.
 */
import { closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { XenpvError, toDomId, type DomId } from '../../base/index.js';
import type { Platform, StoreTransport } from '../platform.js';
import { loadNative, type Native } from './ffi.js';
import { XenGrantOps } from './grants.js';
import { XenEventOps, type XenEventOptions } from './events.js';
import { GrantTableView } from './grant-status.js';
import { XenDomainMemory } from './memory.js';
import { openXenStore } from './store.js';

export interface XenPlatformOptions extends XenEventOptions {
  /** The domain we run as; default 0 in a control domain, else asked of the store (`domid`). */
  readonly domid?: number;
  /** The /dev/xen directory (tests). */
  readonly devDir?: string;
}

export type XenPlatformResult = { readonly ok: true; readonly platform: XenPlatform } | { readonly ok: false; readonly reason: string };

export class XenPlatform implements Platform {
  readonly kind = 'xen' as const;
  private closed = false;

  constructor(
    readonly domid: DomId,
    readonly native: Native,
    readonly memory: XenDomainMemory,
    readonly grants: XenGrantOps,
    readonly events: XenEventOps,
    private readonly fds: readonly number[],
    devDir = '/dev/xen',
  ) {
    // Our grant table is mapped at the first endAccess: a domain that never grants (a dom0
    // running backends) never opens privcmd for it.
    memory.inUse = (ref, remote) => {
      if (this.grantTable === undefined) {
        const t = GrantTableView.open(native, devDir);
        this.grantTable = t.ok ? t.view : null;
        this.endAccessSees = t.ok ? 'reads GTF_reading/GTF_writing in our grant table' : `cannot see the grantee's mappings: ${t.reason}`;
      }
      return this.grantTable?.inUse(ref, remote);
    };
  }

  /** Reads our grant entries for endAccess (grant-status.ts); null where this domain cannot. */
  private grantTable: GrantTableView | null | undefined;
  /** How endAccess learns that a grantee still maps a page, or why it cannot. */
  endAccessSees = 'not asked yet';

  openStore(): Promise<StoreTransport> {
    return openXenStore(this.native);
  }

  describe(): string {
    return this.grantTable === undefined ? `xen dom${this.domid}` : `xen dom${this.domid} (endAccess: ${this.endAccessSees})`;
  }

  /** Unbind every port, drop the staging memory and close the devices. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.events.close();
    this.grants.dispose();
    this.grantTable?.close();
    for (const fd of this.fds) closeSync(fd);
  }
}

/** Why this machine cannot host the xen platform, or undefined when it might. */
export function xenUnavailableReason(devDir = '/dev/xen'): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (!existsSync(devDir)) return `${devDir} does not exist: this is not a Xen domain (or xen-evtchn/xen-gntdev are not loaded)`;
  for (const dev of ['evtchn', 'gntdev']) {
    if (!existsSync(`${devDir}/${dev}`)) return `${devDir}/${dev} is missing (modprobe xen-${dev === 'evtchn' ? 'evtchn' : 'gntdev'})`;
  }
  return undefined;
}

/** Open the xen platform, or say why it cannot be had here. Never throws. */
export async function loadXenPlatform(options: XenPlatformOptions = {}): Promise<XenPlatformResult> {
  const devDir = options.devDir ?? '/dev/xen';
  const why = xenUnavailableReason(devDir);
  if (why !== undefined) return { ok: false, reason: why };
  const n = await loadNative();
  if (!n.ok) return { ok: false, reason: n.reason };
  const fds: number[] = [];
  const open = (name: string, flags: number): number => {
    const fd = openSync(`${devDir}/${name}`, flags);
    fds.push(fd);
    return fd;
  };
  try {
    // Node opens every fd close-on-exec already.
    const rw = constants.O_RDWR;
    const evtchn = open('evtchn', rw);
    const gntdev = open('gntdev', rw);
    const gntalloc = existsSync(`${devDir}/gntalloc`) ? open('gntalloc', rw) : undefined;
    const domid = await resolveDomid(n.native, options);
    const memory = new XenDomainMemory(n.native, gntalloc);
    const grants = new XenGrantOps(n.native, gntdev, memory);
    const events = new XenEventOps(n.native, evtchn, domid, options);
    return { ok: true, platform: new XenPlatform(domid, n.native, memory, grants, events, fds, devDir) };
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    return { ok: false, reason: `opening ${devDir}: ${(err as Error).message}` };
  }
}

async function resolveDomid(native: Native, options: XenPlatformOptions): Promise<DomId> {
  const given = options.domid === undefined ? undefined : toDomId(options.domid);
  if (options.domid !== undefined && given === undefined) throw new XenpvError('EINVAL', `bad domid ${options.domid}`);
  if (given !== undefined) return given;
  let caps = '';
  try {
    caps = readFileSync('/proc/xen/capabilities', 'utf8');
  } catch {
    // xenfs not mounted: not a control domain as far as we can tell.
  }
  if (caps.includes('control_d')) return 0 as DomId;
  return readOwnDomid(await openXenStore(native));
}

/** XS_READ of the relative path `domid` (xenstored answers every connection its own domid). */
async function readOwnDomid(store: StoreTransport): Promise<DomId> {
  const XS_READ = 2;
  const XS_ERROR = 16;
  const body = new TextEncoder().encode('domid\0');
  const msg = new Uint8Array(16 + body.length);
  const dv = new DataView(msg.buffer);
  dv.setUint32(0, XS_READ, true);
  dv.setUint32(4, 1, true);
  dv.setUint32(12, body.length, true);
  msg.set(body, 16);
  try {
    const reply = await new Promise<Uint8Array>((resolve, reject) => {
      let got: Uint8Array = new Uint8Array(0);
      const timer = setTimeout(() => reject(new XenpvError('ETIMEDOUT', 'the store did not answer XS_READ domid')), 5000);
      store.onClose((r) => reject(r ?? new XenpvError('ECONNRESET', 'store closed')));
      store.onData((chunk) => {
        got = concat(got, chunk);
        if (got.length < 16) return;
        const len = new DataView(got.buffer, got.byteOffset).getUint32(12, true);
        if (got.length >= 16 + len) {
          clearTimeout(timer);
          resolve(got);
        }
      });
      store.write(msg);
    });
    const rdv = new DataView(reply.buffer, reply.byteOffset);
    const text = new TextDecoder().decode(reply.subarray(16, 16 + rdv.getUint32(12, true))).replace(/\0$/, '');
    const id = rdv.getUint32(0, true) === XS_ERROR ? undefined : toDomId(Number(text));
    if (id === undefined || !/^\d+$/.test(text)) throw new XenpvError('EIO', `the store answered domid '${text}'`);
    return id;
  } finally {
    store.dispose();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
