/**
 * Test helper (hypervisor.test.ts): a dom0 "backend" thread that maps a guest's grant and
 * binds to its port (and maybe takes a reference on it), then dies without disposing anything,
 * as a crashed backend would.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DomId, EvtchnPort, GrantRef } from '../../base/index.js';
import { SimPlatform, type PlatformHandle } from './platform.js';

interface Job {
  readonly handle: PlatformHandle;
  readonly guest: number;
  readonly ref: number;
  readonly port: number;
  /** Die inside a hypercall's domain reference (between DomainTable.enter and exit), as a thread terminated mid-copy does. */
  readonly holdRef?: boolean;
}

const job = workerData as Job;
const p = SimPlatform.attach(job.handle);
// ref / port -1: nothing to map or bind.
if (job.ref >= 0) p.grants.map(job.guest as DomId, [job.ref as GrantRef], true);
if (job.port >= 0) p.events.bindInterdomain(job.guest as DomId, job.port as EvtchnPort, () => {});
if (job.holdRef === true) p.table.enter(job.guest);
parentPort?.postMessage('mapped');
process.exit(1);
