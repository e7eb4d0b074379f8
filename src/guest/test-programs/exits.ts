/** A guest program that ends its vCPU thread without shutting down (kernel.test.ts). */
import type { GuestContext } from '../program.js';

export default async function exits(ctx: GuestContext): Promise<void> {
  await ctx.sleep(0);
  process.exit(3);
}
