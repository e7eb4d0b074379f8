/**
 * `xen/hvm/pvdrivers.h`: the product numbers PV drivers write to the platform device's
 * XEN_IOPORT_PRODNUM during the unplug handshake (see platform.ts). The header gives them as an
 * X-macro, `PVDRIVERS_PRODUCT_LIST(EACH)`; the C comparison expands it and checks this table.
 */
export interface PvdriversProduct {
  readonly name: string;
  readonly id: number;
}

/** In header order. */
export const PVDRIVERS_PRODUCT_LIST: readonly PvdriversProduct[] = [
  { name: 'xensource-windows', id: 0x0001 },
  { name: 'gplpv-windows', id: 0x0002 },
  { name: 'linux', id: 0x0003 },
  { name: 'xenserver-windows-v7.0+', id: 0x0004 },
  { name: 'xenserver-windows-v7.2+', id: 0x0005 },
  { name: 'experimental', id: 0xffff },
];

export function pvdriversProductName(id: number): string | undefined {
  return PVDRIVERS_PRODUCT_LIST.find((p) => p.id === id)?.name;
}
