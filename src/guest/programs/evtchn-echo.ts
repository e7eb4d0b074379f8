/**
 * `builtin:evtchn-echo`, extra = `remote=<domid> port=<port>` to bind to a port the peer
 * allocated for us, or `adopt=<port>` to take a port the toolstack allocated for us. Every
 * event is answered with one notify on the same channel, until the domain is destroyed.
 */
import type { DomId, EvtchnPort } from '../../base/index.js';
import type { EvtchnBinding } from '../../hv/platform.js';
import type { GuestContext } from '../program.js';

function option(argv: readonly string[], key: string): number | undefined {
  const a = argv.find((x) => x.startsWith(`${key}=`));
  if (a === undefined) return undefined;
  const n = Number(a.slice(key.length + 1));
  if (!Number.isInteger(n) || n < 0) throw new Error(`evtchn-echo: bad ${a}`);
  return n;
}

export default async function evtchnEcho(ctx: GuestContext): Promise<void> {
  const adopt = option(ctx.argv, 'adopt');
  const remote = option(ctx.argv, 'remote');
  const port = option(ctx.argv, 'port');
  const ev = ctx.platform.events;
  let echoed = 0;
  const answer = (): void => {
    echoed++;
    b.notify();
  };
  let b: EvtchnBinding;
  if (adopt !== undefined) b = ev.adopt(adopt as EvtchnPort, answer);
  else if (remote !== undefined && port !== undefined) b = ev.bindInterdomain(remote as DomId, port as EvtchnPort, answer);
  else throw new Error('evtchn-echo: give adopt=<port> or remote=<domid> port=<port>');
  ctx.log(`evtchn-echo: port ${b.port} ready`);
  while (await ctx.running()) await ctx.sleep(1000);
  ctx.log(`evtchn-echo: ${echoed} events echoed`);
}
