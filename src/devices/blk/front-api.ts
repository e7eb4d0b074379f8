/**
 * The block frontend's public shapes (options, negotiated features, device properties,
 * states), apart from the class so the handshake and the API share them without a cycle.
 */
import type { AbiName } from '../../abi/layout.js';

export interface BlkFrontOptions {
  /** Queues to ask for (≤ backend's multi-queue-max-queues). Default 4. */
  readonly maxQueues?: number;
  /** Ring order to ask for (≤ backend's max-ring-page-order). Default 0 (Linux's default). */
  readonly maxRingPageOrder?: number;
  /** Indirect segments to use (≤ backend's). Default 32; 0 disables INDIRECT. */
  readonly maxIndirectSegments?: number;
  /** Offer feature-persistent. Default true. */
  readonly persistent?: boolean;
  /** Ring layout: 'x86_64' (native, default) or 'x86_32' (`protocol = x86_32-abi`). */
  readonly abi?: AbiName;
  /** When the backend closes, how long in-flight requests may still complete before teardown. */
  readonly closingDrainMs?: number;
  readonly log?: (msg: string) => void;
}

export interface BlkFeatures {
  readonly flush: boolean;
  readonly barrier: boolean;
  readonly discard: boolean;
  readonly discardSecure: boolean;
  /** Bytes. */
  readonly discardGranularity: number;
  readonly discardAlignment: number;
  readonly persistent: boolean;
  /** 0 = no indirect requests. */
  readonly indirectSegments: number;
  readonly queues: number;
  readonly ringPages: number;
  readonly protocol: AbiName;
  /**
   * False for `trusted = 0`: BlkBuffers are bounced instead of granted in place, and pooled
   * persistent pages are zeroed before every reuse, so the backend sees request payload only.
   */
  readonly trusted: boolean;
}

export interface BlkInfo {
  /** Size in 512-byte sectors. */
  readonly sectors: number;
  /** Logical block size in bytes: I/O offsets and lengths are multiples of it. */
  readonly sectorSize: number;
  readonly physicalSectorSize: number;
  readonly readOnly: boolean;
  readonly cdrom: boolean;
  readonly removable: boolean;
  readonly features: BlkFeatures;
}

export type BlkFrontState = 'init' | 'initialised' | 'connected' | 'closed' | 'broken' | 'gone';
