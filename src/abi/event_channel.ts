/**
 * `xen/event_channel.h`: event channel operations, port status, and the op structs.
 *
 * Pairing pattern for split drivers: the frontend allocates an unbound port for the backend's
 * domain (`EVTCHNOP_alloc_unbound`), publishes it in xenstore, and the backend binds to it
 * (`EVTCHNOP_bind_interdomain`).
 */
import { defineConstants, defineStruct } from './layout.js';

const H = 'xen/event_channel.h';

/** `EVTCHNOP_*`: sub-operations of `HYPERVISOR_event_channel_op`. ABI values, never renumber. */
export const EVTCHNOP = defineConstants(H, {
  EVTCHNOP_bind_interdomain: 0,
  EVTCHNOP_bind_virq: 1,
  EVTCHNOP_bind_pirq: 2,
  EVTCHNOP_close: 3,
  EVTCHNOP_send: 4,
  EVTCHNOP_status: 5,
  EVTCHNOP_alloc_unbound: 6,
  EVTCHNOP_bind_ipi: 7,
  EVTCHNOP_bind_vcpu: 8,
  EVTCHNOP_unmask: 9,
  EVTCHNOP_reset: 10,
  EVTCHNOP_init_control: 11,
  EVTCHNOP_expand_array: 12,
  EVTCHNOP_set_priority: 13,
});
defineConstants(
  H,
  { EVTCHNOP_reset_cont: 14 },
  { unchecked: 'the header defines it only under __XEN__ (internal to the hypervisor)' },
);
export type EvtchnOp = (typeof EVTCHNOP)[keyof typeof EVTCHNOP];

/** `EVTCHNSTAT_*`: `evtchn_status.status`, what a port is bound to. */
export const EVTCHNSTAT = defineConstants(H, {
  EVTCHNSTAT_closed: 0,
  EVTCHNSTAT_unbound: 1,
  EVTCHNSTAT_interdomain: 2,
  EVTCHNSTAT_pirq: 3,
  EVTCHNSTAT_virq: 4,
  EVTCHNSTAT_ipi: 5,
});
export const {
  EVTCHNSTAT_closed,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_pirq,
  EVTCHNSTAT_virq,
  EVTCHNSTAT_ipi,
} = EVTCHNSTAT;
export type EvtchnStat = (typeof EVTCHNSTAT)[keyof typeof EVTCHNSTAT];

export const EVTCHN_MISC = defineConstants(H, {
  BIND_PIRQ__WILL_SHARE: 1,
  EVTCHN_FIFO_PRIORITY_MAX: 0,
  EVTCHN_FIFO_PRIORITY_DEFAULT: 7,
  EVTCHN_FIFO_PRIORITY_MIN: 15,
  EVTCHN_FIFO_MAX_QUEUES: 16,
  EVTCHN_FIFO_PENDING: 31,
  EVTCHN_FIFO_MASKED: 30,
  EVTCHN_FIFO_LINKED: 29,
  EVTCHN_FIFO_BUSY: 28,
  EVTCHN_FIFO_LINK_BITS: 17,
  EVTCHN_FIFO_LINK_MASK: (1 << 17) - 1,
  EVTCHN_FIFO_NR_CHANNELS: 1 << 17,
});

/**
 * `EVTCHN_2L_NR_CHANNELS = sizeof(xen_ulong_t) * sizeof(xen_ulong_t) * 64`: ports of the 2-level
 * ABI. 4096 on x86_64 (1024 on x86_32, where xen_ulong_t is 4 bytes); xenpv guests are x86_64.
 */
export const { EVTCHN_2L_NR_CHANNELS } = defineConstants(H, { EVTCHN_2L_NR_CHANNELS: 4096 }, { abi: 'x86_64' });

/* Every op struct below has the same layout on x86_64 and x86_32 (no pointers, no 64-bit fields
 * except where noted). evtchn_port_t is uint32_t, domid_t uint16_t. */

/* struct evtchn_alloc_unbound { domid_t dom, remote_dom; IN   evtchn_port_t port; OUT }; */
export const EVTCHN_ALLOC_UNBOUND = defineStruct(H, 'evtchn_alloc_unbound', {
  size: 8,
  fields: { dom: 0, remote_dom: 2, port: 4 },
});

/* struct evtchn_bind_interdomain { domid_t remote_dom; evtchn_port_t remote_port; IN
 *                                  evtchn_port_t local_port; OUT }; */
export const EVTCHN_BIND_INTERDOMAIN = defineStruct(H, 'evtchn_bind_interdomain', {
  size: 12,
  fields: { remote_dom: 0, remote_port: 4, local_port: 8 },
});

/* struct evtchn_bind_virq { uint32_t virq; uint32_t vcpu; IN   evtchn_port_t port; OUT }; */
export const EVTCHN_BIND_VIRQ = defineStruct(H, 'evtchn_bind_virq', {
  size: 12,
  fields: { virq: 0, vcpu: 4, port: 8 },
});

/* struct evtchn_bind_pirq { uint32_t pirq; uint32_t flags; IN   evtchn_port_t port; OUT }; */
export const EVTCHN_BIND_PIRQ = defineStruct(H, 'evtchn_bind_pirq', {
  size: 12,
  fields: { pirq: 0, flags: 4, port: 8 },
});

/* struct evtchn_bind_ipi { uint32_t vcpu; IN   evtchn_port_t port; OUT }; */
export const EVTCHN_BIND_IPI = defineStruct(H, 'evtchn_bind_ipi', { size: 8, fields: { vcpu: 0, port: 4 } });

/* struct evtchn_close { evtchn_port_t port; };  struct evtchn_send { evtchn_port_t port; };
 * struct evtchn_unmask { evtchn_port_t port; }; */
export const EVTCHN_CLOSE = defineStruct(H, 'evtchn_close', { size: 4, fields: { port: 0 } });
export const EVTCHN_SEND = defineStruct(H, 'evtchn_send', { size: 4, fields: { port: 0 } });
export const EVTCHN_UNMASK = defineStruct(H, 'evtchn_unmask', { size: 4, fields: { port: 0 } });

/*
 * struct evtchn_status {
 *     domid_t  dom;             @0  IN
 *     evtchn_port_t port;       @4  IN
 *     uint32_t status;          @8  OUT EVTCHNSTAT_*
 *     uint32_t vcpu;            @12 OUT
 *     union {
 *         struct { domid_t dom; } unbound;                       @16
 *         struct { domid_t dom; evtchn_port_t port; } interdomain; @16, @20
 *         uint32_t pirq;                                         @16
 *         uint32_t virq;                                         @16
 *     } u;
 * };                            sizeof = 24
 */
export const EVTCHN_STATUS = defineStruct(H, 'evtchn_status', {
  size: 24,
  fields: {
    dom: 0,
    port: 4,
    status: 8,
    vcpu: 12,
    'u.unbound.dom': 16,
    'u.interdomain.dom': 16,
    'u.interdomain.port': 20,
    'u.pirq': 16,
    'u.virq': 16,
  },
});

/* struct evtchn_bind_vcpu { evtchn_port_t port; uint32_t vcpu; }; */
export const EVTCHN_BIND_VCPU = defineStruct(H, 'evtchn_bind_vcpu', { size: 8, fields: { port: 0, vcpu: 4 } });

/* struct evtchn_reset { domid_t dom; }; */
export const EVTCHN_RESET = defineStruct(H, 'evtchn_reset', { size: 2, fields: { dom: 0 } });

/* struct evtchn_set_priority { evtchn_port_t port; uint32_t priority; }; */
export const EVTCHN_SET_PRIORITY = defineStruct(H, 'evtchn_set_priority', {
  size: 8,
  fields: { port: 0, priority: 4 },
});

/*
 * struct evtchn_init_control {   FIFO ABI
 *     uint64_t control_gfn;  @0   uint32_t offset;  @8   uint32_t vcpu;  @12
 *     uint8_t link_bits;     @16  OUT   uint8_t _pad[7];  @17
 * };                         sizeof = 24
 */
export const EVTCHN_INIT_CONTROL = defineStruct(H, 'evtchn_init_control', {
  size: 24,
  fields: { control_gfn: 0, offset: 8, vcpu: 12, link_bits: 16, _pad: 17 },
});

/* struct evtchn_expand_array { uint64_t array_gfn; }; */
export const EVTCHN_EXPAND_ARRAY = defineStruct(H, 'evtchn_expand_array', { size: 8, fields: { array_gfn: 0 } });

/* struct evtchn_op { uint32_t cmd; @0   union { ...the ops above but FIFO ones... } u; @4 }; sizeof = 28 */
export const EVTCHN_OP = defineStruct(H, 'evtchn_op', { size: 28, fields: { cmd: 0, u: 4 } });

const evtchnopNames = new Map<number, string>(Object.entries(EVTCHNOP).map(([k, v]) => [v, k]));

/** The C name of an `EVTCHNOP_*` number, or `EVTCHNOP_<n>` if unknown. */
export function evtchnopName(op: number): string {
  return evtchnopNames.get(op) ?? `EVTCHNOP_${op}`;
}
