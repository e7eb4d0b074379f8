/**
 * blkfront's side of the handshake as plain functions over a store client (Linux
 * `talk_to_blkback`, `blkfront_connect`): what to ask for given the backend's limits, the
 * keys to publish, and the device properties to read. Backend keys are peer input: every one
 * is parsed strictly and bounded (xenbus/keys.ts throws EPROTO on garbage).
 */
import { VDISK_CDROM, VDISK_READONLY, VDISK_REMOVABLE } from '../../abi/io/blkif.js';
import { XEN_IO_PROTO_ABI_X86_32, XEN_IO_PROTO_ABI_X86_64 } from '../../abi/io/protocols.js';
import { XenpvError } from '../../base/index.js';
import { readBool, readUint } from '../../xenbus/keys.js';
import type { XsClient } from '../../xenstore/client/index.js';
import type { BlkFrontOptions, BlkInfo } from './front-api.js';
import type { FrontQueue, QueueFeatures } from './front-queue.js';
import { FRONT_DEFAULTS, MAX_INDIRECT_SEGMENTS_CEILING, MAX_QUEUES_CEILING, MAX_RING_PAGE_ORDER, queueDir, ringRefKeys } from './protocol.js';

/** On backend InitWait: the transport to set up, within both ends' limits. */
export async function negotiate(
  c: XsClient,
  be: string,
  fe: string,
  o: BlkFrontOptions,
): Promise<{ features: QueueFeatures; nq: number }> {
  const maxOrder = await readUint(c, be, 'max-ring-page-order', { max: 64, default: 0 });
  const maxQ = await readUint(c, be, 'multi-queue-max-queues', { min: 1, max: 0xffffffff, default: 1 });
  const maxInd = await readUint(c, be, 'feature-max-indirect-segments', { max: 0xffffffff, default: 0 });
  const bePersistent = await readBool(c, be, 'feature-persistent');
  const trusted = await readBool(c, fe, 'trusted', true);
  const order = Math.min(maxOrder, o.maxRingPageOrder ?? FRONT_DEFAULTS.maxRingPageOrder, MAX_RING_PAGE_ORDER);
  const nq = Math.max(1, Math.min(maxQ, o.maxQueues ?? FRONT_DEFAULTS.maxQueues, MAX_QUEUES_CEILING));
  const ind = Math.min(maxInd, o.maxIndirectSegments ?? FRONT_DEFAULTS.maxIndirectSegments, MAX_INDIRECT_SEGMENTS_CEILING);
  const persistent = (o.persistent ?? FRONT_DEFAULTS.persistent) && bePersistent;
  // Indirect requests only pay off beyond the 11 segments a direct request carries.
  return { features: { abi: o.abi ?? 'x86_64', order, persistent, indirectSegments: ind > 11 ? ind : 0, trusted }, nq };
}

const RING_KEYS = /^(ring-ref[0-9]*|event-channel|queue-[0-9]+|ring-page-order|num-ring-pages|multi-queue-num-queues)$/;

/**
 * Publish the rings in one transaction: `ring-ref`/`ring-ref%u` and `event-channel` per queue
 * (under `queue-N/` with several), `ring-page-order`, `multi-queue-num-queues`, `protocol`,
 * `feature-persistent`. Keys of an earlier connection are removed in the same transaction.
 */
export async function publishRings(c: XsClient, fp: string, queues: readonly FrontQueue[], f: QueueFeatures, offerPersistent: boolean): Promise<void> {
  await c.withTransaction(async (tx) => {
    for (const name of await tx.directory(fp)) if (RING_KEYS.test(name)) await tx.rm(`${fp}/${name}`);
    for (const q of queues) {
      const dir = queueDir(fp, q.index, queues.length);
      const keys = ringRefKeys(f.order);
      for (let i = 0; i < keys.length; i++) await tx.write(`${dir}/${keys[i]}`, String(q.ringRefs[i]));
      await tx.write(`${dir}/event-channel`, String(q.port));
    }
    if (f.order > 0) await tx.write(`${fp}/ring-page-order`, String(f.order));
    if (queues.length > 1) await tx.write(`${fp}/multi-queue-num-queues`, String(queues.length));
    await tx.write(`${fp}/protocol`, f.abi === 'x86_32' ? XEN_IO_PROTO_ABI_X86_32 : XEN_IO_PROTO_ABI_X86_64);
    await tx.write(`${fp}/feature-persistent`, offerPersistent ? '1' : '0');
  });
}

/** On backend Connected: the device properties and features. */
export async function readDevice(c: XsClient, be: string, f: QueueFeatures, queues: number): Promise<BlkInfo> {
  const sectors = await readUint(c, be, 'sectors');
  // Bounce pages are 4 KiB: a logical block larger than a page is refused.
  const sectorSize = await readUint(c, be, 'sector-size', { min: 512, max: 4096, default: 512 });
  if ((sectorSize & (sectorSize - 1)) !== 0) throw new XenpvError('EPROTO', `sector-size ${sectorSize} is not a power of 2`);
  const physical = await readUint(c, be, 'physical-sector-size', { min: sectorSize, max: 1 << 20, default: sectorSize });
  const vdisk = await readUint(c, be, 'info', { max: 0xffffffff, default: 0 });
  const discard = await readBool(c, be, 'feature-discard');
  return {
    sectors,
    sectorSize,
    physicalSectorSize: physical,
    readOnly: (vdisk & VDISK_READONLY) !== 0,
    cdrom: (vdisk & VDISK_CDROM) !== 0,
    removable: (vdisk & VDISK_REMOVABLE) !== 0,
    features: {
      flush: await readBool(c, be, 'feature-flush-cache'),
      barrier: await readBool(c, be, 'feature-barrier'),
      discard,
      discardSecure: discard && (await readBool(c, be, 'discard-secure')),
      discardGranularity: discard ? await readUint(c, be, 'discard-granularity', { min: 1, max: 1 << 30, default: sectorSize }) : 0,
      discardAlignment: discard ? await readUint(c, be, 'discard-alignment', { max: 1 << 30, default: 0 }) : 0,
      persistent: f.persistent && (await readBool(c, be, 'feature-persistent')),
      indirectSegments: f.indirectSegments,
      queues,
      ringPages: 1 << f.order,
      protocol: f.abi,
      trusted: f.trusted,
    },
  };
}
