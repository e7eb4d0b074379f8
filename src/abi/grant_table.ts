/**
 * `xen/grant_table.h`: grant table v1 entries, flags, operations and status codes.
 *
 * A domain shares a page by writing a grant entry (flags, domid, frame) in its own table; the
 * grantee names it by (domid, grant ref) to map or copy it. Xen (here: the hypervisor model)
 * sets GTF_reading/GTF_writing while a mapping is live.
 */
import { defineConstants, defineStruct } from './layout.js';

const H = 'xen/grant_table.h';

/*
 * struct grant_entry_v1 {                     sizeof = 8, same on every ABI; 512 per 4 KiB page
 *     uint16_t flags;     @0  GTF_*; type and subflags set by the granting guest, GTF_reading/
 *                             GTF_writing set by Xen
 *     domid_t  domid;     @2  the domain allowed to map/copy (or to transfer into this entry)
 *     uint32_t frame;     @4  the granted frame
 * };
 */
export const GRANT_ENTRY_V1 = defineStruct(H, 'grant_entry_v1', {
  size: 8,
  fields: { flags: 0, domid: 2, frame: 4 },
});

/*
 * union grant_entry_v2 {                      sizeof = 16
 *     grant_entry_header_t hdr;                                          @0 (flags @0, domid @2)
 *     struct { hdr; uint32_t pad0; uint64_t frame; } full_page;          frame @8
 *     struct { hdr; uint16_t page_off; uint16_t length; uint64_t frame; } sub_page;  @4, @6, @8
 *     struct { hdr; domid_t trans_domid; uint16_t pad0; grant_ref_t gref; } transitive; @4, @8
 *     uint32_t __spacer[4];
 * };
 * v2 is described for completeness; xenpv implements v1.
 */
export const GRANT_ENTRY_V2 = defineStruct(
  H,
  'grant_entry_v2',
  {
    size: 16,
    fields: {
      'hdr.flags': 0,
      'hdr.domid': 2,
      'full_page.frame': 8,
      'sub_page.page_off': 4,
      'sub_page.length': 6,
      'sub_page.frame': 8,
      'transitive.trans_domid': 4,
      'transitive.gref': 8,
    },
  },
  undefined,
  'union grant_entry_v2',
);

export const GNTTAB_RESERVED = defineConstants(H, {
  GNTTAB_NR_RESERVED_ENTRIES: 8,
  /** The console ring page, pre-granted to the console backend by the domain builder. */
  GNTTAB_RESERVED_CONSOLE: 0,
  /** The xenstore ring page, pre-granted to xenstored by the domain builder. */
  GNTTAB_RESERVED_XENSTORE: 1,
});
export const { GNTTAB_NR_RESERVED_ENTRIES, GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE } =
  GNTTAB_RESERVED;

/** Grant entry flags (`GTF_*`): the low two bits are the entry type. */
export const GTF = defineConstants(H, {
  GTF_invalid: 0,
  GTF_permit_access: 1,
  GTF_accept_transfer: 2,
  GTF_transitive: 3,
  GTF_type_mask: 3,
  _GTF_readonly: 2,
  GTF_readonly: 1 << 2, // set by the guest: the grantee may only read
  _GTF_reading: 3,
  GTF_reading: 1 << 3, // set by Xen while the grantee has it mapped/copied for reading
  _GTF_writing: 4,
  GTF_writing: 1 << 4, // set by Xen while the grantee has it mapped/copied for writing
  _GTF_PWT: 5,
  GTF_PWT: 1 << 5,
  _GTF_PCD: 6,
  GTF_PCD: 1 << 6,
  _GTF_PAT: 7,
  GTF_PAT: 1 << 7,
  _GTF_sub_page: 8,
  GTF_sub_page: 1 << 8,
  _GTF_transfer_committed: 2,
  GTF_transfer_committed: 1 << 2,
  _GTF_transfer_completed: 3,
  GTF_transfer_completed: 1 << 3,
});
export const {
  GTF_invalid,
  GTF_permit_access,
  GTF_accept_transfer,
  GTF_transitive,
  GTF_type_mask,
  GTF_readonly,
  GTF_reading,
  GTF_writing,
  GTF_sub_page,
} = GTF;

/** `GNTTABOP_*`: the grant table hypercall's sub-operations. ABI values, never renumber. */
export const GNTTABOP = defineConstants(H, {
  GNTTABOP_map_grant_ref: 0,
  GNTTABOP_unmap_grant_ref: 1,
  GNTTABOP_setup_table: 2,
  GNTTABOP_dump_table: 3,
  GNTTABOP_transfer: 4,
  GNTTABOP_copy: 5,
  GNTTABOP_query_size: 6,
  GNTTABOP_unmap_and_replace: 7,
  GNTTABOP_set_version: 8,
  GNTTABOP_get_status_frames: 9,
  GNTTABOP_get_version: 10,
  GNTTABOP_swap_grant_ref: 11,
  GNTTABOP_cache_flush: 12,
});

/** `GNTMAP_*`: flags of `gnttab_map_grant_ref.flags`. */
export const GNTMAP = defineConstants(H, {
  _GNTMAP_device_map: 0,
  GNTMAP_device_map: 1 << 0,
  _GNTMAP_host_map: 1,
  GNTMAP_host_map: 1 << 1,
  _GNTMAP_readonly: 2,
  GNTMAP_readonly: 1 << 2,
  _GNTMAP_application_map: 3,
  GNTMAP_application_map: 1 << 3,
  _GNTMAP_contains_pte: 4,
  GNTMAP_contains_pte: 1 << 4,
  _GNTMAP_guest_avail0: 16,
});
export const { GNTMAP_device_map, GNTMAP_host_map, GNTMAP_readonly } = GNTMAP;

/** `GNTCOPY_*`: flags of `gnttab_copy.flags`: which side is named by grant ref. */
export const GNTCOPY = defineConstants(H, {
  _GNTCOPY_source_gref: 0,
  GNTCOPY_source_gref: 1 << 0,
  _GNTCOPY_dest_gref: 1,
  GNTCOPY_dest_gref: 1 << 1,
});
export const { GNTCOPY_source_gref, GNTCOPY_dest_gref } = GNTCOPY;

/** `GNTST_*`: per-operation status codes (`enum grant_status`). */
export const GNTST = defineConstants(H, {
  GNTST_okay: 0,
  GNTST_general_error: -1,
  GNTST_bad_domain: -2,
  GNTST_bad_gntref: -3,
  GNTST_bad_handle: -4,
  GNTST_bad_virt_addr: -5,
  GNTST_bad_dev_addr: -6,
  GNTST_no_device_space: -7,
  GNTST_permission_denied: -8,
  GNTST_bad_page: -9,
  GNTST_bad_copy_arg: -10,
  GNTST_address_too_big: -11,
  GNTST_eagain: -12,
  GNTST_no_space: -13,
});
export const {
  GNTST_okay,
  GNTST_general_error,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_handle,
  GNTST_bad_virt_addr,
  GNTST_bad_dev_addr,
  GNTST_no_device_space,
  GNTST_permission_denied,
  GNTST_bad_page,
  GNTST_bad_copy_arg,
  GNTST_address_too_big,
  GNTST_eagain,
  GNTST_no_space,
} = GNTST;
export type GntSt = (typeof GNTST)[keyof typeof GNTST];

/**
 * `GNTTABOP_error_msgs`: the message for status `-i` is entry `i`, in header order.
 */
export const GNTTABOP_error_msgs: readonly string[] = [
  'okay',
  'undefined error',
  'unrecognised domain id',
  'invalid grant reference',
  'invalid mapping handle',
  'invalid virtual address',
  'invalid device address',
  'no spare translation slot in the I/O MMU',
  'permission denied',
  'bad page',
  'copy arguments cross page boundary',
  'page address size too large',
  'operation not done; try again',
  'out of space',
];

const gntstNames = new Map<number, string>(Object.entries(GNTST).map(([k, v]) => [v, k]));

/** The C macro name of a status (`GNTST_bad_gntref`), or `GNTST_<n>` if unknown. */
export function gntstName(status: number): string {
  return gntstNames.get(status) ?? `GNTST_${status}`;
}

/** Xen's message for a status, as `GNTTABOP_error_msgs` gives it. */
export function gntstMessage(status: number): string {
  return GNTTABOP_error_msgs[-status] ?? `unknown grant status ${status}`;
}

/*
 * struct gnttab_map_grant_ref {               sizeof = 32 on both ABIs
 *     uint64_t host_addr;      @0   IN
 *     uint32_t flags;          @8   IN  GNTMAP_*
 *     grant_ref_t ref;         @12  IN
 *     domid_t  dom;            @16  IN  the granting domain
 *     int16_t  status;         @18  OUT GNTST_*
 *     grant_handle_t handle;   @20  OUT
 *     uint64_t dev_bus_addr;   @24  OUT
 * };
 */
export const GNTTAB_MAP_GRANT_REF = defineStruct(H, 'gnttab_map_grant_ref', {
  size: 32,
  fields: { host_addr: 0, flags: 8, ref: 12, dom: 16, status: 18, handle: 20, dev_bus_addr: 24 },
});

/*
 * struct gnttab_unmap_grant_ref {             sizeof = 24 on both ABIs
 *     uint64_t host_addr;      @0   IN
 *     uint64_t dev_bus_addr;   @8   IN
 *     grant_handle_t handle;   @16  IN
 *     int16_t  status;         @20  OUT GNTST_*
 * };
 */
export const GNTTAB_UNMAP_GRANT_REF = defineStruct(H, 'gnttab_unmap_grant_ref', {
  size: 24,
  fields: { host_addr: 0, dev_bus_addr: 8, handle: 16, status: 20 },
});

/*
 * struct gnttab_copy {
 *     struct gnttab_copy_ptr {
 *         union { grant_ref_t ref; xen_pfn_t gmfn; } u;   xen_pfn_t is unsigned long:
 *         domid_t  domid;                                  8 bytes on x86_64, 4 on x86_32
 *         uint16_t offset;
 *     } source, dest;          x86_64: @0, @16   x86_32: @0, @8
 *     uint16_t len;            x86_64: @32       x86_32: @16
 *     uint16_t flags;          GNTCOPY_*
 *     int16_t  status;         OUT GNTST_*
 * };                           sizeof: x86_64 40, x86_32 24
 */
export const GNTTAB_COPY = defineStruct(
  H,
  'gnttab_copy',
  {
    size: 40,
    fields: {
      'source.u.ref': 0, 'source.u.gmfn': 0, 'source.domid': 8, 'source.offset': 10,
      'dest.u.ref': 16, 'dest.u.gmfn': 16, 'dest.domid': 24, 'dest.offset': 26,
      len: 32, flags: 34, status: 36,
    },
  },
  {
    size: 24,
    fields: {
      'source.u.ref': 0, 'source.u.gmfn': 0, 'source.domid': 4, 'source.offset': 6,
      'dest.u.ref': 8, 'dest.u.gmfn': 8, 'dest.domid': 12, 'dest.offset': 14,
      len: 16, flags: 18, status: 20,
    },
  },
);

/*
 * struct gnttab_setup_table {
 *     domid_t  dom;                               @0  IN
 *     uint32_t nr_frames;                         @4  IN
 *     int16_t  status;                            @8  OUT
 *     XEN_GUEST_HANDLE(xen_pfn_t) frame_list;     @16 on x86_64 (a pointer: 8-aligned), @12 on x86_32
 * };
 */
export const GNTTAB_SETUP_TABLE = defineStruct(
  H,
  'gnttab_setup_table',
  { size: 24, fields: { dom: 0, nr_frames: 4, status: 8, frame_list: 16 } },
  { size: 16, fields: { dom: 0, nr_frames: 4, status: 8, frame_list: 12 } },
);

/*
 * struct gnttab_query_size {                  sizeof = 16
 *     domid_t  dom;             @0  IN
 *     uint32_t nr_frames;       @4  OUT
 *     uint32_t max_nr_frames;   @8  OUT
 *     int16_t  status;          @12 OUT
 * };
 */
export const GNTTAB_QUERY_SIZE = defineStruct(H, 'gnttab_query_size', {
  size: 16,
  fields: { dom: 0, nr_frames: 4, max_nr_frames: 8, status: 12 },
});

/* struct gnttab_set_version { uint32_t version; };  @0, sizeof = 4 */
export const GNTTAB_SET_VERSION = defineStruct(H, 'gnttab_set_version', {
  size: 4,
  fields: { version: 0 },
});

/* struct gnttab_get_version { domid_t dom; uint16_t pad; uint32_t version; };  @0 @2 @4, sizeof = 8 */
export const GNTTAB_GET_VERSION = defineStruct(H, 'gnttab_get_version', {
  size: 8,
  fields: { dom: 0, pad: 2, version: 4 },
});

export interface GrantEntryV1 {
  readonly flags: number;
  readonly domid: number;
  readonly frame: number;
}

/** Read one v1 entry (entry `ref` of a table that starts at byte `offset` of `view`). */
export function decodeGrantEntryV1(view: DataView, offset: number, ref: number): GrantEntryV1 {
  const at = offset + ref * GRANT_ENTRY_V1.layouts.x86_64.size;
  const f = GRANT_ENTRY_V1.layouts.x86_64.fields;
  return {
    flags: view.getUint16(at + f.flags, true),
    domid: view.getUint16(at + f.domid, true),
    frame: view.getUint32(at + f.frame, true),
  };
}

/**
 * Write one v1 entry. Xen's rule for the granting guest: write domid and frame first, and the
 * flags (which make the entry valid) last, after a write barrier; callers that share the table
 * with another thread store the flags themselves with `Atomics` after this.
 */
export function encodeGrantEntryV1(view: DataView, offset: number, ref: number, e: GrantEntryV1): void {
  const at = offset + ref * GRANT_ENTRY_V1.layouts.x86_64.size;
  const f = GRANT_ENTRY_V1.layouts.x86_64.fields;
  view.setUint16(at + f.domid, e.domid, true);
  view.setUint32(at + f.frame, e.frame, true);
  view.setUint16(at + f.flags, e.flags, true);
}
