/**
 * The types of a disk spec and of the draft its scanner rules fill in, shared by
 * disk-spec.ts (the scanner) and disk-rules.ts (the rules) so neither imports the other.
 */
import { ConfigError, type Origin } from './config-error.js';

export const DISK_FORMATS = ['raw', 'qcow', 'qcow2', 'vhd', 'qed', 'empty'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];
export const DISK_BACKEND_TYPES = ['phy', 'tap', 'qdisk', 'standalone'] as const;
export type DiskBackendType = (typeof DISK_BACKEND_TYPES)[number];
export const DISK_SPECIFICATIONS = ['xen', 'virtio'] as const;
export type DiskSpecification = (typeof DISK_SPECIFICATIONS)[number];

/** String-valued keywords that may not be given twice with different non-empty values. */
export const DISK_STRING_KEYS = [
  'backend', 'script', 'colo-host', 'colo-export', 'active-disk', 'hidden-disk',
] as const;
export type DiskStringKey = (typeof DISK_STRING_KEYS)[number];

export interface DiskSpec {
  /** The image or device (`pdev_path`); undefined only for an empty removable drive. */
  readonly target?: string;
  readonly format: DiskFormat;
  readonly vdev: string;
  readonly readwrite: boolean;
  readonly devtype: 'disk' | 'cdrom';
  readonly removable: boolean;
  readonly backendtype?: DiskBackendType;
  readonly specification?: DiskSpecification;
  /** The rest: undefined means "libxl's default". */
  readonly strings: Readonly<Partial<Record<DiskStringKey, string>>>;
  readonly directIoSafe: boolean;
  readonly discard?: boolean;
  readonly trusted?: boolean;
  readonly colo?: boolean;
  readonly coloPort?: number;
  readonly grantUsage?: boolean;
}

/** What the scanner rules write into while a spec is read. */
export interface DiskDraft {
  target?: string;
  format?: DiskFormat;
  vdev?: string;
  readwrite: boolean;
  cdrom: boolean;
  backendtype?: DiskBackendType;
  specification?: DiskSpecification;
  strings: Partial<Record<DiskStringKey, string>>;
  directIoSafe: boolean;
  discard?: boolean;
  trusted?: boolean;
  colo?: boolean;
  coloPort?: number;
  grantUsage?: boolean;
  hadDeprecatedPrefix: boolean;
  accessSet: boolean;
}

/** One matched rule: where it starts in the spec and the text it consumed. */
export interface DiskMatch {
  readonly spec: string;
  readonly origin: Origin;
  readonly at: number;
  readonly text: string;
}

export function diskError(m: DiskMatch, reason: string, near: string = m.text): ConfigError {
  return ConfigError.within(m.origin, m.at, `disk spec: ${reason} near \`${near}' in \`${m.spec}'`);
}

