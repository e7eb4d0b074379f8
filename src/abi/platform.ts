/**
 * The Xen platform PCI device and the emulated-device unplug protocol.
 *
 * NOT from a C header: Xen's public headers do not define these. The facts come from
 * docs/misc/hvm-emulated-unplug.pandoc (the protocol) and QEMU's xen-platform device (the PCI
 * identity, BARs, UNPLUG_* names); port names follow Linux's platform_pci.h. They are registered
 * as `unchecked`, so `xenpv abi` lists them and the C comparison skips them, saying why.
 *
 * Driver side of the handshake, as the document gives it:
 *   1. read u16 at port 0x10: must be XEN_IOPORT_MAGIC_VAL (0x49d2), else no unplug support;
 *   2. read u8 protocol version at 0x12; if 0 skip to 6;
 *   3. write u16 product number (hvm/pvdrivers.h) to 0x12;
 *   4. write u32 build number to 0x10;
 *   5. re-read u16 at 0x10: XEN_IOPORT_MAGIC_BLACKLISTED (0xd249) means "do not load";
 *   6. write the u16 unplug mask (UNPLUG_*) to 0x10.
 * After the magic check a driver may log bytes to 0x12 (newline-terminated, rate-limited).
 */
import { defineConstants } from './layout.js';

const DOC = 'docs/misc/hvm-emulated-unplug.pandoc';
const WHY = 'not in any Xen C header (docs/misc/hvm-emulated-unplug.pandoc, QEMU xen_platform.c)';

export const XEN_PLATFORM_PCI = defineConstants(
  DOC,
  {
    PCI_VENDOR_ID_XEN: 0x5853, // also the subsystem vendor
    PCI_DEVICE_ID_XEN_PLATFORM: 0x0001, // also the subsystem id
    XEN_PLATFORM_CLASS: 0xff80, // "other" device class
    XEN_PLATFORM_REVISION: 1,
    XEN_PLATFORM_BAR0_IO_SIZE: 0x100, // platform flags at +0, log byte at +8
    XEN_PLATFORM_BAR1_MMIO_SIZE: 0x1000000, // 16 MiB prefetchable: where guests map grant table / shared info
  },
  { unchecked: WHY },
);
export const {
  PCI_VENDOR_ID_XEN,
  PCI_DEVICE_ID_XEN_PLATFORM,
  XEN_PLATFORM_CLASS,
  XEN_PLATFORM_REVISION,
  XEN_PLATFORM_BAR0_IO_SIZE,
  XEN_PLATFORM_BAR1_MMIO_SIZE,
} = XEN_PLATFORM_PCI;

/** The fixed I/O ports 0x10-0x1f and what each access means. */
export const XEN_IOPORT = defineConstants(
  DOC,
  {
    XEN_IOPORT_BASE: 0x10,
    XEN_IOPORT_MAGIC: 0x10, // read u16: magic
    XEN_IOPORT_UNPLUG: 0x10, // write u16: unplug mask
    XEN_IOPORT_DRVVER: 0x10, // write u32: driver build number
    XEN_IOPORT_PROTOVER: 0x12, // read u8: protocol version
    XEN_IOPORT_PRODNUM: 0x12, // write u16: product number
    XEN_IOPORT_SYSLOG: 0x12, // write u8: log byte
    XEN_IOPORT_MAGIC_VAL: 0x49d2,
    XEN_IOPORT_MAGIC_BLACKLISTED: 0xd249, // magic read back after a blacklisted build number
  },
  { unchecked: WHY },
);
export const {
  XEN_IOPORT_BASE,
  XEN_IOPORT_MAGIC,
  XEN_IOPORT_UNPLUG,
  XEN_IOPORT_DRVVER,
  XEN_IOPORT_PROTOVER,
  XEN_IOPORT_PRODNUM,
  XEN_IOPORT_SYSLOG,
  XEN_IOPORT_MAGIC_VAL,
  XEN_IOPORT_MAGIC_BLACKLISTED,
} = XEN_IOPORT;

/** Bits of the unplug mask written to XEN_IOPORT_UNPLUG. */
export const UNPLUG = defineConstants(
  DOC,
  {
    UNPLUG_ALL_DISKS: 1 << 0, // all emulated IDE and SCSI disks, not CD drives
    UNPLUG_ALL_NICS: 1 << 1, // all emulated NICs
    UNPLUG_AUX_IDE_DISKS: 1 << 2, // all IDE disks but the primary master; overridden by bit 0
    UNPLUG_NVME_DISKS: 1 << 3, // all emulated NVMe disks
  },
  { unchecked: WHY },
);
export const { UNPLUG_ALL_DISKS, UNPLUG_ALL_NICS, UNPLUG_AUX_IDE_DISKS, UNPLUG_NVME_DISKS } = UNPLUG;

/** The xenstore directory holding blacklisted driver builds: `<prefix>/<product>/<build>`. */
export const XEN_DRIVER_BLACKLIST_PATH = '/mh/driver-blacklist';
