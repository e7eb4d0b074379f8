/**
 * The daemon's thread in `xenpv bench xenstore`: a `Xenstored` listening on a unix socket and
 * serving guest rings through dom0's event channels, alone on its event loop, as a real
 * xenstored is alone in its process. Nothing else of the benchmark runs here.
 *
 * The write rate limit (C xenstored's WRL, 200 writes/s per guest by default) is lifted:
 * it is a policy against hostile guests, and left on it would measure the limiter, not the
 * daemon. Every other limit keeps C xenstored's default.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SimPlatform } from '../../hv/sim/platform.js';
import { XsClient } from '../../xenstore/client/index.js';
import { connectInProcess, makeLimits, platformRingMapper, startXenstored } from '../../xenstore/server/index.js';
import { serve, type DaemonJob, type GuestStore, type Reply, type Request } from './messages.js';

const job = workerData as DaemonJob;
const dom0 = SimPlatform.attach({ hv: job.hv, domid: 0 });
dom0.events.startAsync();
const running = await startXenstored({
  socketPath: job.socketPath,
  ringMapper: platformRingMapper(dom0),
  limits: makeLimits({ writeRate: 1e9, writeBurst: 1e9 }),
});
const admin = new XsClient(connectInProcess(running.daemon, 0), { label: 'bench xenstored admin' });

/** What a toolstack does for a new guest: its home, owned by it, then INTRODUCE. */
async function introduce(guests: readonly GuestStore[]): Promise<void> {
  for (const g of guests) {
    const home = `/local/domain/${g.domid}`;
    await admin.mkdir(home);
    await admin.setPerms(home, [{ access: 'n', domid: g.domid }]);
    await admin.introduce(g.domid, g.gfn, g.port);
  }
}

async function handle(req: Request): Promise<Reply> {
  switch (req.kind) {
    case 'introduce':
      await introduce(req.guests);
      return { kind: 'ok' };
    case 'close':
      admin.close();
      await running.close();
      dom0.events.stopAsync();
      dom0.dispose();
      // Replies are posted after this returns; the port closes once they are out.
      setImmediate(() => parentPort!.close());
      return { kind: 'ok' };
    default:
      throw new Error(`daemon worker: unexpected request ${req.kind}`);
  }
}

serve(parentPort!, handle);
parentPort!.postMessage({ kind: 'ready' } satisfies Reply);
