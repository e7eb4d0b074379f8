/**
 * `xen/hvm/params.h`: HVM parameters (`HVMOP_get_param` / `HVMOP_set_param` indices).
 *
 * The ones xenpv uses: STORE_PFN/STORE_EVTCHN (where a guest finds its xenstore ring),
 * CONSOLE_PFN/CONSOLE_EVTCHN (console 0), IOREQ_PFN/BUFIOREQ_PFN/BUFIOREQ_EVTCHN (the legacy
 * ioreq pages), CALLBACK_IRQ (how event channel upcalls reach an HVM guest). Some are visible
 * to C only with __XEN_TOOLS__ defined, which the C comparison does.
 */
import { defineConstants } from '../layout.js';

const H = 'xen/hvm/params.h';

export const HVM_PARAM = defineConstants(H, {
  /** Value: type in bits 56-63 (HVM_PARAM_CALLBACK_TYPE_*), GSI / PCI INTx / vector below. */
  HVM_PARAM_CALLBACK_IRQ: 0,
  HVM_PARAM_STORE_PFN: 1,
  HVM_PARAM_STORE_EVTCHN: 2,
  HVM_PARAM_PAE_ENABLED: 4, // tools only
  HVM_PARAM_IOREQ_PFN: 5,
  HVM_PARAM_BUFIOREQ_PFN: 6,
  HVM_PARAM_VIRIDIAN: 9,
  HVM_PARAM_TIMER_MODE: 10,
  HVM_PARAM_HPET_ENABLED: 11,
  HVM_PARAM_IDENT_PT: 12,
  HVM_PARAM_DM_DOMAIN: 13, // tools only
  HVM_PARAM_ACPI_S_STATE: 14,
  HVM_PARAM_VM86_TSS: 15,
  HVM_PARAM_VPT_ALIGN: 16,
  HVM_PARAM_CONSOLE_PFN: 17,
  HVM_PARAM_CONSOLE_EVTCHN: 18,
  HVM_PARAM_ACPI_IOPORTS_LOCATION: 19,
  HVM_PARAM_MEMORY_EVENT_CR0: 20, // tools only
  HVM_PARAM_MEMORY_EVENT_CR3: 21, // tools only
  HVM_PARAM_MEMORY_EVENT_CR4: 22, // tools only
  HVM_PARAM_MEMORY_EVENT_INT3: 23, // tools only
  HVM_PARAM_NESTEDHVM: 24, // tools only
  HVM_PARAM_MEMORY_EVENT_SINGLE_STEP: 25, // tools only
  HVM_PARAM_BUFIOREQ_EVTCHN: 26, // tools only
  HVM_PARAM_PAGING_RING_PFN: 27,
  HVM_PARAM_MONITOR_RING_PFN: 28,
  HVM_PARAM_SHARING_RING_PFN: 29,
  HVM_PARAM_MEMORY_EVENT_MSR: 30, // tools only
  HVM_PARAM_TRIPLE_FAULT_REASON: 31, // SHUTDOWN_* action on a triple fault
  HVM_PARAM_IOREQ_SERVER_PFN: 32,
  HVM_PARAM_NR_IOREQ_SERVER_PAGES: 33,
  HVM_PARAM_VM_GENERATION_ID_ADDR: 34,
  HVM_PARAM_ALTP2M: 35,
  HVM_PARAM_X87_FIP_WIDTH: 36,
  HVM_PARAM_VM86_TSS_SIZED: 37,
  HVM_PARAM_MCA_CAP: 38,
  HVM_NR_PARAMS: 39,
});
export const {
  HVM_PARAM_CALLBACK_IRQ,
  HVM_PARAM_STORE_PFN,
  HVM_PARAM_STORE_EVTCHN,
  HVM_PARAM_IOREQ_PFN,
  HVM_PARAM_BUFIOREQ_PFN,
  HVM_PARAM_CONSOLE_PFN,
  HVM_PARAM_CONSOLE_EVTCHN,
  HVM_PARAM_BUFIOREQ_EVTCHN,
  HVM_PARAM_TRIPLE_FAULT_REASON,
  HVM_NR_PARAMS,
} = HVM_PARAM;
export type HvmParam = (typeof HVM_PARAM)[Exclude<keyof typeof HVM_PARAM, 'HVM_NR_PARAMS'>];

/** How HVM_PARAM_CALLBACK_IRQ's value is read: type in the top byte (x86 values). */
export const HVM_PARAM_CALLBACK = defineConstants(H, {
  HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: 0xff00000000000000, // exactly representable: 255 * 2^56
  HVM_PARAM_CALLBACK_TYPE_GSI: 0, // value = GSI
  HVM_PARAM_CALLBACK_TYPE_PCI_INTX: 1, // value = domain:bus:devfn:intx
  HVM_PARAM_CALLBACK_TYPE_VECTOR: 2, // value = vector (x86)
});
export const { HVM_PARAM_CALLBACK_TYPE_GSI, HVM_PARAM_CALLBACK_TYPE_PCI_INTX, HVM_PARAM_CALLBACK_TYPE_VECTOR } =
  HVM_PARAM_CALLBACK;

/** The callback type of an HVM_PARAM_CALLBACK_IRQ value (a u64, so a bigint). */
export function hvmCallbackType(value: bigint): number {
  return Number((value >> 56n) & 0xffn);
}
