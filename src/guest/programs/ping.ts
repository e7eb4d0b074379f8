/**
 * `builtin:ping`, extra = `dst=<ip> [count=3] [interval=1000] [size=56] [timeout=10000]
 * [ip=<addr>/<prefix>] [vif=0] [adaptive=1]` (adaptive: iputils' -A, the next request as soon as a
 * reply arrives, one in flight): iputils-style lines on the console, then one JSON line
 * with the result (`{"ping": {...}}`).
 */
import { Ping, type PingResult } from '../net/ping.js';
import type { GuestContext } from '../program.js';
import { bringUpEth0, numberOption, options, requiredOption, withNetEnv, type NetProgramEnv } from './net-common.js';

export async function runPing(env: NetProgramEnv): Promise<PingResult> {
  const o = options(env.argv);
  const eth = await bringUpEth0(env, o);
  try {
    const p = new Ping(eth.stack, {
      dst: requiredOption(o, 'dst'),
      count: numberOption(o, 'count', 3, 1, 1_000_000),
      intervalMs: numberOption(o, 'interval', 1000, 0),
      size: numberOption(o, 'size', 56, 0, 65507),
      timeoutMs: numberOption(o, 'timeout', 10_000, 1),
      adaptive: o.get('adaptive') === '1',
    });
    let next: number | undefined;
    await eth.until(() => {
      // Print first, then send: a request is kicked to the backend at the end of this turn,
      // and console output after it would hold the kick (and the measured round trip) back.
      for (const line of p.takeLines()) env.log(line);
      if (!p.done) next = p.poll(); // Ping.poll after the end would print the summary again
      return p.done;
    }, Number.MAX_SAFE_INTEGER, () => next);
    for (const line of p.takeLines()) env.log(line);
    const result = p.result();
    env.log(JSON.stringify({ ping: result }));
    return result;
  } finally {
    await eth.close();
  }
}

export default async function ping(ctx: GuestContext): Promise<void> {
  await withNetEnv(ctx, async (env) => void (await runPing(env)));
}
