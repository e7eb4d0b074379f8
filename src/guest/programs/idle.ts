/** `builtin:idle`: does nothing until the domain is destroyed (or shut down from outside). */
import type { GuestContext } from '../program.js';

export default async function idle(ctx: GuestContext): Promise<void> {
  ctx.log('idle');
  while (await ctx.running()) await ctx.sleep(1000);
}
