/** `builtin:shutdown`, extra = a reason (`poweroff`, `reboot`, ...): shuts down at once. */
import type { GuestContext, ShutdownName } from '../program.js';

const reasons: readonly ShutdownName[] = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'];

export default async function shutdown(ctx: GuestContext): Promise<void> {
  const want = ctx.argv[0] ?? 'poweroff';
  const reason = reasons.find((r) => r === want);
  if (reason === undefined) throw new Error(`builtin:shutdown: unknown reason '${want}'`);
  await ctx.shutdown(reason);
}
