/**
 * Test helper (hypervisor.test.ts): a dom0 "backend" thread that maps a guest's grant and
 * binds to its port, then dies without disposing anything, as a crashed backend would.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DomId, EvtchnPort, GrantRef } from '../../base/index.js';
import { SimPlatform, type PlatformHandle } from './platform.js';

interface Job {
  readonly handle: PlatformHandle;
  readonly guest: number;
  readonly ref: number;
  readonly port: number;
}

const job = workerData as Job;
const p = SimPlatform.attach(job.handle);
p.grants.map(job.guest as DomId, [job.ref as GrantRef], true);
p.events.bindInterdomain(job.guest as DomId, job.port as EvtchnPort, () => {});
parentPort?.postMessage('mapped');
process.exit(1);
