/**
 * The control domain's own xenstore ring, for a xenstored running in it. Xen starts dom0
 * without a store (start_info's store_evtchn is 0), so dom0's kernel makes one itself: a page
 * of its memory and an unbound event channel, and its xenbus waits until a local xenstored
 * signals that port ("XS_LOCAL" in Linux's xenbus_probe.c). Linux hands both to userspace:
 *
 * - /dev/xen/xenbus_backend: mmap of offset 0, one page, is that ring page;
 *   IOCTL_XENBUS_BACKEND_EVTCHN returns the port (<xen/sys/xenbus_dev.h>);
 * - the older xenfs files /proc/xen/xsd_kva (the page) and /proc/xen/xsd_port (the port, as text).
 *
 * The xenstored binds an interdomain channel to dom0's own port and serves the page as
 * domain 0, the way C xenstored's dom0_init does.
 */
import { closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { XenpvError, toEvtchnPort, type EvtchnPort } from '../../base/index.js';
import { PAGE_SIZE } from '../platform.js';
import { ioc, type Native } from './ffi.js';
import { MappedRegion } from './region.js';

/** _IOC(_IOC_NONE, 'B', 0, 0): the port is the ioctl's return value. */
export const IOCTL_XENBUS_BACKEND_EVTCHN = ioc('B', 0, 0);

export interface LocalStoreRing {
  /** The kernel's xenstore_domain_interface page, mapped shared. */
  readonly page: Uint8Array;
  /** dom0's unbound port for the store (bind interdomain to dom0 to reach it). */
  readonly port: EvtchnPort;
  /** Where they came from (diagnostics). */
  readonly source: string;
  dispose(): void;
}

/** Map dom0's store page and learn its port; throws XenpvError when neither interface is there. */
export function openLocalStoreRing(native: Native, devDir = '/dev/xen', procDir = '/proc/xen'): LocalStoreRing {
  if (existsSync(`${devDir}/xenbus_backend`)) {
    const fd = openSync(`${devDir}/xenbus_backend`, constants.O_RDWR);
    const rc = native.ioctl(fd, IOCTL_XENBUS_BACKEND_EVTCHN, null);
    const port = rc > 0 ? toEvtchnPort(rc) : undefined;
    if (port === undefined) {
      closeSync(fd);
      throw new XenpvError('ENOENT', `no local store event channel (ioctl answered ${rc}): is a stub domain serving dom0's store?`);
    }
    return fromFd(native, fd, port, `${devDir}/xenbus_backend`);
  }
  if (existsSync(`${procDir}/xsd_kva`)) {
    const text = readFileSync(`${procDir}/xsd_port`, 'utf8').trim();
    const port = /^\d+$/.test(text) ? toEvtchnPort(Number(text)) : undefined;
    if (port === undefined || port === 0) throw new XenpvError('ENOENT', `${procDir}/xsd_port says '${text}'`);
    return fromFd(native, openSync(`${procDir}/xsd_kva`, constants.O_RDWR), port, `${procDir}/xsd_kva`);
  }
  throw new XenpvError('ENOENT', `neither ${devDir}/xenbus_backend nor ${procDir}/xsd_kva: not a control domain, or xenfs is not mounted`);
}

function fromFd(native: Native, fd: number, port: EvtchnPort, source: string): LocalStoreRing {
  let region: MappedRegion;
  try {
    region = MappedRegion.map(native, fd, 0n, PAGE_SIZE, true, `the store page (${source})`);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let open = true;
  return {
    page: new Uint8Array(region.buffer),
    port,
    source,
    dispose: () => {
      if (!open) return;
      open = false;
      region.retire();
      closeSync(fd);
    },
  };
}
