/** A guest program loaded by path in kernel.test.ts: logs one line and returns (poweroff). */
import type { GuestContext } from '../program.js';

export default async function hello(ctx: GuestContext): Promise<void> {
  ctx.log(`hello from dom${ctx.domid}: ${ctx.argv.join(',')}`);
}
