/**
 * `xen/xen.h` (with `arch-x86/xen.h`, `arch-x86/xen-x86_64.h`): `shared_info`, `vcpu_info`,
 * the time record, VIRQs and reserved domain ids.
 *
 * xenpv guests are x86_64: the hypervisor model lays out each domain's shared_info page as the
 * x86_64 layout below. x86_32 layouts are given too (checked against the compiler) because
 * `xen_ulong_t` and `unsigned long` shrink to 4 bytes there and every offset after them moves.
 *
 * The shutdown reasons live in `sched.h` (see `sched.ts`); they are re-exported here.
 */
import { defineConstants, defineStruct } from './layout.js';

export * from './sched.js';

const H = 'xen/xen.h';

/** `VIRQ_*`: virtual interrupts, bound with `EVTCHNOP_bind_virq`. V = per vCPU, G = global. */
export const VIRQ = defineConstants(H, {
  VIRQ_TIMER: 0, // V. timebase update and/or requested timeout
  VIRQ_DEBUG: 1, // V. request guest to dump debug info
  VIRQ_CONSOLE: 2, // G. (dom0) bytes received on emergency console
  VIRQ_DOM_EXC: 3, // G. (dom0) exceptional event for some domain: toolstacks watch for shutdowns
  VIRQ_TBUF: 4, // G. (dom0) trace buffer has records
  VIRQ_DEBUGGER: 6, // G. (dom0) a domain paused for debugging (5 is unused)
  VIRQ_XENOPROF: 7, // V.
  VIRQ_CON_RING: 8, // G. (dom0) bytes received on console
  VIRQ_PCPU_STATE: 9, // G. (dom0)
  VIRQ_MEM_EVENT: 10, // G. (dom0)
  VIRQ_ARGO: 11, // G.
  VIRQ_ENOMEM: 12, // G. (dom0) low on heap memory
  VIRQ_XENPMU: 13, // V.
  VIRQ_ARCH_0: 16,
  VIRQ_ARCH_1: 17,
  VIRQ_ARCH_2: 18,
  VIRQ_ARCH_3: 19,
  VIRQ_ARCH_4: 20,
  VIRQ_ARCH_5: 21,
  VIRQ_ARCH_6: 22,
  VIRQ_ARCH_7: 23,
  NR_VIRQS: 24,
});
export const { VIRQ_TIMER, VIRQ_DEBUG, VIRQ_CONSOLE, VIRQ_DOM_EXC, NR_VIRQS } = VIRQ;

/** `DOMID_*`: reserved domain ids (domid_t is uint16_t; real domains are below 0x7FF0). */
export const DOMID = defineConstants(H, {
  DOMID_FIRST_RESERVED: 0x7ff0,
  DOMID_SELF: 0x7ff0,
  DOMID_IO: 0x7ff1,
  DOMID_XEN: 0x7ff2,
  DOMID_COW: 0x7ff3,
  DOMID_INVALID: 0x7ff4,
  DOMID_IDLE: 0x7fff,
  DOMID_MASK: 0x7fff,
});
export const { DOMID_FIRST_RESERVED, DOMID_SELF, DOMID_IO, DOMID_XEN, DOMID_INVALID, DOMID_IDLE } = DOMID;

/**
 * `__HYPERVISOR_*`: hypercall numbers (the latest interface version; older guests had compat
 * numbers for sched_op, event_channel_op and physdev_op). privcmd's IOCTL_PRIVCMD_HYPERCALL
 * takes one of these as `op`.
 */
export const HYPERCALL = defineConstants(H, {
  __HYPERVISOR_set_trap_table: 0,
  __HYPERVISOR_mmu_update: 1,
  __HYPERVISOR_set_gdt: 2,
  __HYPERVISOR_stack_switch: 3,
  __HYPERVISOR_set_callbacks: 4,
  __HYPERVISOR_fpu_taskswitch: 5,
  __HYPERVISOR_sched_op_compat: 6,
  __HYPERVISOR_platform_op: 7,
  __HYPERVISOR_set_debugreg: 8,
  __HYPERVISOR_get_debugreg: 9,
  __HYPERVISOR_update_descriptor: 10,
  __HYPERVISOR_memory_op: 12,
  __HYPERVISOR_multicall: 13,
  __HYPERVISOR_update_va_mapping: 14,
  __HYPERVISOR_set_timer_op: 15,
  __HYPERVISOR_event_channel_op_compat: 16,
  __HYPERVISOR_xen_version: 17,
  __HYPERVISOR_console_io: 18,
  __HYPERVISOR_physdev_op_compat: 19,
  __HYPERVISOR_grant_table_op: 20,
  __HYPERVISOR_vm_assist: 21,
  __HYPERVISOR_update_va_mapping_otherdomain: 22,
  __HYPERVISOR_iret: 23,
  __HYPERVISOR_vcpu_op: 24,
  __HYPERVISOR_set_segment_base: 25,
  __HYPERVISOR_mmuext_op: 26,
  __HYPERVISOR_xsm_op: 27,
  __HYPERVISOR_nmi_op: 28,
  __HYPERVISOR_sched_op: 29,
  __HYPERVISOR_callback_op: 30,
  __HYPERVISOR_xenoprof_op: 31,
  __HYPERVISOR_event_channel_op: 32,
  __HYPERVISOR_physdev_op: 33,
  __HYPERVISOR_hvm_op: 34,
  __HYPERVISOR_sysctl: 35,
  __HYPERVISOR_domctl: 36,
  __HYPERVISOR_kexec_op: 37,
  __HYPERVISOR_argo_op: 39,
  __HYPERVISOR_xenpmu_op: 40,
  __HYPERVISOR_dm_op: 41,
  __HYPERVISOR_hypfs_op: 42,
});

export const XEN_H = defineConstants(H, {
  XEN_LEGACY_MAX_VCPUS: 32, // arch-x86/xen.h: vcpu_info slots inside shared_info
  XEN_PVCLOCK_TSC_STABLE_BIT: 1 << 0,
  XEN_PVCLOCK_GUEST_STOPPED: 1 << 1,
});
export const { XEN_LEGACY_MAX_VCPUS } = XEN_H;

/*
 * struct vcpu_time_info {                     sizeof = 32 on both ABIs
 *     uint32_t version;            @0   odd while Xen updates the record: readers retry
 *     uint32_t pad0;               @4
 *     uint64_t tsc_timestamp;      @8
 *     uint64_t system_time;        @16  ns since boot
 *     uint32_t tsc_to_system_mul;  @24
 *     int8_t   tsc_shift;          @28
 *     uint8_t  flags;              @29  XEN_PVCLOCK_*
 *     uint8_t  pad1[2];            @30
 * };
 */
export const VCPU_TIME_INFO = defineStruct(H, 'vcpu_time_info', {
  size: 32,
  fields: {
    version: 0,
    pad0: 4,
    tsc_timestamp: 8,
    system_time: 16,
    tsc_to_system_mul: 24,
    tsc_shift: 28,
    flags: 29,
    pad1: 30,
  },
});

/*
 * struct arch_vcpu_info {                     (arch-x86/xen-x86_64.h, xen-x86_32.h)
 *     unsigned long cr2;           @0
 *     unsigned long pad;           @8     x86_32: unsigned long pad[5] @4
 * };                               sizeof: x86_64 16, x86_32 24 (keeps vcpu_info at 64)
 */
export const ARCH_VCPU_INFO = defineStruct(
  'xen/arch-x86/xen.h',
  'arch_vcpu_info',
  { size: 16, fields: { cr2: 0, pad: 8 } },
  { size: 24, fields: { cr2: 0, pad: 4 } },
);

/*
 * struct vcpu_info {                          sizeof = 64 on both ABIs
 *     uint8_t evtchn_upcall_pending;  @0  set by Xen when an event is pending; cleared by the
 *                                         guest /before/ it scans, so no wake-up is lost
 *     uint8_t evtchn_upcall_mask;     @1  set by the guest to hold off upcalls
 *     xen_ulong_t evtchn_pending_sel; @8  (x86_32 @4) which words of evtchn_pending to scan
 *     struct arch_vcpu_info arch;     @16 (x86_32 @8)
 *     vcpu_time_info_t time;          @32
 * };
 */
export const VCPU_INFO = defineStruct(
  H,
  'vcpu_info',
  {
    size: 64,
    fields: { evtchn_upcall_pending: 0, evtchn_upcall_mask: 1, evtchn_pending_sel: 8, arch: 16, time: 32 },
  },
  {
    size: 64,
    fields: { evtchn_upcall_pending: 0, evtchn_upcall_mask: 1, evtchn_pending_sel: 4, arch: 8, time: 32 },
  },
);

/*
 * struct arch_shared_info {                   (arch-x86/xen.h)
 *     unsigned long max_pfn;                      @0
 *     xen_pfn_t     pfn_to_mfn_frame_list_list;   @8   (x86_32 @4)
 *     unsigned long nmi_reason;                   @16  (x86_32 @8)
 *     unsigned long p2m_cr3;                      @24  (x86_32 @12)
 *     unsigned long p2m_vaddr;                    @32  (x86_32 @16)
 *     unsigned long p2m_generation;               @40  (x86_32 @20)
 *     uint32_t wc_sec_hi;                         x86_32 only, @24
 * };                                              sizeof: x86_64 48, x86_32 28
 */
export const ARCH_SHARED_INFO = defineStruct(
  'xen/arch-x86/xen.h',
  'arch_shared_info',
  {
    size: 48,
    fields: {
      max_pfn: 0,
      pfn_to_mfn_frame_list_list: 8,
      nmi_reason: 16,
      p2m_cr3: 24,
      p2m_vaddr: 32,
      p2m_generation: 40,
    },
  },
  {
    size: 28,
    fields: {
      max_pfn: 0,
      pfn_to_mfn_frame_list_list: 4,
      nmi_reason: 8,
      p2m_cr3: 12,
      p2m_vaddr: 16,
      p2m_generation: 20,
      wc_sec_hi: 24,
    },
  },
);

/*
 * struct shared_info {                        one page per domain, x86_64 sizeof = 3136
 *     struct vcpu_info vcpu_info[XEN_LEGACY_MAX_VCPUS];       @0, 64 bytes each
 *     xen_ulong_t evtchn_pending[sizeof(xen_ulong_t) * 8];    @2048  64 words of 64 bits: one
 *                                                              bit per port, set by Xen,
 *                                                              cleared by the guest
 *     xen_ulong_t evtchn_mask[sizeof(xen_ulong_t) * 8];       @2560  (x86_32 @2176) set/cleared
 *                                                              by the guest only
 *     uint32_t wc_version;                                    @3072  (x86_32 @2304)
 *     uint32_t wc_sec;                                        @3076
 *     uint32_t wc_nsec;                                       @3080
 *     uint32_t wc_sec_hi;                                     @3084  x86_64 only
 *     struct arch_shared_info arch;                           @3088  (x86_32 @2316)
 * };
 */
export const SHARED_INFO = defineStruct(
  H,
  'shared_info',
  {
    size: 3136,
    fields: {
      vcpu_info: 0,
      evtchn_pending: 2048,
      evtchn_mask: 2560,
      wc_version: 3072,
      wc_sec: 3076,
      wc_nsec: 3080,
      wc_sec_hi: 3084,
      arch: 3088,
    },
  },
  {
    size: 2344,
    fields: {
      vcpu_info: 0,
      evtchn_pending: 2048,
      evtchn_mask: 2176,
      wc_version: 2304,
      wc_sec: 2308,
      wc_nsec: 2312,
      arch: 2316,
    },
  },
);

/** Bits per `xen_ulong_t` word of the 2-level bitmaps on x86_64. */
export const EVTCHN_WORD_BITS_X86_64 = 64;
