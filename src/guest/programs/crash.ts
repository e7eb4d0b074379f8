/** `builtin:crash`: throws, with `extra` as the message; the kernel reports a crash. */
import type { GuestContext } from '../program.js';

export default async function crash(ctx: GuestContext): Promise<void> {
  await ctx.sleep(0);
  throw new Error(ctx.args === '' ? 'crash requested' : ctx.args);
}
