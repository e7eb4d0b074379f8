/**
 * Test support for the hostile-frontend tests: a backend serving a raw (hand-driven) frontend,
 * and the request builder they share. Kept apart from test-support.ts so that only the tests
 * that drive the ring by hand load the raw frontend.
 */
import type { BlkifRequestOut } from '../../abi/io/blkif-codec.js';
import type { BlkBack, BlkBackOptions } from './back.js';
import type { GrantedPage } from './front-grants.js';
import { RawFront } from './raw-front.js';
import { MemoryStorage } from './storage/memory.js';
import type { BlockStorage } from './storage/types.js';
import { until, type BlkEnv } from './test-support.js';

/** A one-segment READ (0) or WRITE (1) of sectors first..last of the granted page. */
export const rw = (operation: 0 | 1, id: bigint, sector: number, gref: number, first = 0, last = 7): BlkifRequestOut => ({
  kind: 'rw', operation, nr_segments: 1, handle: 0, id, sector_number: BigInt(sector), seg: [{ gref, first_sect: first, last_sect: last }],
});

export async function backState(env: BlkEnv): Promise<string> {
  return env.xs0.readString(`${env.backPath}/state`);
}

export interface RawConnectOptions {
  readonly mode?: 'r' | 'w';
  readonly dataPath?: BlkBackOptions['dataPath'];
  readonly persistent?: boolean;
}

/** Backend up, raw frontend connected (backend in Connected); returns both. */
export async function connectRaw(env: BlkEnv, storage: BlockStorage = new MemoryStorage(64), opts: RawConnectOptions = {}): Promise<{ back: BlkBack; raw: RawFront }> {
  await env.addVbd({ mode: opts.mode ?? 'w' });
  const back = env.newBack(storage, { persistent: opts.persistent ?? false, dataPath: opts.dataPath ?? 'map' });
  await back.start();
  const raw = new RawFront(env);
  await raw.connect();
  await until(async () => (await backState(env)) === '4', 3000, 'backend Connected');
  return { back, raw };
}

/** The frontend closes; the backend must close and unmap every grant. */
export async function finishRaw(env: BlkEnv, raw: RawFront): Promise<void> {
  await env.xsGuest.write(`${env.frontPath}/state`, '6');
  await until(async () => ['6', '5'].includes(await backState(env)), 3000, 'backend closes');
  await until(() => env.hv.dom0.grants.maptrack.live().length === 0, 3000, 'backend unmaps');
  await raw.dispose();
}

/**
 * An indirect WRITE of `n` whole pages at `sector` (id 9): data page i is filled with i + 1, the
 * indirect page lists them. Returns the request and the indirect page, for tests that rewrite
 * the page while the backend works.
 */
export function indirectWrite(raw: RawFront, n: number, sector: number): { req: BlkifRequestOut; indirect: GrantedPage } {
  const data = Array.from({ length: n }, (_, i) => raw.dataPage(false, i + 1));
  const indirect = raw.dataPage(false);
  const v = new DataView(indirect.bytes.buffer, indirect.bytes.byteOffset);
  data.forEach((p, i) => {
    v.setUint32(i * 8, p.ref, true);
    v.setUint8(i * 8 + 4, 0);
    v.setUint8(i * 8 + 5, 7);
  });
  const req: BlkifRequestOut = { kind: 'indirect', operation: 6, indirect_op: 1, nr_segments: n, id: 9n, sector_number: BigInt(sector), handle: 0, indirect_grefs: [indirect.ref, 0, 0, 0, 0, 0, 0, 0] };
  return { req, indirect };
}
