/**
 * Vocabulary of xl.cfg(5) that domain-config.ts needs: shutdown actions, domain types, the
 * keys xenpv reads, and the xl keys it knows but does not implement (those get a warning
 * that says so, rather than the "unknown key" warning a typo gets).
 */

/** libxl_action_on_shutdown, by the names xl.cfg uses. */
export const SHUTDOWN_ACTIONS = [
  'destroy', 'restart', 'rename-restart', 'preserve', 'coredump-destroy', 'coredump-restart', 'soft-reset',
] as const;
export type ShutdownAction = (typeof SHUTDOWN_ACTIONS)[number];

export const DOMAIN_TYPES = ['pv', 'pvh', 'hvm'] as const;
export type DomainType = (typeof DOMAIN_TYPES)[number];

/** Each `on_*` key, the field it fills and xl's default (xl_parse.c). */
export const SHUTDOWN_KEYS = [
  { key: 'on_poweroff', field: 'onPoweroff', fallback: 'destroy' },
  { key: 'on_reboot', field: 'onReboot', fallback: 'restart' },
  { key: 'on_watchdog', field: 'onWatchdog', fallback: 'destroy' },
  { key: 'on_crash', field: 'onCrash', fallback: 'destroy' },
  { key: 'on_soft_reset', field: 'onSoftReset', fallback: 'soft-reset' },
] as const;
export type ShutdownField = (typeof SHUTDOWN_KEYS)[number]['field'];

/** Keys domain-config.ts interprets. */
export const HANDLED_KEYS: ReadonlySet<string> = new Set([
  'name', 'type', 'builder', 'uuid', 'memory', 'maxmem', 'vcpus', 'maxvcpus', 'cpus',
  'kernel', 'ramdisk', 'cmdline', 'root', 'extra', 'disk', 'vif',
  'on_poweroff', 'on_reboot', 'on_watchdog', 'on_crash', 'on_soft_reset',
  'xen_platform_pci', 'serial', 'max_grant_frames', 'max_event_channels',
]);

/** xl.cfg(5) keys that exist in xl but have no effect here. */
export const UNSUPPORTED_KEYS: ReadonlySet<string> = new Set([
  // devices xenpv does not provide
  'vfb', 'vkb', 'pci', 'dtdev', 'usbctrl', 'usbdev', 'vtpm', 'p9', 'pvcalls', 'vdispl', 'vsnd',
  'channel', 'vscsi', 'vuart', 'usb', 'usbdevice', 'soundhw', 'vga', 'stdvga', 'videoram',
  'vnc', 'vnclisten', 'vncdisplay', 'vncunused', 'vncpasswd', 'keymap', 'sdl', 'opengl', 'spice',
  // scheduling, placement, memory and CPU tuning
  'cpus_soft', 'cpu_weight', 'cap', 'period', 'slice', 'latency', 'extratime', 'pool',
  'vnuma', 'shadow_memory', 'max_maptrack_frames', 'claim_mode', 'cpuid', 'nestedhvm', 'hap',
  'oos', 'tsc_mode', 'timer_mode', 'hpet', 'acpi', 'acpi_s3', 'acpi_s4', 'apic', 'pae', 'nx',
  'viridian', 'localtime', 'rtc_timeoffset', 'altp2m', 'mca_caps', 'e820_host',
  // boot and device model
  'bootloader', 'bootloader_args', 'boot', 'firmware', 'bios', 'device_tree', 'hdtype',
  'device_model_version', 'device_model_override', 'device_model_args', 'device_model_stubdomain_override',
  'device_model_user', 'pvshim', 'pvshim_path', 'pvshim_cmdline', 'pvshim_extra', 'init_seclabel',
  'seclabel', 'driver_domain', 'nomigrate', 'passthrough', 'gfx_passthru', 'ioports', 'irqs', 'iomem',
]);
